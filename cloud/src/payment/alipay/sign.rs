//! Alipay's RSA2 signatures, pure.
//!
//! - **Requests**: every parameter except `sign` and empty values, sorted by name (byte
//!   order), joined as `k=v&k=v` with raw (not URL-encoded) values, signed SHA256withRSA with
//!   the application private key; the base64 signature goes in `sign`, `sign_type=RSA2`.
//! - **Answers**: `{"<method with _ for .>_response": {...}, "sign": "..."}`; the signature
//!   covers the exact text of the `_response` value, verified with Alipay's public key.
//! - **Asynchronous notifications**: form parameters; the signature covers every parameter
//!   except `sign` and `sign_type`, sorted and joined as for requests.

use std::collections::BTreeMap;

use super::super::keys::{KeyError, PrivateKey, PublicKey};

/// The text a signature covers: `params` less `exclude` and empty values, sorted, `k=v&...`.
pub fn sign_content(params: &BTreeMap<String, String>, exclude: &[&str]) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !exclude.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs request parameters (everything but `sign`).
pub fn sign_request(key: &PrivateKey, params: &BTreeMap<String, String>) -> String {
    key.sign_b64(sign_content(params, &["sign"]).as_bytes())
}

/// Verifies request parameters (the provider's side; simulators).
pub fn verify_request(key: &PublicKey, params: &BTreeMap<String, String>) -> Result<(), KeyError> {
    let sign = params.get("sign").ok_or(KeyError::BadEncoding)?;
    key.verify_b64(sign_content(params, &["sign"]).as_bytes(), sign)
}

/// Verifies an asynchronous notification's parameters (everything but `sign`, `sign_type`).
pub fn verify_notification(
    key: &PublicKey,
    params: &BTreeMap<String, String>,
) -> Result<(), KeyError> {
    let sign = params.get("sign").ok_or(KeyError::BadEncoding)?;
    key.verify_b64(
        sign_content(params, &["sign", "sign_type"]).as_bytes(),
        sign,
    )
}

/// Signs notification parameters (the provider's side; simulators).
pub fn sign_notification(key: &PrivateKey, params: &BTreeMap<String, String>) -> String {
    key.sign_b64(sign_content(params, &["sign", "sign_type"]).as_bytes())
}

/// The answer's member name for `method`: `alipay.trade.pay` → `alipay_trade_pay_response`.
pub fn response_member(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// The exact text of the JSON value of `member` in `body` (an object), or `None`.
pub fn raw_member<'a>(body: &'a str, member: &str) -> Option<&'a str> {
    let needle = format!("\"{member}\"");
    let at = body.find(&needle)? + needle.len();
    let rest = &body[at..];
    let colon = rest.find(':')?;
    if !rest[..colon].trim().is_empty() {
        return None;
    }
    let value = rest[colon + 1..].trim_start();
    let start = body.len() - value.len();
    let bytes = value.as_bytes();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&body[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer has no {0} object")]
    Shape(String),
    #[error("the answer is not signed")]
    Unsigned,
    #[error(transparent)]
    Signature(#[from] KeyError),
}

/// Verifies an answer to `method` and returns the text of its `_response` value. An answer
/// without a signature is refused unless it is a gateway error (code 20000 and up carry none
/// in some cases; those are returned unverified and may only ever be treated as "unknown").
pub fn verify_answer<'a>(
    key: &PublicKey,
    body: &'a str,
    method: &str,
) -> Result<(&'a str, bool), AnswerError> {
    let member = response_member(method);
    let raw = raw_member(body, &member).ok_or_else(|| AnswerError::Shape(member.clone()))?;
    let sign = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("sign").and_then(|s| s.as_str()).map(str::to_owned));
    match sign {
        Some(sign) => {
            key.verify_b64(raw.as_bytes(), &sign)?;
            Ok((raw, true))
        }
        None => Ok((raw, false)),
    }
}

/// Builds a signed answer (the provider's side; simulators).
pub fn signed_answer(key: &PrivateKey, method: &str, raw: &str) -> String {
    let sign = key.sign_b64(raw.as_bytes());
    format!(
        "{{\"{}\":{raw},\"sign\":\"{sign}\"}}",
        response_member(method)
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::test_vectors as tv;
    use super::*;

    fn params() -> BTreeMap<String, String> {
        [
            ("method", "alipay.trade.query"),
            ("app_id", "2014072300007148"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("timestamp", "2014-07-24 03:07:50"),
            ("version", "1.0"),
            ("notify_url", ""),
            ("biz_content", r#"{"out_trade_no":"vl1"}"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn request_signing_matches_openssl_over_the_sorted_text() {
        let sk = PrivateKey::from_pem(tv::PRIVATE_KEY_PEM).unwrap();
        let pk = PublicKey::from_pem(tv::PUBLIC_KEY_PEM).unwrap();
        let mut p = params();
        assert_eq!(sign_content(&p, &["sign"]), tv::ALIPAY_MESSAGE);
        let sign = sign_request(&sk, &p);
        assert_eq!(sign, tv::ALIPAY_SIGNATURE);
        p.insert("sign".into(), sign);
        assert_eq!(verify_request(&pk, &p), Ok(()));
        p.insert("biz_content".into(), r#"{"out_trade_no":"vl2"}"#.into());
        assert_eq!(verify_request(&pk, &p), Err(KeyError::Mismatch));
    }

    #[test]
    fn notifications_leave_sign_type_out() {
        let sk = PrivateKey::from_pem(tv::PRIVATE_KEY_PEM).unwrap();
        let pk = PublicKey::from_pem(tv::PUBLIC_KEY_PEM).unwrap();
        let mut p = params();
        let sign = sign_notification(&sk, &p);
        p.insert("sign".into(), sign);
        assert_eq!(verify_notification(&pk, &p), Ok(()));
        p.insert("sign_type".into(), "RSA".into());
        assert_eq!(
            verify_notification(&pk, &p),
            Ok(()),
            "sign_type is not signed"
        );
        p.insert("trade_status".into(), "TRADE_SUCCESS".into());
        assert_eq!(verify_notification(&pk, &p), Err(KeyError::Mismatch));
    }

    #[test]
    fn answers_are_verified_over_the_raw_member_text() {
        let sk = PrivateKey::from_pem(tv::PRIVATE_KEY_PEM).unwrap();
        let pk = PublicKey::from_pem(tv::PUBLIC_KEY_PEM).unwrap();
        let raw = r#"{"code":"10000","msg":"Success","out_trade_no":"vl1","memo":"a \"}\" b"}"#;
        let body = signed_answer(&sk, "alipay.trade.pay", raw);
        assert_eq!(
            verify_answer(&pk, &body, "alipay.trade.pay"),
            Ok((raw, true))
        );
        let forged = body.replace("10000", "10001");
        assert!(matches!(
            verify_answer(&pk, &forged, "alipay.trade.pay"),
            Err(AnswerError::Signature(_))
        ));
        assert!(matches!(
            verify_answer(&pk, &body, "alipay.trade.query"),
            Err(AnswerError::Shape(_))
        ));
        assert_eq!(
            raw_member(r#"{"a_response" : {"x":{"y":1}} }"#, "a_response"),
            Some(r#"{"x":{"y":1}}"#)
        );
    }
}
