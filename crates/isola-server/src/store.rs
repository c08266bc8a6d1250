//! Where tenants, their settings and code versions persist.
//!
//! [`TenantStore`] is the seam for a shared store (PostgreSQL in cluster
//! mode); [`SqliteTenantStore`] keeps them in the data dir's `isola.db`, the
//! same file as the code cache. A deploy writes the version and moves the
//! tenant's current version in one transaction, so a crash never leaves a
//! tenant half-updated.
//!
//! Secret values never reach the file in plain text: they live in
//! `tenant_secrets`, sealed by [`crate::sealed`] with `DATA_DIR/secrets.key`;
//! the settings JSON keeps every other field. Rows written by older versions
//! (secrets inside the settings JSON) are sealed when the store opens, with
//! SQLite's `secure_delete` on so the old pages are zeroed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use isola_core::TenantCode;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::config::TenantSettings;
use crate::sealed::Sealer;

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[error("tenant store {path}: {message}")]
pub struct StoreError {
    path: PathBuf,
    message: String,
}

/// One stored code version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionInfo {
    /// Version number (1, 2, ...; per tenant).
    pub version: u64,
    /// Entry file.
    pub entry: String,
    /// Bytes of source.
    pub size: u64,
    /// SHA-256 of the bundle (hex).
    pub sha256: String,
    /// Unix seconds.
    pub created: u64,
}

/// A tenant as stored.
#[derive(Debug, Clone)]
pub struct StoredTenant {
    /// Tenant id.
    pub id: String,
    /// Settings.
    pub settings: TenantSettings,
    /// The serving version, if code was deployed.
    pub current: Option<u64>,
}

/// Persistence of tenants and versions.
pub trait TenantStore: Send + Sync {
    /// Creates or replaces a tenant's settings.
    fn put_settings(&self, id: &str, settings: &TenantSettings) -> Result<(), StoreError>;
    /// One tenant.
    fn get(&self, id: &str) -> Result<Option<StoredTenant>, StoreError>;
    /// All tenants, by id.
    fn list(&self) -> Result<Vec<StoredTenant>, StoreError>;
    /// Deletes a tenant and its versions; returns whether it existed.
    fn delete(&self, id: &str) -> Result<bool, StoreError>;
    /// Stores a new version and makes it current, atomically; returns its number.
    fn deploy(&self, id: &str, code: &TenantCode) -> Result<u64, StoreError>;
    /// A version's code.
    fn code(&self, id: &str, version: u64) -> Result<Option<TenantCode>, StoreError>;
    /// A tenant's versions, oldest first.
    fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError>;
    /// Makes `version` current; returns false if it does not exist.
    fn set_current(&self, id: &str, version: u64) -> Result<bool, StoreError>;
    /// Records that `version` of `id` ran a request within its limits
    /// (`None`: the tenant was stopped by a limit since), so it starts
    /// trusted after a restart (see `pool::trust`).
    fn set_trusted(&self, id: &str, version: Option<u64>) -> Result<(), StoreError>;
    /// The trusted version of each tenant that has one.
    fn trusted_versions(&self) -> Result<std::collections::HashMap<String, u64>, StoreError>;
}

/// The SQLite store.
pub struct SqliteTenantStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    sealer: Sealer,
}

