//! AES-GCM (NIST SP 800-38D) for `crypto.subtle` (`ops_crypto.rs`): the
//! `aes` block cipher in counter mode and the `ghash` universal hash, for
//! IVs of any length (a 12-byte IV is the counter's start, any other is
//! hashed into it) and tags of any length up to 16 bytes. Pure computation
//! on bytes; the caller caps every input.

enum Aes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Option<Self> {
        use aes::cipher::KeyInit as _;
        Some(match key.len() {
            16 => Aes::A128(aes::Aes128::new_from_slice(key).ok()?),
            24 => Aes::A192(aes::Aes192::new_from_slice(key).ok()?),
            32 => Aes::A256(aes::Aes256::new_from_slice(key).ok()?),
            _ => return None,
        })
    }
    fn encrypt(&self, block: &mut [u8; 16]) {
        use aes::cipher::BlockEncrypt as _;
        let b = aes::Block::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.encrypt_block(b),
            Aes::A192(c) => c.encrypt_block(b),
            Aes::A256(c) => c.encrypt_block(b),
        }
    }
}

/// GCM (NIST SP 800-38D) on the `aes` block cipher and the `ghash`
/// universal hash, for IVs of any length and tags of 4 to 16 bytes.
pub(crate) struct Gcm {
    aes: Aes,
    h: [u8; 16],
    j0: [u8; 16],
}

impl Gcm {
    pub(crate) fn new(key: &[u8], iv: &[u8]) -> Option<Self> {
        let aes = Aes::new(key)?;
        let mut h = [0u8; 16];
        aes.encrypt(&mut h);
        let mut j0 = [0u8; 16];
        if iv.len() == 12 {
            j0[..12].copy_from_slice(iv);
            j0[15] = 1;
        } else {
            // J0 = GHASH(IV || 0-pad || 0^64 || [len(IV) in bits]_64)
            let mut len_block = [0u8; 16];
            len_block[8..].copy_from_slice(&(iv.len() as u64 * 8).to_be_bytes());
            j0 = Self::ghash(&h, &[iv, &len_block]);
        }
        Some(Gcm { aes, h, j0 })
    }
    fn ghash(h: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
        use ghash::universal_hash::{KeyInit as _, UniversalHash as _};
        let mut g = ghash::GHash::new(ghash::Key::from_slice(h));
        for p in parts {
            g.update_padded(p);
        }
        g.finalize().into()
    }
    /// XORs `data` with the key stream from inc32(J0) on.
    pub(crate) fn ctr(&self, data: &mut [u8]) {
        let mut counter = u32::from_be_bytes([self.j0[12], self.j0[13], self.j0[14], self.j0[15]]);
        for chunk in data.chunks_mut(16) {
            counter = counter.wrapping_add(1);
            let mut block = self.j0;
            block[12..].copy_from_slice(&counter.to_be_bytes());
            self.aes.encrypt(&mut block);
            for (d, k) in chunk.iter_mut().zip(block) {
                *d ^= k;
            }
        }
    }
    pub(crate) fn tag(&self, aad: &[u8], ciphertext: &[u8], len: usize) -> Vec<u8> {
        let mut lens = [0u8; 16];
        lens[..8].copy_from_slice(&(aad.len() as u64 * 8).to_be_bytes());
        lens[8..].copy_from_slice(&(ciphertext.len() as u64 * 8).to_be_bytes());
        let s = Self::ghash(&self.h, &[aad, ciphertext, &lens]);
        let mut t = self.j0;
        self.aes.encrypt(&mut t);
        t.iter().zip(s).take(len).map(|(a, b)| a ^ b).collect()
    }
}
