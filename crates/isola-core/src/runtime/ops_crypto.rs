//! Native halves of `crypto.subtle` (`js/web/crypto.js`,
//! `js/web/crypto_algorithms.js`): HMAC, ECDSA on P-256 and P-384, Ed25519,
//! AES-GCM, PBKDF2 and HKDF, done by RustCrypto crates (`hmac`, `p256`,
//! `p384`, `ed25519-dalek`, `aes` with `ghash`, `pbkdf2`, `hkdf`). The JS
//! layer keeps the spec's shapes, checks and errors; these ops only take
//! bytes and small integers, never convert a tenant object, and give back
//! `ArrayBuffer`s made through the tenant's counted allocator, or `null`
//! when the key data or a tag is bad (the JS turns that into the spec's
//! `DataError` or `OperationError`).
//!
//! Key material lives in the JS side's private key records and is handed
//! to each call: private keys as the scalar (ECDSA) or the 32-byte seed
//! (Ed25519), public keys as the uncompressed SEC1 point or the 32 Ed25519
//! bytes. Curves are named by number: 256 (P-256), 384 (P-384), 25519.
//!
//! Host work: every input is capped before it is copied (data at
//! `MAX_BYTES_INPUT`, key-derivation inputs at [`MAX_KDF_INPUT`]). PBKDF2,
//! the one algorithm whose work a caller chooses, runs in steps the CPU
//! limit can stop between (`ops_pbkdf2.rs`).

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use ed25519_dalek::{Signer as _, SigningKey as EdSigningKey, VerifyingKey as EdVerifyingKey};
use sha2::Digest as _;

use super::gcm::Gcm;
use super::ops_web::{array_buffer, bytes_arg, int_arg, throw, MAX_BYTES_INPUT};

/// Largest password, salt, info or input keying material of PBKDF2/HKDF
/// (bytes): HKDF hashes `info` once per output block.
pub const MAX_KDF_INPUT: usize = 16 << 10;
/// Largest output of one `deriveBits` (bytes): HKDF's own maximum with
/// SHA-512 (255 blocks of 64 bytes).
pub const MAX_DERIVED_BYTES: usize = 255 * 64;

fn set_bytes(scope: &mut v8::PinScope, rv: &mut v8::ReturnValue<v8::Value>, out: Option<&[u8]>) {
    match out {
        Some(b) => {
            if let Some(ab) = array_buffer(scope, b) {
                rv.set(ab.into());
            }
        }
        None => rv.set(v8::null(scope).into()),
    }
}

