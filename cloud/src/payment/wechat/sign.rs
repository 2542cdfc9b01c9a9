//! WeChat Pay API v3 signatures, pure (the caller passes time and nonce).
//!
//! - A request is signed over `METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n` with the merchant
//!   private key (SHA256withRSA, base64) and sent as `Authorization: WECHATPAY2-SHA256-RSA2048
//!   mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`.
//! - An answer or a notification is signed by the platform over `timestamp\nnonce\nbody\n`; the
//!   headers `Wechatpay-Timestamp`, `-Nonce`, `-Signature` and `-Serial` carry it. We verify with
//!   the configured platform public key, refuse another serial, and refuse a timestamp beyond
//!   the tolerance (a replay).

use super::super::keys::{KeyError, PrivateKey, PublicKey};

/// The scheme of the `Authorization` header.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
pub const HEADER_TIMESTAMP: &str = "wechatpay-timestamp";
pub const HEADER_NONCE: &str = "wechatpay-nonce";
pub const HEADER_SIGNATURE: &str = "wechatpay-signature";
pub const HEADER_SERIAL: &str = "wechatpay-serial";

/// The text a request's signature covers.
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The text an answer's or a notification's signature covers.
pub fn response_message(timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{timestamp}\n{nonce}\n{body}\n")
}

/// The parts of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub signature: String,
    pub timestamp: i64,
    pub serial_no: String,
}

