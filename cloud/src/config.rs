//! The cloud's configuration: embedded defaults, then a TOML file, then environment overrides.
//!
//! Precedence, lowest first: [`CloudConfig::default`] (what `voltline-cloud serve` runs with and
//! nothing else given), the TOML file (`--config PATH`), then variables named
//! `VOLTLINE_CLOUD__SECTION__KEY` (double underscores separate levels, e.g.
//! `VOLTLINE_CLOUD__HTTP__LISTEN=0.0.0.0:8080`, `VOLTLINE_CLOUD__MQTT__MODE=external`). An override
//! is parsed as a TOML value when it parses (numbers, booleans) and as a string otherwise, and
//! goes through the same typed deserialisation as the file, so a bad value is refused with the
//! key named. Unknown keys are refused too: a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "VOLTLINE_CLOUD__";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; check the path passed to --config")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin} is invalid: {message}; see deploy/cloud.example.toml for every key")]
    Invalid { origin: String, message: String },
}

/// Everything the cloud process reads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// Where the embedded SQLite database lives.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means SQLite in `data_dir`.
    pub database_url: String,
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub sessions: SessionConfig,
    pub settlement: SettlementConfig,
    /// The daily bill job ([`crate::bills::BillJob`]).
    pub bills: crate::bills::BillJobConfig,
    /// Webhook delivery ([`crate::webhooks::WebhookDispatcher`]).
    pub webhooks: crate::webhooks::WebhookConfig,
    /// Credit payment providers ([`crate::payment`]); secrets inside are never printed.
    pub payments: crate::payment::PaymentsConfig,
}

/// The settlement loop ([`crate::money::Settler`] over the SQL ledger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementConfig {
    /// Settle stored transaction records in the background (`false`: something else calls
    /// `Settler::settle_pending`).
    pub enabled: bool,
    /// How often unsettled records are looked for.
    pub interval_ms: u64,
    /// Most records settled per pass.
    pub batch: usize,
    /// The platform's share of the service fee, in percent (0..=100).
    pub platform_fee_percent: Decimal,
}

/// The HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest request body (after decompression for edge batches), bytes.
    pub max_body_bytes: usize,
    /// A request that takes longer is answered 503.
    pub request_timeout_ms: u64,
    /// Sustained requests per second per bearer token (or per address without one).
    pub rate_limit_per_s: u32,
    /// Requests a token may send in a burst above the sustained rate.
    pub rate_limit_burst: u32,
}

/// Which broker the edges talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MqttMode {
    /// `rumqttd` inside this process, one credential per site.
    Embedded,
    /// Any MQTT broker; the cloud joins it as a client with shared subscriptions.
    External,
    /// No MQTT at all (HTTP sync only).
    Disabled,
}

/// The MQTT side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub mode: MqttMode,
    /// Embedded mode: where the broker listens for edges.
    pub listen: SocketAddr,
    /// External mode: the broker's host and port.
    pub broker_host: String,
    pub broker_port: u16,
    /// External mode: the cloud's own credentials at the broker (empty = none).
    pub username: String,
    pub password: String,
    /// The cloud's client id (each instance needs its own on an external broker).
    pub client_id: String,
    /// Largest MQTT payload, bytes.
    pub max_payload_bytes: usize,
}

/// Sessions and commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Yuan held when a driver asks for no amount.
    pub default_hold_yuan: Decimal,
    /// Yuan below which a session is refused (402).
    pub minimum_hold_yuan: Decimal,
    /// How long a command may wait for its edge before it expires.
    pub command_expiry_s: u64,
    /// How often queued commands are (re)published and overdue ones expired.
    pub dispatch_interval_ms: u64,
    /// Wait before publishing a still-queued command again.
    pub redeliver_after_ms: u64,
    /// Yuan any session an edge starts on its own (a card at the pile, cloud unreachable)
    /// may cost, whatever the card's own limit: sent to edges in the site configuration.
    pub offline_session_limit_yuan: Decimal,
    /// Yuan a newly registered card may spend per offline session when the registration
    /// names no limit.
    pub card_offline_limit_yuan: Decimal,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            data_dir: PathBuf::from("./voltline-data/cloud"),
            database_url: String::new(),
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            sessions: SessionConfig::default(),
            settlement: SettlementConfig::default(),
            bills: crate::bills::BillJobConfig::default(),
            webhooks: crate::webhooks::WebhookConfig::default(),
            payments: crate::payment::PaymentsConfig::default(),
        }
    }
}

impl Default for SettlementConfig {
    fn default() -> Self {
        SettlementConfig {
            enabled: true,
            interval_ms: 1_000,
            batch: 1_000,
            platform_fee_percent: Decimal::new(10, 0),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 10_000,
            rate_limit_per_s: 2_000,
            rate_limit_burst: 4_000,
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            mode: MqttMode::Embedded,
            listen: SocketAddr::from(([127, 0, 0, 1], 1884)),
            broker_host: "127.0.0.1".into(),
            broker_port: 1883,
            username: String::new(),
            password: String::new(),
            client_id: "voltline-cloud".into(),
            max_payload_bytes: 1024 * 1024,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            default_hold_yuan: Decimal::new(50, 0),
            minimum_hold_yuan: Decimal::new(1, 0),
            command_expiry_s: 60,
            dispatch_interval_ms: 200,
            redeliver_after_ms: 5_000,
            offline_session_limit_yuan: Decimal::new(100, 0),
            card_offline_limit_yuan: Decimal::new(50, 0),
        }
    }
}

