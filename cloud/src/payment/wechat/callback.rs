//! WeChat Pay notifications: the envelope, the `AEAD_AES_256_GCM` resource decrypted with the
//! API v3 key (nonce and associated data from the envelope, the 16-byte tag at the end of the
//! ciphertext), and the Pay Score order inside it. Verify the platform signature of the body
//! ([`super::sign::PlatformSignature`]) before decrypting.
//!
//! [`encrypt_resource`] is the provider's side, for simulators and tests.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The only algorithm API v3 uses for resources.
pub const ALGORITHM: &str = "AEAD_AES_256_GCM";
/// The event of a collected Pay Score order.
pub const EVENT_USER_PAID: &str = "PAYSCORE.USER_PAID";

/// A notification as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub create_time: String,
    pub event_type: String,
    pub resource_type: String,
    pub resource: Resource,
    #[serde(default)]
    pub summary: String,
}

/// The encrypted resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub original_type: String,
    pub nonce: String,
}

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("resource algorithm {0} is not AEAD_AES_256_GCM")]
    Algorithm(String),
    #[error("the API v3 key must be 32 bytes; check payments.wechat.api_v3_key")]
    Key,
    #[error("the resource nonce must be 12 bytes")]
    Nonce,
    #[error("the ciphertext is not base64")]
    Encoding,
    #[error("the resource does not decrypt (wrong API v3 key, or tampered)")]
    Tampered,
}

fn cipher(api_v3_key: &str) -> Result<Aes256Gcm, DecryptError> {
    Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).map_err(|_| DecryptError::Key)
}

fn nonce_of(text: &str) -> Result<Nonce<aes_gcm::aes::cipher::consts::U12>, DecryptError> {
    let bytes: [u8; 12] = text
        .as_bytes()
        .try_into()
        .map_err(|_| DecryptError::Nonce)?;
    Ok(bytes.into())
}

/// Decrypts `resource` with the API v3 key.
pub fn decrypt_resource(api_v3_key: &str, resource: &Resource) -> Result<Vec<u8>, DecryptError> {
    if resource.algorithm != ALGORITHM {
        return Err(DecryptError::Algorithm(resource.algorithm.clone()));
    }
    if resource.nonce.len() != 12 {
        return Err(DecryptError::Nonce);
    }
    let data = B64
        .decode(&resource.ciphertext)
        .map_err(|_| DecryptError::Encoding)?;
    cipher(api_v3_key)?
        .decrypt(
            &nonce_of(&resource.nonce)?,
            Payload {
                msg: &data,
                aad: resource.associated_data.as_bytes(),
            },
        )
        .map_err(|_| DecryptError::Tampered)
}

/// Encrypts `plaintext` as a resource (the provider's side; simulators and tests).
pub fn encrypt_resource(
    api_v3_key: &str,
    nonce: &str,
    associated_data: &str,
    original_type: &str,
    plaintext: &[u8],
) -> Result<Resource, DecryptError> {
    if nonce.len() != 12 {
        return Err(DecryptError::Nonce);
    }
    let data = cipher(api_v3_key)?
        .encrypt(
            &nonce_of(nonce)?,
            Payload {
                msg: plaintext,
                aad: associated_data.as_bytes(),
            },
        )
        .map_err(|_| DecryptError::Tampered)?;
    Ok(Resource {
        algorithm: ALGORITHM.to_owned(),
        ciphertext: B64.encode(data),
        associated_data: associated_data.to_owned(),
        original_type: original_type.to_owned(),
        nonce: nonce.to_owned(),
    })
}

/// A Pay Score service order, as in answers, queries and decrypted notifications (the fields
/// we use; others are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOrder {
    pub out_order_no: String,
    #[serde(default)]
    pub order_id: String,
    /// CREATED, DOING, DONE, REVOKED, EXPIRED.
    #[serde(default)]
    pub state: String,
    /// USER_CONFIRM, MCH_COMPLETE, USER_PAID (with DOING/DONE).
    #[serde(default)]
    pub state_description: String,
    #[serde(default)]
    pub total_amount: Option<i64>,
    #[serde(default)]
    pub collection: Option<Collection>,
}

/// The collection of a completed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// USER_PAYING or USER_PAID.
    pub state: String,
    #[serde(default)]
    pub total_amount: i64,
    #[serde(default)]
    pub paid_amount: i64,
    #[serde(default)]
    pub details: Vec<CollectionDetail>,
}

/// One payment of a collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionDetail {
    #[serde(default)]
    pub seq: i64,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub paid_type: String,
    #[serde(default)]
    pub paid_time: String,
    #[serde(default)]
    pub transaction_id: String,
}

impl ServiceOrder {
    /// The payment id of a collected order.
    pub fn transaction_id(&self) -> Option<&str> {
        let c = self
            .collection
            .as_ref()
            .filter(|c| c.state == "USER_PAID")?;
        c.details
            .iter()
            .map(|d| d.transaction_id.as_str())
            .find(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::test_vectors as tv;
    use super::*;

    fn vector() -> Resource {
        Resource {
            algorithm: ALGORITHM.into(),
            ciphertext: tv::GCM_CIPHERTEXT.into(),
            associated_data: tv::GCM_AAD.into(),
            original_type: "payscore".into(),
            nonce: tv::GCM_NONCE.into(),
        }
    }

    #[test]
    fn decrypts_the_known_vector_and_refuses_tampering() {
        let plain = decrypt_resource(tv::V3_KEY, &vector()).unwrap();
        assert_eq!(plain, tv::GCM_PLAINTEXT.as_bytes());
        let mut r = vector();
        r.associated_data = "other".into();
        assert_eq!(
            decrypt_resource(tv::V3_KEY, &r),
            Err(DecryptError::Tampered)
        );
        assert_eq!(
            decrypt_resource("fedcba9876543210fedcba9876543210", &vector()),
            Err(DecryptError::Tampered)
        );
        let mut r = vector();
        r.algorithm = "AES_128_CBC".into();
        assert!(matches!(
            decrypt_resource(tv::V3_KEY, &r),
            Err(DecryptError::Algorithm(_))
        ));
        assert_eq!(decrypt_resource("short", &vector()), Err(DecryptError::Key));
    }

    #[test]
    fn encryption_matches_the_vector_and_round_trips() {
        let r = encrypt_resource(
            tv::V3_KEY,
            tv::GCM_NONCE,
            tv::GCM_AAD,
            "payscore",
            tv::GCM_PLAINTEXT.as_bytes(),
        )
        .unwrap();
        assert_eq!(r, vector());
        let order: ServiceOrder =
            serde_json::from_slice(&decrypt_resource(tv::V3_KEY, &r).unwrap()).unwrap();
        assert_eq!(order.out_order_no, "vl1");
        assert_eq!(order.state, "DONE");
        assert_eq!(order.transaction_id(), None);
    }
}
