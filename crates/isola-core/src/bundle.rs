//! A tenant's code: one entry file plus the files it may import.
//!
//! Imports are resolved only inside the bundle: relative specifiers
//! (`./util.js`, `../lib/x.js`) against the importing file's folder. Bare
//! specifiers, absolute paths, URLs and `..` escaping the bundle root are
//! errors, so tenant code never reaches the host file system or network.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// How the entry file is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// An ES module (`export default { fetch(...) {} }`).
    Module,
    /// A classic script; its completion value (or a global `handler` function) is the result.
    Script,
}

/// A tenant's code bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantCode {
    entry: String,
    kind: CodeKind,
    files: BTreeMap<String, String>,
}

impl TenantCode {
    /// A single-file bundle. The kind is guessed from the name and source
    /// (see [`CodeKind`]): `.mjs` is a module, `.cjs` a script, otherwise a
    /// module if any line starts with `import` or `export`.
    pub fn single(name: impl Into<String>, source: impl Into<String>) -> Self {
        let name = normalize_name(&name.into());
        let source = source.into();
        let kind = guess_kind(&name, &source);
        let mut files = BTreeMap::new();
        files.insert(name.clone(), source);
        TenantCode {
            entry: name,
            kind,
            files,
        }
    }

    /// A multi-file bundle; `entry` must be one of `files`' names.
    pub fn bundle(entry: impl Into<String>, files: BTreeMap<String, String>) -> Result<Self> {
        let entry = normalize_name(&entry.into());
        let mut normalized = BTreeMap::new();
        for (name, source) in files {
            let n = normalize_name(&name);
            if n.is_empty() || n.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(Error::InvalidCode(format!(
                    "bad file name \"{name}\" in bundle: use relative paths without \"..\""
                )));
            }
            normalized.insert(n, source);
        }
        let Some(source) = normalized.get(&entry) else {
            return Err(Error::InvalidCode(format!(
                "entry \"{entry}\" is not among the bundle's files ({})",
                normalized.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let kind = guess_kind(&entry, source);
        Ok(TenantCode {
            entry,
            kind,
            files: normalized,
        })
    }

    /// Reads a file, or a folder (every `.js`/`.mjs`/`.cjs`/`.json` file below
    /// it; the entry is `index.js`, `index.mjs`, `main.js` or `worker.js`).
    pub fn from_path(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_file() {
            let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "main.js".into());
            return Ok(TenantCode::single(name, source));
        }
        let mut files = BTreeMap::new();
        collect(path, path, &mut files, 0)?;
        let entry = ["index.js", "index.mjs", "main.js", "main.mjs", "worker.js"]
            .into_iter()
            .find(|e| files.contains_key(*e))
            .ok_or_else(|| {
                Error::InvalidCode(format!(
                    "{}: no entry file (index.js, index.mjs, main.js, main.mjs or worker.js)",
                    path.display()
                ))
            })?;
        TenantCode::bundle(entry, files)
    }

    /// Overrides the guessed kind.
    pub fn with_kind(mut self, kind: CodeKind) -> Self {
        self.kind = kind;
        self
    }

    /// The entry file's name.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// How the entry is compiled.
    pub fn kind(&self) -> CodeKind {
        self.kind
    }

    /// All files, by name.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    /// One file's source.
    pub fn source(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// Total bytes of source.
    pub fn size(&self) -> u64 {
        self.files.values().map(|s| s.len() as u64).sum()
    }

    /// Resolves `specifier` imported from `referrer` to a file of this bundle.
    pub fn resolve(&self, referrer: &str, specifier: &str) -> Result<String> {
        let err = |reason: &str| Error::Resolve {
            referrer: referrer.to_string(),
            specifier: specifier.to_string(),
            reason: reason.to_string(),
        };
        if !(specifier.starts_with("./") || specifier.starts_with("../")) {
            return Err(err(
                "only relative imports inside the tenant's bundle are allowed (no bare, absolute or URL imports)",
            ));
        }
        let mut parts: Vec<&str> = referrer.split('/').collect();
        parts.pop();
        for comp in specifier.split('/') {
            match comp {
                "." | "" => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(err("the path leaves the bundle"));
                    }
                }
                c => parts.push(c),
            }
        }
        let path = parts.join("/");
        if self.files.contains_key(&path) {
            return Ok(path);
        }
        for ext in [".js", ".mjs"] {
            let p = format!("{path}{ext}");
            if self.files.contains_key(&p) {
                return Ok(p);
            }
        }
        Err(err("no such file in the bundle"))
    }
}

fn normalize_name(name: &str) -> String {
    name.trim_start_matches("./").replace('\\', "/")
}

fn guess_kind(name: &str, source: &str) -> CodeKind {
    if name.ends_with(".mjs") {
        return CodeKind::Module;
    }
    if name.ends_with(".cjs") {
        return CodeKind::Script;
    }
    let module = has_module_syntax(source);
    if module {
        CodeKind::Module
    } else {
        CodeKind::Script
    }
}

/// Whether `source` has `import`/`export` declarations (a cheap token scan;
/// name a file `.mjs`/`.cjs` or use [`TenantCode::with_kind`] to be explicit).
fn has_module_syntax(source: &str) -> bool {
    let b = source.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    for word in ["export", "import"] {
        let mut from = 0;
        while let Some(pos) = source[from..].find(word) {
            let at = from + pos;
            from = at + word.len();
            if at > 0 && (is_ident(b[at - 1]) || b[at - 1] == b'.') {
                continue;
            }
            let rest = source[from..].trim_start();
            let next = rest.bytes().next().unwrap_or(b' ');
            let ok = if word == "export" {
                [
                    "default", "const", "let", "var", "function", "async", "class", "{", "*",
                ]
                .iter()
                .any(|k| rest.starts_with(k))
            } else {
                next != b'('
                    && next != b'.'
                    && (is_ident(next) || matches!(next, b'{' | b'*' | b'"' | b'\''))
            };
            if ok && rest.len() < source.len() - at {
                return true;
            }
        }
    }
    false
}

const MAX_BUNDLE_DEPTH: usize = 16;

fn collect(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, String>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_BUNDLE_DEPTH {
        return Err(Error::InvalidCode(format!(
            "{}: folders nested deeper than {MAX_BUNDLE_DEPTH} levels",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if ft.is_dir() {
            collect(root, &path, out, depth + 1)?;
        } else if ft.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("js" | "mjs" | "cjs" | "json")
            )
        {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| Error::Internal("bundle file outside its root".into()))?;
            let source = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            out.insert(rel.to_string_lossy().replace('\\', "/"), source);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_files() -> TenantCode {
        let mut files = BTreeMap::new();
        files.insert(
            "index.js".to_string(),
            "import x from './lib/x.js'; export default x;".to_string(),
        );
        files.insert("lib/x.js".to_string(), "export default 1;".to_string());
        TenantCode::bundle("index.js", files).unwrap()
    }

    #[test]
    fn relative_imports_resolve_inside_the_bundle() {
        let b = two_files();
        assert_eq!(b.resolve("index.js", "./lib/x.js").unwrap(), "lib/x.js");
        assert_eq!(b.resolve("index.js", "./lib/x").unwrap(), "lib/x.js");
        assert_eq!(b.resolve("lib/x.js", "../index.js").unwrap(), "index.js");
    }

    #[test]
    fn escaping_bare_and_url_imports_are_refused() {
        let b = two_files();
        assert!(b.resolve("index.js", "../../etc/passwd").is_err());
        assert!(b.resolve("index.js", "fs").is_err());
        assert!(b.resolve("index.js", "/etc/passwd").is_err());
        assert!(b.resolve("index.js", "https://example.com/x.js").is_err());
    }

    #[test]
    fn kind_is_guessed_from_source() {
        assert_eq!(
            TenantCode::single("a.js", "export default 1").kind(),
            CodeKind::Module
        );
        assert_eq!(TenantCode::single("a.js", "1 + 1").kind(), CodeKind::Script);
        assert_eq!(
            TenantCode::single("a.mjs", "1 + 1").kind(),
            CodeKind::Module
        );
        assert_eq!(
            TenantCode::single("a.js", "x = 1; export default x").kind(),
            CodeKind::Module
        );
        assert_eq!(
            TenantCode::single("a.js", "import('x'); exported = 1; obj.import = 2").kind(),
            CodeKind::Script
        );
    }

    #[test]
    fn missing_entry_is_an_error() {
        let mut files = BTreeMap::new();
        files.insert("a.js".to_string(), "1".to_string());
        assert!(matches!(
            TenantCode::bundle("b.js", files),
            Err(Error::InvalidCode(_))
        ));
    }
}
