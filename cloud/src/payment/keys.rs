//! RSA keys from PEM and SHA256withRSA (PKCS#1 v1.5) signatures in base64: the one signing
//! primitive both connectors use (WeChat Pay API v3 and Alipay's RSA2), over the RustCrypto
//! `rsa` crate. Signing is deterministic, so signatures are checked against vectors made by
//! an independent implementation (OpenSSL) in `test_vectors`.
//!
//! It must never log or format a key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Why a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the {0} is not an RSA key in PEM (PKCS#8 or PKCS#1); check the configured key")]
    BadKey(&'static str),
    #[error("the signature is not valid base64")]
    BadEncoding,
    #[error("the signature does not match the signed text")]
    Mismatch,
}

/// A private key that signs.
#[derive(Clone)]
pub struct PrivateKey(SigningKey<Sha256>);

/// A public key that verifies.
#[derive(Clone)]
pub struct PublicKey(VerifyingKey<Sha256>);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey")
    }
}

impl PrivateKey {
    /// Parses a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|_| KeyError::BadKey("private key"))?;
        Ok(PrivateKey(SigningKey::new(key)))
    }

    /// From a parsed key (tests and simulators that generate their own).
    pub fn from_key(key: RsaPrivateKey) -> PrivateKey {
        PrivateKey(SigningKey::new(key))
    }

    /// SHA256withRSA of `message`, base64.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        B64.encode(self.0.sign(message).to_bytes())
    }
}

impl PublicKey {
    /// Parses an SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let key = RsaPublicKey::from_public_key_pem(pem.trim())
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
            .map_err(|_| KeyError::BadKey("public key"))?;
        Ok(PublicKey(VerifyingKey::new(key)))
    }

    /// From a parsed key.
    pub fn from_key(key: RsaPublicKey) -> PublicKey {
        PublicKey(VerifyingKey::new(key))
    }

    /// Checks a base64 SHA256withRSA `signature` of `message`.
    pub fn verify_b64(&self, message: &[u8], signature: &str) -> Result<(), KeyError> {
        let bytes = B64
            .decode(signature.trim())
            .map_err(|_| KeyError::BadEncoding)?;
        let sig = Signature::try_from(bytes.as_slice()).map_err(|_| KeyError::Mismatch)?;
        self.0.verify(message, &sig).map_err(|_| KeyError::Mismatch)
    }
}

/// A random alphanumeric nonce of `len` characters (request nonces).
pub fn nonce(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors as tv;
    use super::*;

    #[test]
    fn signatures_match_openssl_and_verify() {
        let sk = PrivateKey::from_pem(tv::PRIVATE_KEY_PEM).unwrap();
        let pk = PublicKey::from_pem(tv::PUBLIC_KEY_PEM).unwrap();
        assert_eq!(
            sk.sign_b64(tv::WECHAT_MESSAGE.as_bytes()),
            tv::WECHAT_SIGNATURE
        );
        assert_eq!(
            pk.verify_b64(tv::WECHAT_MESSAGE.as_bytes(), tv::WECHAT_SIGNATURE),
            Ok(())
        );
        assert_eq!(
            pk.verify_b64(b"tampered", tv::WECHAT_SIGNATURE),
            Err(KeyError::Mismatch)
        );
        assert_eq!(pk.verify_b64(b"x", "%%%"), Err(KeyError::BadEncoding));
        assert!(PrivateKey::from_pem("not a key").is_err());
        assert_eq!(format!("{sk:?}"), "PrivateKey(<redacted>)");
        assert_eq!(nonce(32).len(), 32);
    }
}
