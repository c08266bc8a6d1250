//! Tenant secrets sealed at rest: XChaCha20-Poly1305 with the key in
//! `DATA_DIR/secrets.key` (32 random bytes, mode 0600).
//!
//! Each value gets a random 24-byte nonce; the tenant id and the secret's
//! name are the associated data, so a sealed value copied to another tenant
//! or name fails to open. A sealed value is `0x01 || nonce || ciphertext+tag`.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Format byte of a sealed value.
const FORMAT: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value failed authentication: wrong key, altered bytes, or moved from another tenant/name.
    #[error("secret \"{name}\" of tenant \"{tenant}\" cannot be decrypted: wrong DATA_DIR/secrets.key, or the stored value was altered or moved")]
    Open {
        /// Tenant id.
        tenant: String,
        /// Secret name.
        name: String,
    },
    /// Random bytes for the nonce were not available.
    #[error("sealing secret \"{name}\" of tenant \"{tenant}\": {source}")]
    Seal {
        /// Tenant id.
        tenant: String,
        /// Secret name.
        name: String,
        /// The cause.
        #[source]
        source: Box<isola_core::Error>,
    },
}

/// Seals and opens secret values with one key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// Loads `DATA_DIR/secrets.key`, creating it if missing.
    pub fn open_dir(data_dir: &Path) -> Result<Sealer, isola_core::Error> {
        let key = isola_core::secrets::load_or_create_key(
            &data_dir.join("secrets.key"),
            "the secrets key (secrets.key)",
        )?;
        Ok(Sealer::new(&key))
    }

    /// A sealer with `key`.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seals `value` of secret `name` for `tenant`.
    pub fn seal(&self, tenant: &str, name: &str, value: &str) -> Result<Vec<u8>, SealError> {
        let seal_err = |source| SealError::Seal {
            tenant: tenant.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        };
        let nonce = isola_core::secrets::random_bytes(NONCE).map_err(seal_err)?;
        let aad = aad(tenant, name);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| seal_err(isola_core::Error::Internal("encryption failed".into())))?;
        let mut out = Vec::with_capacity(1 + NONCE + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a sealed value of secret `name` of `tenant`.
    pub fn open(&self, tenant: &str, name: &str, sealed: &[u8]) -> Result<String, SealError> {
        let open_err = || SealError::Open {
            tenant: tenant.to_string(),
            name: name.to_string(),
        };
        if sealed.len() < 1 + NONCE + TAG || sealed[0] != FORMAT {
            return Err(open_err());
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE);
        let aad = aad(tenant, name);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| open_err())?;
        String::from_utf8(plain).map_err(|_| open_err())
    }
}

/// Associated data: a label, then tenant and name, each length-prefixed.
fn aad(tenant: &str, name: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + tenant.len() + name.len());
    a.extend_from_slice(b"isola-secret-v1\0");
    for part in [tenant, name] {
        a.extend_from_slice(&(part.len() as u64).to_le_bytes());
        a.extend_from_slice(part.as_bytes());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_for_their_tenant_and_name_with_the_same_key() {
        let s = Sealer::new(&[7; 32]);
        let sealed = s.seal("acme", "API_KEY", "hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open("acme", "API_KEY", &sealed).unwrap(), "hunter2");
        assert_ne!(sealed, s.seal("acme", "API_KEY", "hunter2").unwrap());
        assert!(s.open("other", "API_KEY", &sealed).is_err());
        assert!(s.open("acme", "OTHER", &sealed).is_err());
        assert!(Sealer::new(&[8; 32])
            .open("acme", "API_KEY", &sealed)
            .is_err());
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        let e = s.open("acme", "API_KEY", &bad).unwrap_err().to_string();
        assert!(e.contains("\"API_KEY\"") && e.contains("\"acme\""), "{e}");
        assert!(s.open("acme", "API_KEY", &sealed[..10]).is_err());
    }
}