impl CloudConfig {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<CloudConfig, ConfigError> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let origin = file.map_or_else(|| "defaults".to_owned(), |p| p.display().to_string());
        CloudConfig::from_parts(&text, &origin, std::env::vars())
    }

    /// Defaults, then the TOML `text`, then the `VOLTLINE_CLOUD__` variables among `env`
    /// (the layering of [`voltline_config`], shared with the edge).
    pub fn from_parts(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<CloudConfig, ConfigError> {
        let config: CloudConfig = voltline_config::from_parts(text, origin, ENV_PREFIX, env)
            .map_err(|e| match e {
                voltline_config::ConfigError::Read { path, source } => {
                    ConfigError::Read { path, source }
                }
                voltline_config::ConfigError::Invalid { origin, message } => {
                    ConfigError::Invalid { origin, message }
                }
            })?;
        config.check().map_err(|message| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// The database URL in use: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> Option<&str> {
        (!self.database_url.is_empty()).then_some(self.database_url.as_str())
    }

    fn check(&self) -> Result<(), String> {
        let s = &self.sessions;
        if s.command_expiry_s == 0 || s.command_expiry_s > 86_400 {
            return Err("sessions.command_expiry_s must be 1..=86400".into());
        }
        if s.dispatch_interval_ms < 10 || s.dispatch_interval_ms > 60_000 {
            return Err("sessions.dispatch_interval_ms must be 10..=60000".into());
        }
        if s.default_hold_yuan <= Decimal::ZERO || s.minimum_hold_yuan < Decimal::ZERO {
            return Err(
                "sessions.default_hold_yuan must be above 0 and minimum_hold_yuan at least 0"
                    .into(),
            );
        }
        if s.offline_session_limit_yuan < Decimal::ZERO || s.card_offline_limit_yuan < Decimal::ZERO
        {
            return Err(
                "sessions.offline_session_limit_yuan and card_offline_limit_yuan must be at least 0"
                    .into(),
            );
        }
        let st = &self.settlement;
        if st.interval_ms < 10 || st.interval_ms > 3_600_000 || st.batch == 0 {
            return Err(
                "settlement.interval_ms must be 10..=3600000 and settlement.batch above 0".into(),
            );
        }
        if st.platform_fee_percent < Decimal::ZERO || st.platform_fee_percent > Decimal::ONE_HUNDRED
        {
            return Err("settlement.platform_fee_percent must be 0..=100".into());
        }
        if self.http.rate_limit_per_s == 0 || self.http.max_body_bytes < 1024 {
            return Err(
                "http.rate_limit_per_s must be above 0 and http.max_body_bytes at least 1024"
                    .into(),
            );
        }
        self.payments.check()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn defaults_are_embedded_and_local() {
        let c = CloudConfig::from_parts("", "test", env(&[])).unwrap();
        assert_eq!(c, CloudConfig::default());
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.mqtt.listen.to_string(), "127.0.0.1:1884");
        assert_eq!(c.mqtt.mode, MqttMode::Embedded);
        assert_eq!(c.database_url(), None);
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "[http]\nlisten = \"0.0.0.0:9000\"\n[sessions]\ncommand_expiry_s = 30\n";
        let c = CloudConfig::from_parts(
            text,
            "test",
            env(&[
                ("VOLTLINE_CLOUD__SESSIONS__COMMAND_EXPIRY_S", "5"),
                ("VOLTLINE_CLOUD__MQTT__MODE", "external"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.sessions.command_expiry_s, 5);
        assert_eq!(c.mqtt.mode, MqttMode::External);
    }

    #[test]
    fn the_example_file_lists_valid_keys_with_the_default_values() {
        let text = include_str!("../../deploy/cloud.example.toml");
        let c = CloudConfig::from_parts(text, "cloud.example.toml", env(&[])).unwrap();
        assert_eq!(c.sessions, SessionConfig::default());
        assert_eq!(c.settlement, SettlementConfig::default());
        assert_eq!(c.bills, crate::bills::BillJobConfig::default());
        assert_eq!(c.webhooks, crate::webhooks::WebhookConfig::default());
        assert_eq!(c.payments, crate::payment::PaymentsConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        let e = CloudConfig::from_parts("[http]\nlisen = 1\n", "f.toml", env(&[])).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let e = CloudConfig::from_parts(
            "",
            "t",
            env(&[("VOLTLINE_CLOUD__SESSIONS__COMMAND_EXPIRY_S", "0")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("command_expiry_s"), "{e}");
    }
}
