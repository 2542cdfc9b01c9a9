//! [`Secret`]: a credential or key read from the configuration. Its `Debug`, `Display` and
//! `Serialize` print `<redacted>`, so a secret cannot reach a log line, an error message or a
//! dumped configuration by accident; only [`Secret::expose`] gives the text, at the one place
//! that signs or decrypts with it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string (an API v3 key, a private key in PEM).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

const REDACTED: &str = "<redacted>";

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            REDACTED
        })
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { REDACTED })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("-----BEGIN PRIVATE KEY-----abc");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "-----BEGIN PRIVATE KEY-----abc");
        let back: Secret = serde_json::from_str("\"k\"").unwrap();
        assert_eq!(back.expose(), "k");
    }
}