impl SqliteTenantStore {
    /// Opens `DATA_DIR/isola.db` with the secrets key `DATA_DIR/secrets.key`
    /// (created if missing), sealing plain-text secrets left by older versions.
    pub fn open(data_dir: &Path) -> Result<Self, isola_core::Error> {
        let path = data_dir.join("isola.db");
        let conn = isola_core::code_cache::open_sqlite(&path)?;
        let store_err = |e: &dyn std::fmt::Display| isola_core::Error::Store {
            path: path.clone(),
            message: e.to_string(),
        };
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(|e| store_err(&e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tenants (
                id TEXT PRIMARY KEY,
                settings TEXT NOT NULL,
                current_version INTEGER,
                updated INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS tenant_versions (
                tenant TEXT NOT NULL,
                version INTEGER NOT NULL,
                code TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size INTEGER NOT NULL,
                created INTEGER NOT NULL,
                PRIMARY KEY (tenant, version)
            );
            CREATE TABLE IF NOT EXISTS tenant_trust (
                tenant TEXT PRIMARY KEY,
                version INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS tenant_secrets (
                tenant TEXT NOT NULL,
                name TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (tenant, name)
            );",
        )
        .map_err(|e| store_err(&e))?;
        let key = data_dir.join("secrets.key");
        if !key.exists() {
            // A new key could never open existing values: say so instead of making one.
            let sealed: i64 = conn
                .query_row("SELECT COUNT(*) FROM tenant_secrets", [], |r| r.get(0))
                .map_err(|e| store_err(&e))?;
            if sealed > 0 {
                return Err(isola_core::Error::Store {
                    path: key,
                    message: format!("missing, but isola.db holds {sealed} secret(s) sealed with it; restore the key file from a backup"),
                });
            }
        }
        let store = SqliteTenantStore {
            sealer: Sealer::open_dir(data_dir)?,
            path: path.clone(),
            conn: Mutex::new(conn),
        };
        store.seal_plaintext_secrets().map_err(|e| store_err(&e))?;
        Ok(store)
    }

    /// Moves secrets found in settings JSON (older versions) into `tenant_secrets`, sealed.
    fn seal_plaintext_secrets(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare("SELECT id, settings FROM tenants")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut sealed = 0;
        for (id, json) in rows {
            let settings: TenantSettings = serde_json::from_str(&json)
                .map_err(|e| self.err(format!("tenant {id}: bad settings JSON: {e}")))?;
            if settings.secrets.is_empty() {
                continue;
            }
            self.write_settings(&tx, &id, &settings)?;
            sealed += settings.secrets.len();
        }
        tx.commit().map_err(|e| self.err(e))?;
        if sealed > 0 {
            // Old WAL frames may still hold the plain-text pages.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(|e| self.err(e))?;
            tracing::info!(
                "sealed {sealed} plain-text secret(s) from an older version in {}",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Writes settings (without secret values) and the sealed secrets, in `conn`'s transaction.
    fn write_settings(
        &self,
        conn: &Connection,
        id: &str,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let plain = TenantSettings {
            secrets: BTreeMap::new(),
            ..settings.clone()
        };
        let json = serde_json::to_string(&plain).map_err(|e| self.err(e))?;
        conn.execute(
            "INSERT INTO tenants(id, settings, current_version, updated) VALUES (?1, ?2, NULL, ?3)
             ON CONFLICT(id) DO UPDATE SET settings = ?2, updated = ?3",
            params![id, json, now()],
        )
        .map_err(|e| self.err(e))?;
        conn.execute("DELETE FROM tenant_secrets WHERE tenant = ?1", params![id])
            .map_err(|e| self.err(e))?;
        for (name, value) in &settings.secrets {
            let sealed = self.sealer.seal(id, name, value).map_err(|e| self.err(e))?;
            conn.execute(
                "INSERT INTO tenant_secrets(tenant, name, value) VALUES (?1, ?2, ?3)",
                params![id, name, sealed],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// A tenant's secrets, opened.
    fn secrets(&self, conn: &Connection, id: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let mut stmt = conn
            .prepare("SELECT name, value FROM tenant_secrets WHERE tenant = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (name, sealed) = row.map_err(|e| self.err(e))?;
            let value = self
                .sealer
                .open(id, &name, &sealed)
                .map_err(|e| self.err(e))?;
            out.insert(name, value);
        }
        Ok(out)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| self.err("connection lock poisoned"))
    }

    fn row_to_tenant(
        &self,
        conn: &Connection,
        id: String,
        settings: String,
        current: Option<i64>,
    ) -> Result<StoredTenant, StoreError> {
        let mut settings: TenantSettings = serde_json::from_str(&settings)
            .map_err(|e| self.err(format!("tenant {id}: bad settings JSON: {e}")))?;
        settings.secrets = self.secrets(conn, &id)?;
        Ok(StoredTenant {
            id,
            settings,
            current: current.map(|v| v as u64),
        })
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn bundle_sha(code: &TenantCode) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(code.entry().as_bytes());
    for (name, src) in code.files() {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((src.len() as u64).to_le_bytes());
        h.update(src.as_bytes());
    }
    isola_core::secrets::hex(&h.finalize())
}

impl TenantStore for SqliteTenantStore {
    fn put_settings(&self, id: &str, settings: &TenantSettings) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        self.write_settings(&tx, id, settings)?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn get(&self, id: &str) -> Result<Option<StoredTenant>, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, String, Option<i64>)> = conn
            .query_row(
                "SELECT id, settings, current_version FROM tenants WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|(id, s, c)| self.row_to_tenant(&conn, id, s, c))
            .transpose()
    }

    fn list(&self) -> Result<Vec<StoredTenant>, StoreError> {
        let conn = self.conn()?;
        let rows: Vec<(String, String, Option<i64>)> = {
            let mut stmt = conn
                .prepare("SELECT id, settings, current_version FROM tenants ORDER BY id")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        rows.into_iter()
            .map(|(id, s, c)| self.row_to_tenant(&conn, id, s, c))
            .collect()
    }

    fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM tenant_versions WHERE tenant = ?1", params![id])
            .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM tenant_secrets WHERE tenant = ?1", params![id])
            .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM tenant_trust WHERE tenant = ?1", params![id])
            .map_err(|e| self.err(e))?;
        let n = tx
            .execute("DELETE FROM tenants WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn deploy(&self, id: &str, code: &TenantCode) -> Result<u64, StoreError> {
        let json = serde_json::to_string(code).map_err(|e| self.err(e))?;
        let sha = bundle_sha(code);
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM tenants WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            let settings =
                serde_json::to_string(&TenantSettings::default()).map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO tenants(id, settings, current_version, updated) VALUES (?1, ?2, NULL, ?3)",
                params![id, settings, now()],
            )
            .map_err(|e| self.err(e))?;
        }
        let next: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM tenant_versions WHERE tenant = ?1",
                params![id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO tenant_versions(tenant, version, code, sha256, size, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, next, json, sha, code.size() as i64, now()],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE tenants SET current_version = ?2, updated = ?3 WHERE id = ?1",
            params![id, next, now()],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(next as u64)
    }

    fn code(&self, id: &str, version: u64) -> Result<Option<TenantCode>, StoreError> {
        let json: Option<String> = self
            .conn()?
            .query_row(
                "SELECT code FROM tenant_versions WHERE tenant = ?1 AND version = ?2",
                params![id, version as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| self.err(format!("tenant {id} v{version}: {e}")))
        })
        .transpose()
    }

    fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT version, code, sha256, size, created FROM tenant_versions WHERE tenant = ?1 ORDER BY version",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (version, code, sha256, size, created) = row.map_err(|e| self.err(e))?;
            let entry = serde_json::from_str::<TenantCode>(&code)
                .map(|c| c.entry().to_string())
                .unwrap_or_default();
            out.push(VersionInfo {
                version: version as u64,
                entry,
                size: size as u64,
                sha256,
                created: created as u64,
            });
        }
        Ok(out)
    }

    fn set_current(&self, id: &str, version: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM tenant_versions WHERE tenant = ?1 AND version = ?2",
                params![id, version as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE tenants SET current_version = ?2, updated = ?3 WHERE id = ?1",
            params![id, version as i64, now()],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn set_trusted(&self, id: &str, version: Option<u64>) -> Result<(), StoreError> {
        let conn = self.conn()?;
        match version {
            Some(v) => conn.execute(
                "INSERT INTO tenant_trust (tenant, version) VALUES (?1, ?2)
                 ON CONFLICT (tenant) DO UPDATE SET version = excluded.version",
                params![id, v as i64],
            ),
            None => conn.execute("DELETE FROM tenant_trust WHERE tenant = ?1", params![id]),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn trusted_versions(&self) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT tenant, version FROM tenant_trust")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (t, v) = row.map_err(|e| self.err(e))?;
            out.insert(t, v as u64);
        }
        Ok(out)
    }
}