/// The digest of `data` with SHA-1/256/384/512 (`hash` 1, 256, 384, 512).
fn hash_of(hash: i32, data: &[u8]) -> Option<Vec<u8>> {
    Some(match hash {
        1 => sha1::Sha1::digest(data).to_vec(),
        256 => sha2::Sha256::digest(data).to_vec(),
        384 => sha2::Sha384::digest(data).to_vec(),
        512 => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

// ---------- HMAC ----------

/// HMAC of `data` under `key` with SHA-1/256/384/512 (`alg` 1, 256, 384, 512).
fn hmac_tag(alg: i32, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use hmac::{Hmac, Mac};
    fn tag<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
        m.update(data);
        Some(m.finalize().into_bytes().to_vec())
    }
    match alg {
        1 => tag::<Hmac<sha1::Sha1>>(key, data),
        256 => tag::<Hmac<sha2::Sha256>>(key, data),
        384 => tag::<Hmac<sha2::Sha384>>(key, data),
        512 => tag::<Hmac<sha2::Sha512>>(key, data),
        _ => None,
    }
}

/// `N` byte arguments starting at argument `first`, each at most `max`.
fn bytes_args<const N: usize>(
    scope: &mut v8::PinScope,
    args: &v8::FunctionCallbackArguments,
    first: i32,
    what: &str,
    max: usize,
) -> Option<[Vec<u8>; N]> {
    let mut out: [Vec<u8>; N] = std::array::from_fn(|_| Vec::new());
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = bytes_arg(scope, args.get(first + i as i32), what, max)?;
    }
    Some(out)
}

/// Constant time: every byte is looked at whatever the first difference.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `hmacSign(alg, key, data)`: an `ArrayBuffer` with the HMAC tag.
pub(crate) fn op_hmac_sign(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let alg = int_arg(scope, args.get(0));
    let Some([key, data]) = bytes_args(scope, &args, 1, "sign", MAX_BYTES_INPUT) else {
        return;
    };
    let Some(out) = hmac_tag(alg, &key, &data) else {
        throw(scope, false, "sign: unsupported hash");
        return;
    };
    set_bytes(scope, &mut rv, Some(&out));
}

/// `hmacVerify(alg, key, data, signature)`: whether `signature` is the HMAC
/// tag of `data` (compared in constant time).
pub(crate) fn op_hmac_verify(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let alg = int_arg(scope, args.get(0));
    let Some([key, data, sig]) = bytes_args(scope, &args, 1, "verify", MAX_BYTES_INPUT) else {
        return;
    };
    let Some(tag) = hmac_tag(alg, &key, &data) else {
        throw(scope, false, "verify: unsupported hash");
        return;
    };
    let ok = same_bytes(&tag, &sig);
    rv.set(v8::Boolean::new(scope, ok).into());
}

// ---------- ECDSA (P-256, P-384) and Ed25519 ----------

/// Key formats of `keyImport` / `keyExport`.
const RAW_PUBLIC: i32 = 0;
const SPKI: i32 = 1;
const PKCS8: i32 = 2;
const PRIVATE_SCALAR: i32 = 3;

/// One NIST curve's operations, on byte strings (`d` the private scalar,
/// `q` the uncompressed public point).
macro_rules! nist_curve {
    ($m:ident, $c:ident) => {
        mod $m {
            use $c::ecdsa::signature::hazmat::{PrehashVerifier as _, RandomizedPrehashSigner as _};
            use $c::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $c::elliptic_curve::sec1::ToEncodedPoint as _;
            use $c::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
            use $c::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
            use $c::{PublicKey, SecretKey};

            fn pair(s: &SecretKey) -> Vec<u8> {
                let mut out = s.to_bytes().to_vec();
                out.extend_from_slice(s.public_key().to_encoded_point(false).as_bytes());
                out
            }
            /// A random private key, as `d || q`.
            pub fn generate(fill: impl Fn(&mut [u8]) -> bool, len: usize) -> Option<Vec<u8>> {
                for _ in 0..16 {
                    let mut d = vec![0u8; len];
                    if !fill(&mut d) {
                        return None;
                    }
                    if let Ok(s) = SecretKey::from_slice(&d) {
                        return Some(pair(&s));
                    }
                }
                None
            }
            pub fn import(kind: i32, data: &[u8], len: usize) -> Option<Vec<u8>> {
                match kind {
                    super::RAW_PUBLIC => PublicKey::from_sec1_bytes(data)
                        .ok()
                        .map(|p| p.to_encoded_point(false).as_bytes().to_vec()),
                    super::SPKI => PublicKey::from_public_key_der(data)
                        .ok()
                        .map(|p| p.to_encoded_point(false).as_bytes().to_vec()),
                    super::PKCS8 => SecretKey::from_pkcs8_der(data).ok().map(|s| pair(&s)),
                    super::PRIVATE_SCALAR if data.len() == len => {
                        SecretKey::from_slice(data).ok().map(|s| pair(&s))
                    }
                    _ => None,
                }
            }
            pub fn export(kind: i32, key: &[u8]) -> Option<Vec<u8>> {
                match kind {
                    super::SPKI => PublicKey::from_sec1_bytes(key)
                        .ok()?
                        .to_public_key_der()
                        .ok()
                        .map(|d| d.as_bytes().to_vec()),
                    super::PKCS8 => SecretKey::from_slice(key)
                        .ok()?
                        .to_pkcs8_der()
                        .ok()
                        .map(|d| d.as_bytes().to_vec()),
                    _ => None,
                }
            }
            /// The raw `r || s` signature of a message digest, hedged: RFC
            /// 6979's nonce with fresh random bytes mixed in (so two
            /// signatures of one message differ, as WebCrypto expects).
            pub fn sign(d: &[u8], digest: &[u8], rng: &mut super::Entropy) -> Option<Vec<u8>> {
                let key = SigningKey::from_slice(d).ok()?;
                let sig: Signature = key.sign_prehash_with_rng(rng, digest).ok()?;
                Some(sig.to_bytes().to_vec())
            }
            pub fn verify(q: &[u8], digest: &[u8], sig: &[u8]) -> bool {
                let (Ok(key), Ok(sig)) = (VerifyingKey::from_sec1_bytes(q), Signature::from_slice(sig)) else {
                    return false;
                };
                key.verify_prehash(digest, &sig).is_ok()
            }
        }
    };
}

/// Random bytes drawn from the kernel before a signature (so a failing
/// source is an error, not a panic inside the signer), handed out as the
/// `rand_core` generator the hedged ECDSA signer takes.
pub(crate) struct Entropy {
    bytes: [u8; 64],
    at: usize,
}

impl Entropy {
    fn new() -> Option<Self> {
        let mut bytes = [0u8; 64];
        crate::runtime::platform::fill_random(&mut bytes).then_some(Entropy { bytes, at: 0 })
    }
}

impl p256::elliptic_curve::rand_core::RngCore for Entropy {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The signer asks for one field's worth (at most 48 bytes); past
        // the 64 drawn, zeros (RFC 6979's nonce stays sound without them).
        for d in dest {
            *d = self.bytes.get(self.at).copied().unwrap_or(0);
            self.at = self.at.saturating_add(1);
        }
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), p256::elliptic_curve::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl p256::elliptic_curve::rand_core::CryptoRng for Entropy {}

nist_curve!(p256_ops, p256);
nist_curve!(p384_ops, p384);

/// Ed25519 in PKCS #8 v1 (RFC 8410) is this prefix and the 32-byte seed;
/// its SPKI is the other prefix and the 32 public bytes.
const ED_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const ED_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn ed_pair(k: &EdSigningKey) -> Vec<u8> {
    let mut out = k.to_bytes().to_vec();
    out.extend_from_slice(&k.verifying_key().to_bytes());
    out
}

fn ed_import(kind: i32, data: &[u8]) -> Option<Vec<u8>> {
    match kind {
        // Any 32 bytes: a key that is not a valid point verifies nothing.
        RAW_PUBLIC if data.len() == 32 => Some(data.to_vec()),
        SPKI => EdVerifyingKey::from_public_key_der(data)
            .ok()
            .map(|k| k.to_bytes().to_vec()),
        PKCS8 => EdSigningKey::from_pkcs8_der(data).ok().map(|k| ed_pair(&k)),
        PRIVATE_SCALAR => {
            let seed: [u8; 32] = data.try_into().ok()?;
            Some(ed_pair(&EdSigningKey::from_bytes(&seed)))
        }
        _ => None,
    }
}

fn ed_export(kind: i32, key: &[u8]) -> Option<Vec<u8>> {
    let prefix: &[u8] = match kind {
        SPKI => &ED_SPKI_PREFIX,
        PKCS8 => &ED_PKCS8_PREFIX,
        _ => return None,
    };
    if key.len() != 32 {
        return None;
    }
    Some([prefix, key].concat())
}

/// Private key length of a curve (and so its field size).
fn scalar_len(curve: i32) -> Option<usize> {
    match curve {
        256 | 25519 => Some(32),
        384 => Some(48),
        _ => None,
    }
}

/// `keyGenerate(curve)`: a new private key as `d || public` (`null` if the
/// random source failed).
pub(crate) fn op_key_generate(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let fill = crate::runtime::platform::fill_random;
    let out = match int_arg(scope, args.get(0)) {
        256 => p256_ops::generate(fill, 32),
        384 => p384_ops::generate(fill, 48),
        25519 => {
            let mut seed = [0u8; 32];
            fill(&mut seed).then(|| ed_pair(&EdSigningKey::from_bytes(&seed)))
        }
        _ => None,
    };
    set_bytes(scope, &mut rv, out.as_deref());
}

/// `keyImport(curve, kind, bytes)`: the key in the form the other ops take
/// (a public key for raw and SPKI, `d || public` for PKCS #8 and a private
/// scalar), or `null` if the bytes are not a valid key of that curve.
pub(crate) fn op_key_import(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let curve = int_arg(scope, args.get(0));
    let kind = int_arg(scope, args.get(1));
    let Some(data) = bytes_arg(scope, args.get(2), "importKey", MAX_KDF_INPUT) else {
        return;
    };
    let out = match (curve, scalar_len(curve)) {
        (256, Some(len)) => p256_ops::import(kind, &data, len),
        (384, Some(len)) => p384_ops::import(kind, &data, len),
        (25519, _) => ed_import(kind, &data),
        _ => None,
    };
    set_bytes(scope, &mut rv, out.as_deref());
}

/// `keyExport(curve, kind, key)`: SPKI of a public key or PKCS #8 of a
/// private scalar/seed.
pub(crate) fn op_key_export(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let curve = int_arg(scope, args.get(0));
    let kind = int_arg(scope, args.get(1));
    let Some(key) = bytes_arg(scope, args.get(2), "exportKey", 256) else {
        return;
    };
    let out = match curve {
        256 => p256_ops::export(kind, &key),
        384 => p384_ops::export(kind, &key),
        25519 => ed_export(kind, &key),
        _ => None,
    };
    set_bytes(scope, &mut rv, out.as_deref());
}

/// The message digest an ECDSA signature covers, left-padded with zeros
/// to the field size when the hash is shorter (the integer is the same).
fn ecdsa_digest(curve: i32, hash: i32, data: &[u8]) -> Option<Vec<u8>> {
    let len = scalar_len(curve)?;
    let h = hash_of(hash, data)?;
    Some(if h.len() < len {
        [vec![0u8; len - h.len()], h].concat()
    } else {
        h
    })
}

/// `keySign(curve, hash, privateKey, data)`: an ECDSA signature (raw
/// `r || s`, RFC 6979 hedged with random bytes) of `data` hashed with `hash`, or
/// an Ed25519 signature (`hash` ignored).
pub(crate) fn op_key_sign(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let curve = int_arg(scope, args.get(0));
    let hash = int_arg(scope, args.get(1));
    let Some([key, data]) = bytes_args(scope, &args, 2, "sign", MAX_BYTES_INPUT) else {
        return;
    };
    let Some(mut rng) = Entropy::new() else {
        throw(scope, false, "sign: the system's random source failed");
        return;
    };
    let out = match curve {
        256 => ecdsa_digest(curve, hash, &data).and_then(|h| p256_ops::sign(&key, &h, &mut rng)),
        384 => ecdsa_digest(curve, hash, &data).and_then(|h| p384_ops::sign(&key, &h, &mut rng)),
        25519 => <[u8; 32]>::try_from(key.as_slice()).ok().map(|seed| {
            EdSigningKey::from_bytes(&seed)
                .sign(&data)
                .to_bytes()
                .to_vec()
        }),
        _ => None,
    };
    if out.is_none() {
        throw(scope, false, "sign: the key could not sign");
        return;
    }
    set_bytes(scope, &mut rv, out.as_deref());
}

/// `keyVerify(curve, hash, publicKey, data, signature)`: whether the
/// signature is valid (Ed25519: RFC 8032 with the strict checks the spec
/// asks for, refusing small-order keys and `R`).
pub(crate) fn op_key_verify(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let curve = int_arg(scope, args.get(0));
    let hash = int_arg(scope, args.get(1));
    let Some([key, data, sig]) = bytes_args(scope, &args, 2, "verify", MAX_BYTES_INPUT) else {
        return;
    };
    let ok = match curve {
        256 => ecdsa_digest(curve, hash, &data).is_some_and(|h| p256_ops::verify(&key, &h, &sig)),
        384 => ecdsa_digest(curve, hash, &data).is_some_and(|h| p384_ops::verify(&key, &h, &sig)),
        25519 => ed_verify(&key, &data, &sig),
        _ => false,
    };
    rv.set(v8::Boolean::new(scope, ok).into());
}

fn ed_verify(key: &[u8], data: &[u8], sig: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(sig)) else {
        return false;
    };
    let Ok(key) = EdVerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify_strict(data, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

// ---------- AES-GCM ----------

/// `aesGcm(encrypt, key, iv, additionalData, data, tagBytes)`: the
/// ciphertext with its tag appended, or the plaintext; `null` when the tag
/// does not match or the input is shorter than the tag.
pub(crate) fn op_aes_gcm(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let encrypt = int_arg(scope, args.get(0)) == 1;
    let tag_len = int_arg(scope, args.get(5));
    let Some([key, iv, aad, mut data]) = bytes_args(scope, &args, 1, "AES-GCM", MAX_BYTES_INPUT)
    else {
        return;
    };
    let tag_len = usize::try_from(tag_len).unwrap_or(0);
    let Some(gcm) = (4..=16)
        .contains(&tag_len)
        .then(|| Gcm::new(&key, &iv))
        .flatten()
        .filter(|_| !iv.is_empty())
    else {
        throw(scope, false, "AES-GCM: bad key, IV or tag length");
        return;
    };
    if encrypt {
        gcm.ctr(&mut data);
        let tag = gcm.tag(&aad, &data, tag_len);
        data.extend_from_slice(&tag);
        set_bytes(scope, &mut rv, Some(&data));
        return;
    }
    let Some(split) = data.len().checked_sub(tag_len) else {
        set_bytes(scope, &mut rv, None);
        return;
    };
    let (ciphertext, tag) = data.split_at_mut(split);
    if !same_bytes(&gcm.tag(&aad, ciphertext, tag_len), tag) {
        set_bytes(scope, &mut rv, None);
        return;
    }
    gcm.ctr(ciphertext);
    set_bytes(scope, &mut rv, Some(ciphertext));
}

// ---------- PBKDF2 and HKDF ----------

fn hash_len(hash: i32) -> Option<usize> {
    match hash {
        1 => Some(20),
        256 => Some(32),
        384 => Some(48),
        512 => Some(64),
        _ => None,
    }
}

/// `hkdf(hash, ikm, salt, info, bytes)`: `bytes` derived bytes, or `null`
/// if more than 255 hash lengths are asked for.
pub(crate) fn op_hkdf(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let hash = int_arg(scope, args.get(0));
    let len = usize::try_from(int_arg(scope, args.get(4))).unwrap_or(usize::MAX);
    let Some([ikm, salt, info]) = bytes_args(scope, &args, 1, "HKDF", MAX_KDF_INPUT) else {
        return;
    };
    if hash_len(hash).is_none() || len > MAX_DERIVED_BYTES {
        set_bytes(scope, &mut rv, None);
        return;
    }
    let mut out = vec![0u8; len];
    let ok = match hash {
        1 => hkdf::Hkdf::<sha1::Sha1>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        256 => hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        384 => hkdf::Hkdf::<sha2::Sha384>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        _ => hkdf::Hkdf::<sha2::Sha512>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
    };
    set_bytes(scope, &mut rv, ok.then_some(out.as_slice()));
}
