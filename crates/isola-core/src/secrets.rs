//! Small helpers for the secrets isola keeps on disk (the code cache key,
//! the admin token): random bytes, private files, hex.

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
