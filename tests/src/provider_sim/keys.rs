//! Key pairs the simulator and its tests generate for themselves (never a real key): one for
//! our side (the WeChat merchant key, the Alipay application key) and one for the provider's
//! (the WeChat platform key, Alipay's key). Generated once per test process.

use std::sync::OnceLock;

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::RsaPrivateKey;
use voltline_cloud::payment::keys::{PrivateKey, PublicKey};

/// Bits of the generated keys: the algorithm is the same at any size, and 2048-bit key
/// generation in an unoptimised test build is slow; real keys are 2048 bits or more.
pub const TEST_KEY_BITS: usize = 1024;

/// One key pair, as parsed keys and as PEM text.
#[derive(Clone)]
pub struct Pair {
    pub private: PrivateKey,
    pub public: PublicKey,
    pub private_pem: String,
    pub public_pem: String,
}

fn generate() -> Pair {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, TEST_KEY_BITS).expect("an RSA key");
    let public = key.to_public_key();
    Pair {
        private_pem: key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string(),
        public_pem: public.to_public_key_pem(LineEnding::LF).expect("PEM"),
        private: PrivateKey::from_key(key),
        public: PublicKey::from_key(public),
    }
}

/// Our side's pair and the provider's pair.
pub struct SimKeys {
    pub merchant: Pair,
    pub provider: Pair,
    /// A third pair no one trusts (to forge with).
    pub stranger: Pair,
}

/// The process's keys.
pub fn keys() -> &'static SimKeys {
    static KEYS: OnceLock<SimKeys> = OnceLock::new();
    KEYS.get_or_init(|| SimKeys {
        merchant: generate(),
        provider: generate(),
        stranger: generate(),
    })
}
