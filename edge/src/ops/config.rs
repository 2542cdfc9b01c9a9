//! The edge's configuration: embedded defaults (a site that runs on one box with nothing
//! else), then a TOML file, then `VOLTLINE_EDGE__SECTION__KEY` variables
//! (`VOLTLINE_EDGE__CLOUD__MQTT=cloud.example.com:1883`). Every key is listed, with its
//! meaning, in `deploy/edge.example.toml`.
//!
//! Secrets (the site's cloud credential, charger passwords) are never printed: `Debug` shows
//! them redacted, and a credential may come from a file (`credential_file`) so it stays out
//! of the unit file and the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use voltline_protocol::domain::{PileCode, SiteId};

use crate::ports::directory::hash_credential as hash_credential_for_config;
use crate::ports::ChargerEntry;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "VOLTLINE_EDGE__";

/// Most chargers listed in the file (the cloud's site config can add more).
pub const MAX_CONFIGURED_CHARGERS: usize = 20_000;

/// A secret string: shown as `"<redacted>"` in `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    pub site: SiteSection,
    pub store: StoreSection,
    pub tcp: TcpSection,
    pub mqtt: MqttSection,
    pub cloud: CloudSection,
    pub ops: OpsSection,
    pub v2g: V2gSection,
    /// Chargers allowed in before (or without) the cloud's site config.
    pub chargers: Vec<ChargerSection>,
}

/// Which site this edge runs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SiteSection {
    /// The site id registered in the cloud (also the MQTT client id and username there).
    pub id: String,
    /// IANA zone of the piles' clocks until the cloud's site config names one.
    pub time_zone: String,
    /// Where the store lives.
    pub data_dir: PathBuf,
}

/// The durable store's bounds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Bound on stored outbox bytes (the disk should have about twice this free).
    pub max_bytes: u64,
    /// Percent of the bound at which meter telemetry is thinned.
    pub thin_at_pct: u8,
    /// Percent of the bound at which new sessions are refused and an alarm raised.
    pub refuse_at_pct: u8,
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
}

/// The TCP charger port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TcpSection {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Most charger connections at once.
    pub max_connections: usize,
}

/// The embedded MQTT broker for chargers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttSection {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Most charger connections at once.
    pub max_connections: usize,
}

/// The link to the cloud.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CloudSection {
    /// False runs the site stand-alone (records stay in the outbox until it is enabled).
    pub enabled: bool,
    /// The cloud's MQTT broker, `host:port`.
    pub mqtt: String,
    /// The cloud's HTTP base URL (backlog replay, site config).
    pub http: String,
    /// The site's edge credential (MQTT password and HTTP bearer token).
    pub credential: Secret,
    /// A file holding the credential instead (first line; takes precedence).
    pub credential_file: Option<PathBuf>,
}

/// The operations endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSection {
    /// Where `/metrics` and `/healthz` are served.
    pub listen: SocketAddr,
    /// How long a shutdown waits for the ports and the uplink to finish.
    pub shutdown_grace_ms: u64,
}

/// V2G grid dispatch (see `site::grid` for which discharges the cloud dead-man stops).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct V2gSection {
    /// Validity of a setpoint on the pile (its dead-man), seconds.
    pub setpoint_valid_for_s: u16,
    /// How often standing setpoints are re-sent, seconds.
    pub refresh_s: u64,
    /// The horizon over which floors are protected, seconds.
    pub replan_horizon_s: u64,
    /// How long without the cloud before free-running discharge stops, seconds.
    pub cloud_dead_man_s: u64,
    /// How long before an unanswered discharge stop is resent, seconds.
    pub stop_retry_s: u64,
    /// The longest grid event accepted, hours.
    pub max_event_h: u64,
    /// The edge's own export cap, kW (0: none beyond the site config's).
    pub export_limit_kw: u64,
    /// Battery capacity assumed until a session's own is learned, kWh.
    pub assumed_battery_kwh: u64,
}

impl Default for V2gSection {
    fn default() -> Self {
        V2gSection {
            setpoint_valid_for_s: 60,
            refresh_s: 20,
            replan_horizon_s: 30,
            cloud_dead_man_s: 900,
            stop_retry_s: 30,
            max_event_h: 24,
            export_limit_kw: 0,
            assumed_battery_kwh: 20,
        }
    }
}

