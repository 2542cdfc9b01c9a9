//! HMAC-SHA256 signatures of webhook bodies (RFC 2104 over `sha2`; checked against the
//! RFC 4231 test vectors).
//!
//! The signed message is `"{t}.{body}"` where `t` is the unix time in seconds when the
//! attempt was made; the header is `Voltline-Signature: t=<t>,v1=<hex of the MAC>`. Binding the
//! timestamp lets a receiver refuse replays older than its tolerance.
//!
//! Pure: no clock (the caller passes `now`), no I/O.

use sha2::{Digest, Sha256};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "voltline-signature";
/// The header that carries the event id.
pub const EVENT_ID_HEADER: &str = "voltline-event-id";
/// The header that carries the event type.
pub const EVENT_TYPE_HEADER: &str = "voltline-event-type";

const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature header value for `body` signed with `secret` at unix second `t`.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    format!("t={t},v1={}", hex(&hmac_sha256(secret.as_bytes(), &msg)))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed: expected t=<unix seconds>,v1=<64 hex digits>")]
    Malformed,
    #[error("the signature is {age_s} s old, beyond the {tolerance_s} s tolerance: refuse it as a replay")]
    TooOld { age_s: i64, tolerance_s: i64 },
    #[error("the signature does not match the body: check the shared secret")]
    Mismatch,
}

/// Checks a received `header` against `body` and `secret` at unix second `now`.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    let age_s = (now - t).abs();
    if age_s > tolerance_s {
        return Err(SignatureError::TooOld { age_s, tolerance_s });
    }
    let want = signature_header(secret, t, body);
    let want = want.rsplit_once("v1=").map(|(_, h)| h).unwrap_or("");
    // Constant-time comparison.
    if want.len() != v1.len() {
        return Err(SignatureError::Mismatch);
    }
    let diff = want
        .bytes()
        .zip(v1.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        let _ = unhex("00");
    }

    #[test]
    fn signatures_verify_and_tampering_is_refused() {
        let h = signature_header("s3cret-s3cret-s3cret", 1_700_000_000, b"{\"a\":1}");
        assert_eq!(
            verify("s3cret-s3cret-s3cret", &h, b"{\"a\":1}", 1_700_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify("s3cret-s3cret-s3cret", &h, b"{\"a\":2}", 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other-secret-other", &h, b"{\"a\":1}", 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify("s3cret-s3cret-s3cret", &h, b"{\"a\":1}", 1_700_001_000, 300),
            Err(SignatureError::TooOld { .. })
        ));
        assert_eq!(
            verify("x", "garbage", b"", 0, 300),
            Err(SignatureError::Malformed)
        );
    }
}
