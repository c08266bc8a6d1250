//! PBKDF2 (RFC 8018) in steps the CPU limit can stop between.
//!
//! PBKDF2's work is chosen by the caller (the iteration count), and native
//! work cannot be interrupted by the CPU watchdog. So the JS side
//! (`js/web/crypto_algorithms.js`) runs the iterations of each output block
//! in steps of at most [`MAX_STEP`] through `pbkdf2Step`, carrying the
//! block's state (`U`, the last HMAC output, and `T`, their XOR) between
//! calls: the tenant's CPU limit stops a derivation that runs too long
//! between two steps, and no single call takes more than a few ms.

use hmac::{Hmac, Mac};

use super::ops_web::{bytes_arg, int_arg, throw};

/// Iterations one `pbkdf2Step` call runs at most (about 2-3 ms with
/// SHA-256, 10 ms with SHA-512 in a release build).
pub const MAX_STEP: u32 = 20_000;
/// Largest password or salt (bytes).
pub const MAX_INPUT: usize = 16 << 10;

fn step<M: Mac + Clone>(
    prf: M,
    salt: &[u8],
    block: u32,
    u: &mut Vec<u8>,
    t: &mut Vec<u8>,
    mut n: u32,
) {
    if u.is_empty() {
        // U1 = PRF(P, S || INT(i)); T = U1.
        let mut m = prf.clone();
        m.update(salt);
        m.update(&block.to_be_bytes());
        *u = m.finalize().into_bytes().to_vec();
        *t = u.clone();
        n -= 1;
    }
    for _ in 0..n {
        let mut m = prf.clone();
        m.update(u);
        let next = m.finalize().into_bytes();
        u.copy_from_slice(&next);
        for (a, b) in t.iter_mut().zip(next.iter()) {
            *a ^= b;
        }
    }
}

/// `pbkdf2Step(hash, password, salt, block, u, t, n)`: runs `n` (1 to
/// [`MAX_STEP`]) more iterations of output block `block` (from 1) from the
/// state `u`, `t` (both empty at the start of a block); returns the new
/// state as one buffer, `u` then `t`.
pub(crate) fn op_pbkdf2_step(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let hash = int_arg(scope, args.get(0));
    let block = u32::try_from(int_arg(scope, args.get(3))).unwrap_or(0);
    let n = u32::try_from(int_arg(scope, args.get(6))).unwrap_or(0);
    let (Some(password), Some(salt), Some(mut u), Some(mut t)) = (
        bytes_arg(scope, args.get(1), "PBKDF2", MAX_INPUT),
        bytes_arg(scope, args.get(2), "PBKDF2", MAX_INPUT),
        bytes_arg(scope, args.get(4), "PBKDF2", 64),
        bytes_arg(scope, args.get(5), "PBKDF2", 64),
    ) else {
        return;
    };
    let hlen = match hash {
        1 => 20,
        256 => 32,
        384 => 48,
        512 => 64,
        _ => 0,
    };
    let fresh = u.is_empty() && t.is_empty();
    if hlen == 0
        || block == 0
        || n == 0
        || n > MAX_STEP
        || !(fresh || (u.len() == hlen && t.len() == hlen))
    {
        throw(scope, false, "PBKDF2: bad step");
        return;
    }
    macro_rules! run {
        ($d:ty) => {
            match Hmac::<$d>::new_from_slice(&password) {
                Ok(prf) => step(prf, &salt, block, &mut u, &mut t, n),
                Err(_) => {
                    throw(scope, false, "PBKDF2: bad key");
                    return;
                }
            }
        };
    }
    match hash {
        1 => run!(sha1::Sha1),
        256 => run!(sha2::Sha256),
        384 => run!(sha2::Sha384),
        _ => run!(sha2::Sha512),
    }
    u.extend_from_slice(&t);
    if let Some(ab) = super::ops_web::array_buffer(scope, &u) {
        rv.set(ab.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_give_rfc_6070_answers_whatever_their_size() {
        // RFC 6070: "password", "salt", 4096 iterations, 20 bytes of SHA-1.
        let want = [
            0x4b, 0x00, 0x79, 0x01, 0xb7, 0x65, 0x48, 0x9a, 0xbe, 0xad, 0x49, 0xd9, 0x26, 0xf7,
            0x21, 0xd0, 0x65, 0xa4, 0x29, 0xc1,
        ];
        for chunk in [4096u32, 1000, 1] {
            let (mut u, mut t) = (Vec::new(), Vec::new());
            let mut left = 4096u32;
            while left > 0 {
                let n = left.min(chunk);
                let prf = Hmac::<sha1::Sha1>::new_from_slice(b"password").unwrap();
                step(prf, b"salt", 1, &mut u, &mut t, n);
                left -= n;
            }
            assert_eq!(t, want, "steps of {chunk}");
        }
    }
}