/// One charger configured locally.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChargerSection {
    /// The 14-digit pile code.
    pub pile: String,
    /// The charger's MQTT password (for small sites; prefer `password_sha256`).
    #[serde(default)]
    pub password: Secret,
    /// Lower-case hex SHA-256 of the MQTT password.
    #[serde(default)]
    pub password_sha256: Option<String>,
}

impl Default for SiteSection {
    fn default() -> Self {
        SiteSection {
            id: "site-1".into(),
            time_zone: "Asia/Shanghai".into(),
            data_dir: PathBuf::from("./voltline-data/edge"),
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        let d = crate::store::StoreConfig::default();
        StoreSection {
            max_bytes: d.max_bytes,
            thin_at_pct: d.thin_at_pct,
            refuse_at_pct: d.refuse_at_pct,
            cache_bytes: 64 << 20,
        }
    }
}

impl Default for TcpSection {
    fn default() -> Self {
        TcpSection {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8768)),
            max_connections: 10_000,
        }
    }
}

impl Default for MqttSection {
    fn default() -> Self {
        MqttSection {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 1885)),
            max_connections: 10_000,
        }
    }
}

impl Default for CloudSection {
    fn default() -> Self {
        CloudSection {
            enabled: true,
            mqtt: "127.0.0.1:1884".into(),
            http: "http://127.0.0.1:8080".into(),
            credential: Secret::default(),
            credential_file: None,
        }
    }
}

impl Default for OpsSection {
    fn default() -> Self {
        OpsSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 9468)),
            shutdown_grace_ms: 10_000,
        }
    }
}

