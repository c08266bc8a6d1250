//! Small helpers for the secrets isola keeps on disk (the code cache key,
//! the secrets key, the admin token): random bytes, private files and
//! folders, 32-byte key files, hex.

use std::path::Path;

use crate::error::{Error, Result};

/// `n` bytes from the OS's random source.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| Error::io("/dev/urandom", e))?;
    std::io::Read::read_exact(&mut f, &mut buf).map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(buf)
}

/// Writes `bytes` to `path` readable by this user only (mode 0600 on Unix),
/// through a temporary file and a rename, so a crash never leaves half a file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Reads the 32-byte key at `path`, creating it (random, mode 0600, written
/// atomically) if missing. `what` names the key in errors (e.g. "the secrets key").
pub fn load_or_create_key(path: &Path, what: &str) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::Store {
            path: path.to_path_buf(),
            message: format!(
                "{what} file must hold exactly 32 bytes (it holds {}); restore the right file",
                bytes.len()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&random_bytes(32)?);
            write_private(path, &k)?;
            Ok(k)
        }
        Err(e) => Err(Error::Store {
            path: path.to_path_buf(),
            message: format!("{e}; make the file readable by this user or pick another --data-dir"),
        }),
    }
}

/// Creates the folder `dir` (and missing parents) with mode 0700 on Unix.
/// An existing `dir` that group or others may read, write or enter is
/// tightened to 0700 with a warning naming the old mode; if that fails (not
/// our folder), it is an error.
pub fn private_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
        let mode = std::fs::metadata(dir)
            .map_err(|e| Error::io(dir, e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |e| Error::Store {
                    path: dir.to_path_buf(),
                    message: format!(
                        "the data dir has mode {mode:03o} and cannot be made private (0700): {e}; fix its owner or pick another --data-dir"
                    ),
                },
            )?;
            tracing::warn!(
                "data dir {} had mode {mode:03o}; tightened it to 0700",
                dir.display()
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Sets `path` to mode 0600 (Unix) if it exists and is looser.
pub fn tighten_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(path, e))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
