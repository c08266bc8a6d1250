//! The base startup snapshot: fingerprint, on-disk cache, rebuild.
//!
//! The snapshot is built by isola itself on first start and cached as
//! `DATA_DIR/snapshots/base-<fingerprint>.snap`. The fingerprint is SHA-256
//! over the V8 version, isola's V8 flags, the bootstrap source and the list of
//! native ops, so any change to one of them selects another file: a snapshot
//! whose fingerprint does not match is never loaded. The file carries a
//! header (magic, fingerprint, SHA-256 of the payload); a file that fails any
//! check is set aside as `*.corrupt-UNIXTIME` with a warning and rebuilt.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::runtime::{ops, platform, snapshot as v8snap};
use crate::secrets::hex;

const MAGIC: &[u8; 8] = b"ISOLASNP";
const FORMAT: u32 = 1;

/// The base snapshot in memory.
#[derive(Debug)]
pub struct BaseSnapshot {
    /// Identity of this snapshot (hex SHA-256).
    pub fingerprint: String,
    /// The blob (leaked once per process and fingerprint; isolates borrow it).
    pub blob: &'static [u8],
    /// Where it was loaded from or saved to, if on disk.
    pub path: Option<PathBuf>,
    /// Whether the snapshot file had to be (re)created (it was missing or unusable).
    pub built: bool,
}

/// The fingerprint of the snapshot this build of isola would make.
pub fn fingerprint() -> String {
    let mut h = Sha256::new();
    let mut part = |p: &[u8]| {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    };
    part(b"isola-snapshot-v2");
    part(platform::v8_version().as_bytes());
    part(platform::V8_FLAGS.as_bytes());
    part(platform::ICU_DATA_VERSION.as_bytes());
    for (name, source) in v8snap::SOURCES {
        part(name.as_bytes());
        part(source.as_bytes());
    }
    for (name, source, globals) in v8snap::LAZY_SOURCES {
        part(name.as_bytes());
        part(source.as_bytes());
        for g in globals {
            part(g.as_bytes());
        }
    }
    for (name, _) in ops::OPS.iter() {
        part(name.as_bytes());
    }
    hex(&h.finalize())
}

/// The process's blob. V8 crashes when isolates are deserialized while a
/// snapshot is being created, or from different blobs at once, so a process
/// builds (or loads) its blob once and every engine shares it.
static PROCESS_BLOB: std::sync::Mutex<Option<&'static [u8]>> = std::sync::Mutex::new(None);

/// Loads the snapshot from `dir`, or builds it, and makes sure `dir` holds a
/// valid copy. Within one process the first blob is reused by later calls.
pub fn load_or_build(dir: Option<&Path>) -> Result<BaseSnapshot> {
    let fp = fingerprint();
    let mut slot = PROCESS_BLOB.lock().unwrap_or_else(|p| p.into_inner());
    let path = dir.map(|d| d.join(format!("base-{}.snap", &fp[..16])));
    // A valid file on disk?
    let mut on_disk = None;
    if let Some(path) = &path {
        match std::fs::read(path) {
            Ok(bytes) => match parse(&bytes, &fp) {
                Ok(payload) => on_disk = Some(payload.to_vec()),
                Err(why) => {
                    let aside = crate::sqlite::set_aside(path)?;
                    tracing::warn!(
                        "snapshot {} is unusable ({why}); kept it as {} and rebuilt it",
                        path.display(),
                        aside.display()
                    );
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Snapshot(format!(
                    "{}: {e}; make it readable or delete it to rebuild",
                    path.display()
                )))
            }
        }
    }
    let built = on_disk.is_none();
    let blob: &'static [u8] = match (*slot, on_disk) {
        (Some(b), _) => b,
        (None, Some(bytes)) => Box::leak(bytes.into_boxed_slice()),
        (None, None) => Box::leak(v8snap::build_blob()?.into_boxed_slice()),
    };
    *slot = Some(blob);
    if let (true, Some(dir), Some(path)) = (built, dir, &path) {
        save(dir, path, &fp, blob)?;
    }
    Ok(BaseSnapshot {
        fingerprint: fp,
        blob,
        path,
        built,
    })
}

fn parse<'a>(bytes: &'a [u8], fp: &str) -> std::result::Result<&'a [u8], String> {
    let header = 8 + 4 + 64 + 32;
    if bytes.len() < header {
        return Err("file too short".into());
    }
    if &bytes[..8] != MAGIC {
        return Err("not an isola snapshot".into());
    }
    if bytes[8..12] != FORMAT.to_le_bytes() {
        return Err("unknown format version".into());
    }
    if &bytes[12..76] != fp.as_bytes() {
        return Err("fingerprint mismatch".into());
    }
    let payload = &bytes[header..];
    if Sha256::digest(payload).as_slice() != &bytes[76..108] {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

fn save(dir: &Path, path: &Path, fp: &str, blob: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::with_capacity(blob.len() + 108);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(fp.as_bytes());
    out.extend_from_slice(&Sha256::digest(blob));
    out.extend_from_slice(blob);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &out).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