impl Authorization {
    /// Signs a request.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &PrivateKey,
        mchid: &str,
        serial_no: &str,
        method: &str,
        path_and_query: &str,
        timestamp: i64,
        nonce: &str,
        body: &str,
    ) -> Authorization {
        let message = request_message(method, path_and_query, timestamp, nonce, body);
        Authorization {
            mchid: mchid.to_owned(),
            nonce_str: nonce.to_owned(),
            signature: key.sign_b64(message.as_bytes()),
            timestamp,
            serial_no: serial_no.to_owned(),
        }
    }

    /// The header value.
    pub fn header(&self) -> String {
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{}\",signature=\"{}\",timestamp=\"{}\",serial_no=\"{}\"",
            self.mchid, self.nonce_str, self.signature, self.timestamp, self.serial_no
        )
    }

    /// Parses a header value (what a provider, or our simulator, does).
    pub fn parse(header: &str) -> Option<Authorization> {
        let rest = header.strip_prefix(SCHEME)?.trim();
        let get = |name: &str| -> Option<String> {
            rest.split(',').find_map(|part| {
                let (k, v) = part.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        Some(Authorization {
            mchid: get("mchid")?,
            nonce_str: get("nonce_str")?,
            signature: get("signature")?,
            timestamp: get("timestamp")?.parse().ok()?,
            serial_no: get("serial_no")?,
        })
    }

    /// Checks this header against the request it came with.
    pub fn verify(
        &self,
        key: &PublicKey,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> Result<(), KeyError> {
        let message = request_message(
            method,
            path_and_query,
            self.timestamp,
            &self.nonce_str,
            body,
        );
        key.verify_b64(message.as_bytes(), &self.signature)
    }
}

/// The signature headers of an answer or a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSignature {
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
    pub serial: String,
}

/// Why an answer or a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the Wechatpay-* signature headers are missing or malformed")]
    Missing,
    #[error("signed by certificate {got}, not the configured platform certificate; update payments.wechat.platform_serial_no and the key")]
    WrongSerial { got: String },
    #[error("the signature is {age_s} s old, beyond the tolerance: refused as a replay")]
    TooOld { age_s: i64 },
    #[error(transparent)]
    Signature(#[from] KeyError),
}

impl PlatformSignature {
    /// Signs an answer (what the provider, or our simulator, does).
    pub fn sign(
        key: &PrivateKey,
        serial: &str,
        timestamp: i64,
        nonce: &str,
        body: &str,
    ) -> PlatformSignature {
        PlatformSignature {
            timestamp,
            nonce: nonce.to_owned(),
            signature: key.sign_b64(response_message(timestamp, nonce, body).as_bytes()),
            serial: serial.to_owned(),
        }
    }

    /// From the four headers, looked up by `get` (case-insensitive names above).
    pub fn from_headers<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<PlatformSignature, VerifyError> {
        let timestamp = get(HEADER_TIMESTAMP)
            .and_then(|t| t.trim().parse().ok())
            .ok_or(VerifyError::Missing)?;
        let field = |name| get(name).map(str::to_owned).ok_or(VerifyError::Missing);
        Ok(PlatformSignature {
            timestamp,
            nonce: field(HEADER_NONCE)?,
            signature: field(HEADER_SIGNATURE)?,
            serial: field(HEADER_SERIAL)?,
        })
    }

    /// Checks it over `body` with the platform key `key` of serial `serial`, at unix second `now`.
    pub fn verify(
        &self,
        key: &PublicKey,
        serial: &str,
        body: &str,
        now: i64,
        tolerance_s: i64,
    ) -> Result<(), VerifyError> {
        if self.serial != serial {
            return Err(VerifyError::WrongSerial {
                got: self.serial.clone(),
            });
        }
        let age_s = (now - self.timestamp).abs();
        if age_s > tolerance_s {
            return Err(VerifyError::TooOld { age_s });
        }
        let message = response_message(self.timestamp, &self.nonce, body);
        Ok(key.verify_b64(message.as_bytes(), &self.signature)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::test_vectors as tv;
    use super::*;

    fn keys() -> (PrivateKey, PublicKey) {
        (
            PrivateKey::from_pem(tv::PRIVATE_KEY_PEM).unwrap(),
            PublicKey::from_pem(tv::PUBLIC_KEY_PEM).unwrap(),
        )
    }

    #[test]
    fn a_request_signature_is_the_documented_text_signed() {
        let (sk, pk) = keys();
        let body = r#"{"out_order_no":"vl1"}"#;
        assert_eq!(
            request_message(
                "POST",
                "/v3/payscore/serviceorder",
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
                body
            ),
            tv::WECHAT_MESSAGE
        );
        let auth = Authorization::sign(
            &sk,
            "1900009191",
            "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",
            "POST",
            "/v3/payscore/serviceorder",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            body,
        );
        assert_eq!(auth.signature, tv::WECHAT_SIGNATURE);
        let header = auth.header();
        assert!(header.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900009191\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\""));
        let parsed = Authorization::parse(&header).unwrap();
        assert_eq!(parsed, auth);
        assert_eq!(
            parsed.verify(&pk, "POST", "/v3/payscore/serviceorder", body),
            Ok(())
        );
        assert!(parsed
            .verify(&pk, "POST", "/v3/payscore/serviceorder", "{}")
            .is_err());
        assert!(parsed
            .verify(&pk, "GET", "/v3/payscore/serviceorder", body)
            .is_err());
        assert_eq!(Authorization::parse("Bearer x"), None);
    }

    #[test]
    fn answers_verify_only_with_the_right_serial_time_and_body() {
        let (sk, pk) = keys();
        let body = r#"{"state":"DOING"}"#;
        let sig = PlatformSignature::sign(&sk, "PUB_KEY_ID_1", 1_700_000_000, "n1", body);
        assert_eq!(
            sig.verify(&pk, "PUB_KEY_ID_1", body, 1_700_000_100, 300),
            Ok(())
        );
        assert!(matches!(
            sig.verify(&pk, "OTHER", body, 1_700_000_100, 300),
            Err(VerifyError::WrongSerial { .. })
        ));
        assert!(matches!(
            sig.verify(&pk, "PUB_KEY_ID_1", body, 1_700_001_000, 300),
            Err(VerifyError::TooOld { .. })
        ));
        assert!(matches!(
            sig.verify(&pk, "PUB_KEY_ID_1", "{}", 1_700_000_100, 300),
            Err(VerifyError::Signature(_))
        ));
        let headers = [
            (HEADER_TIMESTAMP, "1700000000".to_owned()),
            (HEADER_NONCE, "n1".to_owned()),
            (HEADER_SIGNATURE, sig.signature.clone()),
            (HEADER_SERIAL, "PUB_KEY_ID_1".to_owned()),
        ];
        let got = PlatformSignature::from_headers(|n| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(got, sig);
        assert_eq!(
            PlatformSignature::from_headers(|_| None),
            Err(VerifyError::Missing)
        );
    }
}
