//! The persistent V8 code cache: keys, authentication, and the store.
//!
//! V8 itself checks a cache only against its version, flags, the read-only
//! snapshot checksum and the *length* of the source. isola therefore keys
//! entries by [`CacheKey`]: SHA-256 over the source's SHA-256, the code kind,
//! the V8 version, isola's V8 flags and the base snapshot fingerprint. A
//! same-length edit is a different key.
//!
//! Release V8 does not verify cache payloads, so every entry carries an
//! HMAC-SHA256 (key stored beside the database, `code-cache.key`, mode 0600)
//! over key and bytes. An entry that fails it (a flipped bit, a truncation, an
//! entry copied under another key) is deleted and reported as a miss; V8
//! never sees it. Cache bytes never come from tenants.
//!
//! The store is bounded: when the total size passes `max_bytes`, the least
//! recently used entries are evicted. Counters (hits, misses, rejections,
//! corrupt entries, evictions) are persisted so `isola cache stats` sees
//! them across processes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::secrets::hex;

type HmacSha256 = Hmac<Sha256>;

/// Opens isola's SQLite file the way the code cache does (WAL mode; a corrupt
/// file is set aside with a warning, never wiped), for stores that share it.
pub use crate::sqlite::open as open_sqlite;

/// The identity of one code cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// Derives the key for `source` compiled as `kind` under the given engine identity.
    pub fn new(
        source: &str,
        kind: &str,
        v8_version: &str,
        v8_flags: &str,
        snapshot_fingerprint: &str,
    ) -> Self {
        let source_sha = Sha256::digest(source.as_bytes());
        let mut h = Sha256::new();
        for part in [
            b"isola-code-cache-v1".as_slice(),
            kind.as_bytes(),
            &source_sha,
            v8_version.as_bytes(),
            v8_flags.as_bytes(),
            snapshot_fingerprint.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        CacheKey(hex(&h.finalize()))
    }

    /// The key as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key from its hex form ([`CacheKey::as_str`]): exactly 64 lowercase
    /// hex digits, else `None` (keys that cross a process boundary are checked).
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| CacheKey(hex.to_string()))
    }

    /// This key within `scope`: a different key per scope, so entries one
    /// scope wrote are never read by another (the process tier gives each
    /// worker process a scope, so a compromised worker cannot plant code
    /// for tenants it does not host).
    pub fn scoped(&self, scope: &str) -> Self {
        let mut h = Sha256::new();
        for part in [
            b"isola-code-cache-scope-v1".as_slice(),
            scope.as_bytes(),
            self.0.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        CacheKey(hex(&h.finalize()))
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheEvent {
    /// Bytes were found, authenticated and accepted by V8.
    Hit,
    /// No entry.
    Miss,
    /// V8 rejected authentic bytes (other V8 build, flags or snapshot); deleted.
    Rejected,
    /// The entry failed authentication (corrupt or truncated); deleted.
    Corrupt,
}

/// Store-wide statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Entries stored.
    pub entries: u64,
    /// Bytes of cache data stored.
    pub bytes: u64,
    /// The size bound.
    pub max_bytes: u64,
    /// Lookups that V8 accepted.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Entries V8 rejected.
    pub rejections: u64,
    /// Entries that failed authentication.
    pub corrupt: u64,
    /// Entries evicted for size.
    pub evictions: u64,
}

/// Where code cache entries live. Implementations must be thread-safe; a
/// shared (e.g. PostgreSQL) implementation can replace the SQLite one.
pub trait CodeCacheStore: Send + Sync {
    /// Returns authenticated bytes for `key`, or `None` (a miss; corrupt
    /// entries are deleted and recorded as [`CacheEvent::Corrupt`]).
    fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>>;
    /// Stores bytes for `key`, evicting least recently used entries past the bound.
    fn put(&self, key: &CacheKey, data: &[u8]) -> Result<()>;
    /// Deletes the entry for `key`.
    fn remove(&self, key: &CacheKey) -> Result<()>;
    /// Records the outcome of a lookup.
    fn record(&self, event: CacheEvent) -> Result<()>;
    /// Current statistics.
    fn stats(&self) -> Result<CacheStats>;
    /// Deletes every entry (counters are kept); returns how many were deleted.
    fn purge(&self) -> Result<u64>;
}

/// The default store: a table in isola's SQLite file.
pub struct SqliteCodeCache {
    path: PathBuf,
    conn: Mutex<Connection>,
    secret: [u8; 32],
    max_bytes: u64,
}

impl std::fmt::Debug for SqliteCodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCodeCache")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Default bound of the code cache: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

impl SqliteCodeCache {
    /// Opens the store in `data_dir` (`isola.db`, key in `code-cache.key`).
    pub fn open(data_dir: &Path, max_bytes: u64) -> Result<Self> {
        let path = data_dir.join("isola.db");
        let conn = crate::sqlite::open(&path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS code_cache (
                key TEXT PRIMARY KEY,
                data BLOB NOT NULL,
                mac BLOB NOT NULL,
                size INTEGER NOT NULL,
                created INTEGER NOT NULL,
                last_used INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS code_cache_lru ON code_cache(last_used);
            CREATE TABLE IF NOT EXISTS code_cache_counters (
                name TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            );",
        )
        .map_err(|e| sql_err(&path, e))?;
        let secret = load_or_create_secret(&data_dir.join("code-cache.key"))?;
        Ok(SqliteCodeCache {
            path,
            conn: Mutex::new(conn),
            secret,
            max_bytes,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyed hash over an entry: its key, its length and its bytes.
    fn hmac(&self, key: &CacheKey, data: &[u8]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        m.update(key.as_str().as_bytes());
        m.update(&(data.len() as u64).to_le_bytes());
        m.update(data);
        m
    }

    fn mac(&self, key: &CacheKey, data: &[u8]) -> Vec<u8> {
        self.hmac(key, data).finalize().into_bytes().to_vec()
    }

    fn verify(&self, key: &CacheKey, data: &[u8], mac: &[u8]) -> bool {
        self.hmac(key, data).verify_slice(mac).is_ok()
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| Error::Internal("code cache connection lock poisoned".into()))
    }

    fn bump(conn: &Connection, name: &str, by: u64) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO code_cache_counters(name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = value + ?2",
            params![name, by as i64],
        )
        .map(|_| ())
    }
}

impl CodeCacheStore for SqliteCodeCache {
    fn get(&self, key: &CacheKey) -> Result<Option<Vec<u8>>> {
        let conn = self.conn()?;
        use rusqlite::types::Value;
        let row: Option<(Value, Value)> = conn
            .query_row(
                "SELECT data, mac FROM code_cache WHERE key = ?1",
                params![key.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| sql_err(&self.path, e))?;
        let Some((data, mac)) = row else {
            return Ok(None);
        };
        // Anything but two blobs (e.g. a value rewritten as text) is corrupt too.
        let (data, mac) = match (data, mac) {
            (Value::Blob(d), Value::Blob(m)) => (d, m),
            _ => (Vec::new(), Vec::new()),
        };
        if mac.is_empty() || !self.verify(key, &data, &mac) {
            tracing::warn!(
                key = key.as_str(),
                "code cache entry failed authentication; deleted"
            );
            conn.execute(
                "DELETE FROM code_cache WHERE key = ?1",
                params![key.as_str()],
            )
            .map_err(|e| sql_err(&self.path, e))?;
            Self::bump(&conn, "corrupt", 1).map_err(|e| sql_err(&self.path, e))?;
            return Ok(None);
        }
        conn.execute(
            "UPDATE code_cache SET last_used = ?2 WHERE key = ?1",
            params![key.as_str(), now_nanos()],
        )
        .map_err(|e| sql_err(&self.path, e))?;
        Ok(Some(data))
    }

    fn put(&self, key: &CacheKey, data: &[u8]) -> Result<()> {
        if data.len() as u64 > self.max_bytes {
            return Ok(());
        }
        let mac = self.mac(key, data);
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(|e| sql_err(&self.path, e))?;
        let now = now_nanos();
        tx.execute(
            "INSERT INTO code_cache(key, data, mac, size, created, last_used) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT(key) DO UPDATE SET data = ?2, mac = ?3, size = ?4, last_used = ?5",
            params![key.as_str(), data, mac, data.len() as i64, now],
        )
        .map_err(|e| sql_err(&self.path, e))?;
        let mut total: i64 = tx
            .query_row("SELECT COALESCE(SUM(size), 0) FROM code_cache", [], |r| {
                r.get(0)
            })
            .map_err(|e| sql_err(&self.path, e))?;
        let mut evicted = 0u64;
        while total as u64 > self.max_bytes {
            let oldest: Option<(String, i64)> = tx
                .query_row(
                    "SELECT key, size FROM code_cache WHERE key != ?1 ORDER BY last_used ASC LIMIT 1",
                    params![key.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| sql_err(&self.path, e))?;
            let Some((k, size)) = oldest else { break };
            tx.execute("DELETE FROM code_cache WHERE key = ?1", params![k])
                .map_err(|e| sql_err(&self.path, e))?;
            total -= size;
            evicted += 1;
        }
        if evicted > 0 {
            Self::bump(&tx, "evictions", evicted).map_err(|e| sql_err(&self.path, e))?;
        }
        tx.commit().map_err(|e| sql_err(&self.path, e))
    }

    fn remove(&self, key: &CacheKey) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM code_cache WHERE key = ?1",
            params![key.as_str()],
        )
        .map_err(|e| sql_err(&self.path, e))?;
        Ok(())
    }

    fn record(&self, event: CacheEvent) -> Result<()> {
        let name = match event {
            CacheEvent::Hit => "hits",
            CacheEvent::Miss => "misses",
            CacheEvent::Rejected => "rejections",
            // Counted by `get` itself; a corrupt entry is also a miss.
            CacheEvent::Corrupt => "misses",
        };
        let conn = self.conn()?;
        Self::bump(&conn, name, 1).map_err(|e| sql_err(&self.path, e))
    }

    fn stats(&self) -> Result<CacheStats> {
        let conn = self.conn()?;
        let (entries, bytes): (i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM code_cache",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| sql_err(&self.path, e))?;
        let counter = |name: &str| -> Result<u64> {
            let v: Option<i64> = conn
                .query_row(
                    "SELECT value FROM code_cache_counters WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| sql_err(&self.path, e))?;
            Ok(v.unwrap_or(0) as u64)
        };
        Ok(CacheStats {
            entries: entries as u64,
            bytes: bytes as u64,
            max_bytes: self.max_bytes,
            hits: counter("hits")?,
            misses: counter("misses")?,
            rejections: counter("rejections")?,
            corrupt: counter("corrupt")?,
            evictions: counter("evictions")?,
        })
    }

    fn purge(&self) -> Result<u64> {
        let conn = self.conn()?;
        let n = conn
            .execute("DELETE FROM code_cache", [])
            .map_err(|e| sql_err(&self.path, e))?;
        Ok(n as u64)
    }
}

fn sql_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn load_or_create_secret(path: &Path) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes);
            Ok(k)
        }
        Ok(_) => Err(Error::Store {
            path: path.to_path_buf(),
            message: "the code cache key file must hold exactly 32 bytes; delete it (and run `isola cache purge`) to start anew".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&crate::secrets::random_bytes(32)?);
            crate::secrets::write_private(path, &k)?;
            Ok(k)
        }
        Err(e) => Err(Error::Store {
            path: path.to_path_buf(),
            message: format!("{e}; make the file readable by this user or pick another --data-dir"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey::new(s, "module", "14.0", "--flags", "fp")
    }

    #[test]
    fn key_covers_source_content_not_just_length() {
        assert_ne!(key("return 1;"), key("return 2;"));
        assert_eq!(key("return 1;"), key("return 1;"));
        assert_ne!(
            CacheKey::new("x", "module", "14.0", "", "fp1"),
            CacheKey::new("x", "module", "14.0", "", "fp2")
        );
    }

    #[test]
    fn tampered_entries_are_misses_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteCodeCache::open(dir.path(), 1 << 20).unwrap();
        let k = key("a");
        store.put(&k, b"hello bytes").unwrap();
        assert_eq!(
            store.get(&k).unwrap().as_deref(),
            Some(b"hello bytes".as_slice())
        );
        store
            .conn()
            .unwrap()
            .execute("UPDATE code_cache SET data = X'00'", [])
            .unwrap();
        assert_eq!(store.get(&k).unwrap(), None);
        assert_eq!(store.stats().unwrap().entries, 0);
        assert_eq!(store.stats().unwrap().corrupt, 1);
    }

    #[test]
    fn least_recently_used_entries_are_evicted_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteCodeCache::open(dir.path(), 250).unwrap();
        let (a, b, c) = (key("a"), key("b"), key("c"));
        store.put(&a, &[1; 100]).unwrap();
        store.put(&b, &[2; 100]).unwrap();
        store.get(&a).unwrap();
        store.put(&c, &[3; 100]).unwrap();
        assert!(store.get(&a).unwrap().is_some());
        assert!(store.get(&b).unwrap().is_none());
        assert!(store.get(&c).unwrap().is_some());
        assert_eq!(store.stats().unwrap().evictions, 1);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("isola.db"),
            b"this is not sqlite, just text that is long enough to look like a header",
        )
        .unwrap();
        let store = SqliteCodeCache::open(dir.path(), 1 << 20).unwrap();
        store.put(&key("a"), b"x").unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("isola.db.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
    }
}
