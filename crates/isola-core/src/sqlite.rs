//! Opening isola's SQLite file safely.
//!
//! A file that is not a database (or fails SQLite's quick check) is never
//! wiped: it is renamed to `NAME.corrupt-UNIXTIME` beside itself, a warning
//! names both files, and a fresh database is created. A file that cannot be
//! opened for other reasons (permissions, a folder in the way) is an error
//! naming the file and the fix.
//!
//! The folder is made private (0700, an existing looser one is tightened
//! with a warning) and the database with its `-wal`/`-shm` files is 0600:
//! it holds tenants' code and (encrypted) secrets.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Opens (creating if needed) the SQLite database at `path`, in WAL mode.
pub fn open(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::secrets::private_dir(parent)?;
    }
    create_private(path)?;
    let conn = open_checked(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        crate::secrets::tighten_file(Path::new(&p))?;
    }
    Ok(conn)
}

/// Creates an empty database file with mode 0600 if there is none, so SQLite
/// never creates it (or its WAL and SHM, which copy its mode) world-readable.
fn create_private(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(store_err(
            path,
            &e,
            "check that the folder is writable by this user, or pick another --data-dir",
        )),
    }
}

fn open_checked(path: &Path) -> Result<Connection> {
    match try_open(path) {
        Ok(conn) => Ok(conn),
        Err(OpenError::Corrupt(msg)) => {
            let aside = set_aside(path)?;
            tracing::warn!(
                "store {} is corrupt ({msg}); kept it as {} and started a new one",
                path.display(),
                aside.display()
            );
            create_private(path)?;
            try_open(path).map_err(|e| e.into_error(path))
        }
        Err(e) => Err(e.into_error(path)),
    }
}

enum OpenError {
    Corrupt(String),
    Other(String),
}

impl OpenError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            OpenError::Corrupt(m) | OpenError::Other(m) => Error::Store {
                path: path.to_path_buf(),
                message: format!("{m}; check that the file is readable and writable by this user, or pick another --data-dir"),
            },
        }
    }
}

fn classify(e: rusqlite::Error) -> OpenError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            OpenError::Corrupt(e.to_string())
        }
        _ => OpenError::Other(e.to_string()),
    }
}

fn try_open(path: &Path) -> std::result::Result<Connection, OpenError> {
    let conn = Connection::open(path).map_err(classify)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(classify)?;
    // The first real read tells a non-database file apart.
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(classify)?;
    if check != "ok" {
        return Err(OpenError::Corrupt(format!("quick_check: {check}")));
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(classify)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(classify)?;
    Ok(conn)
}

/// Renames a bad file (and its WAL/SHM companions) aside; returns the new name.
pub(crate) fn set_aside(path: &Path) -> Result<PathBuf> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{ts}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).map_err(|e| store_err(path, &e, "move the file away by hand"))?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        // Companions may not exist; keep them beside the bad file when they do.
        let _ = std::fs::rename(PathBuf::from(from), PathBuf::from(to));
    }
    Ok(aside)
}

fn store_err(path: &Path, e: &std::io::Error, fix: &str) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: format!("{e}; {fix}"),
    }
}