/// A configuration that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error(transparent)]
    Layers(#[from] voltline_config::ConfigError),
    #[error("{key}: {message}")]
    Bad { key: &'static str, message: String },
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem::Bad {
        key,
        message: message.into(),
    }
}

impl EdgeConfig {
    /// Defaults, then `file`, then the environment; checked.
    pub fn load(file: Option<&Path>) -> Result<EdgeConfig, ConfigProblem> {
        let c: EdgeConfig = voltline_config::load(file, ENV_PREFIX)?;
        c.check()?;
        Ok(c)
    }

    /// Defaults, then `text`, then `env`; checked (for tests).
    pub fn from_parts(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<EdgeConfig, ConfigProblem> {
        let c: EdgeConfig = voltline_config::from_parts(text, "test", ENV_PREFIX, env)?;
        c.check()?;
        Ok(c)
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        self.site_id()?;
        self.time_zone()?;
        let s = &self.store;
        if s.max_bytes < (1 << 20) {
            return Err(bad("store.max_bytes", "must be at least 1 MiB (1048576)"));
        }
        if !(s.thin_at_pct <= s.refuse_at_pct && s.refuse_at_pct <= 100 && s.thin_at_pct > 0) {
            return Err(bad(
                "store.thin_at_pct",
                "must be above 0 and at most store.refuse_at_pct, which must be at most 100",
            ));
        }
        if self.tcp.max_connections == 0 || self.mqtt.max_connections == 0 {
            return Err(bad(
                "tcp.max_connections",
                "connection limits must be above 0",
            ));
        }
        if self.cloud.enabled {
            self.cloud_mqtt()?;
            if !(self.cloud.http.starts_with("http://") || self.cloud.http.starts_with("https://"))
            {
                return Err(bad(
                    "cloud.http",
                    "must be an http:// or https:// URL such as http://127.0.0.1:8080",
                ));
            }
        }
        if self.chargers.len() > MAX_CONFIGURED_CHARGERS {
            return Err(bad(
                "chargers",
                format!(
                    "at most {MAX_CONFIGURED_CHARGERS}; let the cloud's site config list the rest"
                ),
            ));
        }
        self.charger_entries()?;
        self.check_v2g()?;
        Ok(())
    }

    fn check_v2g(&self) -> Result<(), ConfigProblem> {
        let v = &self.v2g;
        if v.setpoint_valid_for_s < 10 {
            return Err(bad("v2g.setpoint_valid_for_s", "must be at least 10"));
        }
        if v.refresh_s == 0 || v.refresh_s * 2 > u64::from(v.setpoint_valid_for_s) {
            return Err(bad(
                "v2g.refresh_s",
                "must be above 0 and at most half of v2g.setpoint_valid_for_s",
            ));
        }
        if v.replan_horizon_s == 0 || v.stop_retry_s == 0 {
            return Err(bad(
                "v2g.replan_horizon_s",
                "v2g.replan_horizon_s and v2g.stop_retry_s must be above 0",
            ));
        }
        if v.cloud_dead_man_s < 60 {
            return Err(bad(
                "v2g.cloud_dead_man_s",
                "must be at least 60 (a shorter link blip must not stop discharge)",
            ));
        }
        if !(1..=168).contains(&v.max_event_h) {
            return Err(bad("v2g.max_event_h", "must be 1 to 168 hours"));
        }
        if !(5..=250).contains(&v.assumed_battery_kwh) {
            return Err(bad("v2g.assumed_battery_kwh", "must be 5 to 250 kWh"));
        }
        if v.export_limit_kw > 1_000_000 {
            return Err(bad("v2g.export_limit_kw", "must be at most 1000000 kW"));
        }
        Ok(())
    }

    /// The site's grid dispatch settings.
    pub fn grid_options(&self) -> crate::site::GridOptions {
        let v = &self.v2g;
        crate::site::GridOptions {
            setpoint_valid_for_s: v.setpoint_valid_for_s,
            refresh_ms: v.refresh_s * 1_000,
            replan_horizon_ms: v.replan_horizon_s * 1_000,
            cloud_dead_man_ms: v.cloud_dead_man_s * 1_000,
            stop_retry_ms: v.stop_retry_s * 1_000,
            max_event_ms: v.max_event_h * 3_600_000,
            export_limit: (v.export_limit_kw > 0)
                .then(|| voltline_protocol::domain::Power::from_kw(v.export_limit_kw as i64)),
            assumed_capacity: voltline_protocol::domain::Energy::from_wh(
                v.assumed_battery_kwh as i64 * 1_000,
            ),
        }
    }

    /// The site id.
    pub fn site_id(&self) -> Result<SiteId, ConfigProblem> {
        SiteId::new(&self.site.id).map_err(|e| bad("site.id", e.to_string()))
    }

    /// The site's fallback time zone.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, ConfigProblem> {
        jiff::tz::TimeZone::get(&self.site.time_zone).map_err(|e| {
            bad(
                "site.time_zone",
                format!(
                    "'{}' is not an IANA time zone ({e}); write one such as Asia/Shanghai",
                    self.site.time_zone
                ),
            )
        })
    }

    /// The cloud broker's host and port.
    pub fn cloud_mqtt(&self) -> Result<(String, u16), ConfigProblem> {
        let (host, port) = self.cloud.mqtt.rsplit_once(':').ok_or_else(|| {
            bad(
                "cloud.mqtt",
                "must be host:port, such as cloud.example.com:1883",
            )
        })?;
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("cloud.mqtt", format!("'{port}' is not a port number")))?;
        if host.is_empty() {
            return Err(bad("cloud.mqtt", "the host is empty"));
        }
        Ok((host.to_owned(), port))
    }

    /// The credential: from `credential_file` if set, else `credential`.
    pub fn credential(&self) -> Result<Secret, ConfigProblem> {
        match &self.cloud.credential_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    bad(
                        "cloud.credential_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Ok(Secret::new(text.lines().next().unwrap_or("").trim()))
            }
            None => Ok(self.cloud.credential.clone()),
        }
    }

    /// The locally configured chargers as directory entries.
    pub fn charger_entries(&self) -> Result<Vec<ChargerEntry>, ConfigProblem> {
        self.chargers
            .iter()
            .map(|c| {
                let pile = c
                    .pile
                    .parse::<PileCode>()
                    .ok()
                    .filter(|_| c.pile.len() == 14)
                    .ok_or_else(|| {
                        bad(
                            "chargers.pile",
                            format!("'{}' is not a 14-digit pile code", c.pile),
                        )
                    })?;
                let credential_sha256 = match (&c.password_sha256, c.password.is_empty()) {
                    (Some(h), _) => {
                        let h = h.to_ascii_lowercase();
                        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(bad(
                                "chargers.password_sha256",
                                format!("pile {pile}: must be 64 hex digits"),
                            ));
                        }
                        Some(h)
                    }
                    (None, false) => Some(hash_credential_for_config(c.password.expose())),
                    (None, true) => None,
                };
                Ok(ChargerEntry {
                    pile,
                    credential_sha256,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_run_one_box() {
        let c = EdgeConfig::from_parts("", env(&[])).unwrap();
        assert_eq!(c.store.max_bytes, 1 << 30);
        assert!(c.tcp.listen.ip().is_loopback() && c.ops.listen.ip().is_loopback());
        assert_eq!(c.cloud_mqtt().unwrap(), ("127.0.0.1".into(), 1884));
    }

    #[test]
    fn file_and_environment_layer_and_chargers_are_read() {
        let text = r#"
            [site]
            id = "berlin-3"
            time_zone = "Europe/Berlin"
            [[chargers]]
            pile = "32010600019236"
            password = "s3cret"
            [[chargers]]
            pile = "32010600019237"
        "#;
        let c = EdgeConfig::from_parts(
            text,
            env(&[
                ("VOLTLINE_EDGE__CLOUD__MQTT", "cloud.example.com:8883"),
                ("VOLTLINE_EDGE__STORE__MAX_BYTES", "2097152"),
            ]),
        )
        .unwrap();
        assert_eq!(c.site_id().unwrap().as_str(), "berlin-3");
        assert_eq!(c.store.max_bytes, 2 << 20);
        assert_eq!(c.cloud_mqtt().unwrap().1, 8883);
        let entries = c.charger_entries().unwrap();
        assert_eq!(
            entries[0].credential_sha256.as_deref(),
            Some(hash_credential_for_config("s3cret").as_str())
        );
        assert_eq!(entries[1].credential_sha256, None);
    }

    #[test]
    fn bad_values_are_refused_by_name_with_what_to_write() {
        for (text, key) in [
            ("[site]\ntime_zone = \"Mars/Olympus\"", "site.time_zone"),
            ("[store]\nmax_bytes = 10", "store.max_bytes"),
            (
                "[store]\nthin_at_pct = 95\nrefuse_at_pct = 90",
                "store.thin_at_pct",
            ),
            ("[cloud]\nmqtt = \"nohost\"", "cloud.mqtt"),
            ("[cloud]\nhttp = \"ftp://x\"", "cloud.http"),
            ("[v2g]\nrefresh_s = 45", "v2g.refresh_s"),
            ("[v2g]\ncloud_dead_man_s = 5", "v2g.cloud_dead_man_s"),
            ("[v2g]\nmax_event_h = 0", "v2g.max_event_h"),
            ("[[chargers]]\npile = \"123\"", "chargers.pile"),
            (
                "[[chargers]]\npile = \"32010600019236\"\npassword_sha256 = \"xyz\"",
                "chargers.password_sha256",
            ),
        ] {
            let e = EdgeConfig::from_parts(text, env(&[]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = EdgeConfig::from_parts("surprise = 1", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("surprise"), "{e}");
    }

    #[test]
    fn the_example_config_lists_exactly_the_defaults() {
        let text = include_str!("../../../deploy/edge.example.toml");
        let c = EdgeConfig::from_parts(text, env(&[])).unwrap();
        assert_eq!(
            c,
            EdgeConfig::default(),
            "deploy/edge.example.toml drifted from the defaults"
        );
        for key in [
            "[site]",
            "[store]",
            "[tcp]",
            "[mqtt]",
            "[cloud]",
            "[ops]",
            "[v2g]",
            "cloud_dead_man_s",
            "setpoint_valid_for_s",
            "max_event_h",
            "max_bytes",
            "thin_at_pct",
            "refuse_at_pct",
            "cache_bytes",
            "max_connections",
            "credential",
            "credential_file",
            "shutdown_grace_ms",
            "[[chargers]]",
            "password_sha256",
        ] {
            assert!(text.contains(key), "the example does not mention {key}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = EdgeConfig::from_parts(
            "[cloud]\ncredential = \"edge-token-123\"\n[[chargers]]\npile = \"32010600019236\"\npassword = \"pw-456\"",
            env(&[]),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("edge-token-123") && !shown.contains("pw-456"),
            "{shown}"
        );
        assert_eq!(c.credential().unwrap().expose(), "edge-token-123");
    }
}
