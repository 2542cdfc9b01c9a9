//! The edge's Prometheus metrics, in one registry per edge (no global state, so several edges
//! in one process — the demo, the tests — keep their own figures).
//!
//! Every counter a test or an operator reads lives here; the adapters only increment them.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Which charger port a figure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Port {
    Tcp,
    Mqtt,
}

impl Port {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Port::Tcp => "tcp",
            Port::Mqtt => "mqtt",
        }
    }
}

/// Label set `{port}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PortLabels {
    pub port: Port,
}

/// Label set `{port, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub port: Port,
    pub reason: &'static str,
}

/// Label set `{port, type}` (frame type as `0x13`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FrameLabels {
    pub port: Port,
    pub r#type: &'static str,
}

/// The uplink's state, as the `edge_uplink_state` gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkState {
    /// No connection to the cloud.
    Down = 0,
    /// Connected; the backlog is going up over HTTP.
    Replaying = 1,
    /// Live on MQTT.
    Live = 2,
}

/// All of the edge's metrics.
#[derive(Debug, Default)]
pub struct EdgeMetrics {
    /// Chargers logged in, by port.
    pub chargers_connected: Family<PortLabels, Gauge>,
    /// Connections refused at authentication, by port and reason.
    pub auth_refused: Family<ReasonLabels, Counter>,
    /// MQTT publishes or subscriptions outside a charger's own topics.
    pub acl_denied: Family<ReasonLabels, Counter>,
    /// Frames received from chargers, by port and type.
    pub frames_in: Family<FrameLabels, Counter>,
    /// Frames sent to chargers, by port.
    pub frames_out: Family<PortLabels, Counter>,
    /// Frames to a charger dropped because its connection's queue was full or closed.
    pub frames_out_dropped: Family<PortLabels, Counter>,
    /// Bytes or frames that failed to decode, by port and error kind.
    pub decode_errors: Family<ReasonLabels, Counter>,
    /// Frames that named another pile than the connection's.
    pub foreign_frames: Family<PortLabels, Counter>,
    /// Unacknowledged records in the outbox.
    pub outbox_depth: Gauge,
    /// Counted bytes in the outbox.
    pub outbox_bytes: Gauge,
    /// sled's own size on disk.
    pub store_disk_bytes: Gauge,
    /// 1 while the store refuses new sessions.
    pub store_refusing: Gauge,
    /// [`UplinkState`] as a number.
    pub uplink_state: Gauge,
    /// Records sent to the cloud over MQTT.
    pub records_sent_mqtt: Counter,
    /// Records sent to the cloud over HTTP (backlog replay).
    pub records_replayed_http: Counter,
    /// Acknowledgements received from the cloud.
    pub acks_received: Counter,
    /// Commands received from the cloud (first deliveries).
    pub commands_received: Counter,
    /// Command deliveries the inbox already held.
    pub commands_duplicate: Counter,
    /// Uplink connection attempts that failed.
    pub uplink_failures: Counter,
    /// Site configurations taken from the cloud.
    pub configs_applied: Counter,
    /// Transaction records stored and acknowledged to chargers.
    pub records_acknowledged: Counter,
    /// Records appended to the outbox.
    pub records_appended: Counter,
    /// Session starts refused locally (store near its bound, card unknown, ...).
    pub starts_refused: Family<ReasonLabels, Counter>,
    /// Store or internal errors an operator should look at.
    pub internal_errors: Counter<u64, AtomicU64>,
    /// Frames from chargers dropped by a port before the site saw them (no live connection
    /// for the pile, the site's channel closed), by port and reason.
    pub frames_in_dropped: Family<ReasonLabels, Counter>,
    /// Connections a charger port accepted at the socket level (before authentication).
    pub port_connections: Family<PortLabels, Counter>,
    /// Command deliveries that failed to parse or named another site (acknowledged, dropped).
    pub commands_malformed: Counter,
    /// Commands that had expired when they reached the edge (reported `expired`).
    pub commands_expired: Counter,
    /// Messages from the cloud (acks, config notices) refused as malformed or foreign.
    pub uplink_rejected: Counter,
    /// Site configuration fetches that failed or were refused (cloud unreachable, malformed,
    /// wrong site, over the bounds).
    pub configs_rejected: Counter,
    /// Backlog replay requests over HTTP that failed.
    pub replay_failures: Counter,
    /// Compressed bytes sent in backlog replay over HTTP.
    pub replay_bytes_http: Counter,
    /// Times the uplink re-sent from the acknowledged mark (ack timeout).
    pub uplink_resends: Counter,
    /// V2G: 1 while a grid event runs at the site.
    pub grid_event_active: Gauge,
    /// V2G: vehicles sharing the running event.
    pub grid_participants: Gauge,
    /// V2G: the running event's export target after the site limit, watts.
    pub grid_target_watts: Gauge,
    /// V2G: the sum of the planned setpoints, watts.
    pub grid_planned_watts: Gauge,
    /// V2G: what the vehicles cannot provide of the target, watts.
    pub grid_shortfall_watts: Gauge,
    /// V2G: discharge setpoints (0xC4) the dispatcher sent.
    pub grid_setpoints: Counter,
    /// V2G: discharge stops (0xC6) the dispatcher sent, by cause.
    pub grid_stops: Family<CauseLabels, Counter>,
    /// V2G: grid event commands accepted / refused.
    pub grid_events_accepted: Counter,
    pub grid_events_refused: Counter,
    /// V2G: re-plans that failed (too many participants).
    pub grid_replan_errors: Counter,
}

/// Label set `{cause}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: &'static str,
}

impl EdgeMetrics {
    /// Registers every metric in a fresh registry, prefixed `voltline_edge_`.
    pub fn registry(self: &std::sync::Arc<Self>) -> Registry {
        let mut r = Registry::with_prefix("voltline_edge");
        let m = self;
        r.register(
            "chargers_connected",
            "Chargers logged in",
            m.chargers_connected.clone(),
        );
        r.register(
            "auth_refused",
            "Charger connections refused at authentication",
            m.auth_refused.clone(),
        );
        r.register(
            "acl_denied",
            "MQTT operations outside a charger's own topics",
            m.acl_denied.clone(),
        );
        r.register("frames_in", "Frames from chargers", m.frames_in.clone());
        r.register("frames_out", "Frames to chargers", m.frames_out.clone());
        r.register(
            "frames_out_dropped",
            "Frames to chargers dropped (queue full or closed)",
            m.frames_out_dropped.clone(),
        );
        r.register(
            "decode_errors",
            "Undecodable bytes or frames from chargers",
            m.decode_errors.clone(),
        );
        r.register(
            "foreign_frames",
            "Frames naming another pile than the connection's",
            m.foreign_frames.clone(),
        );
        r.register(
            "outbox_depth",
            "Unacknowledged records in the outbox",
            m.outbox_depth.clone(),
        );
        r.register(
            "outbox_bytes",
            "Counted bytes in the outbox",
            m.outbox_bytes.clone(),
        );
        r.register(
            "store_disk_bytes",
            "sled's size on disk",
            m.store_disk_bytes.clone(),
        );
        r.register(
            "store_refusing",
            "1 while new sessions are refused because the store is near its bound",
            m.store_refusing.clone(),
        );
        r.register(
            "uplink_state",
            "0 down, 1 replaying the backlog over HTTP, 2 live on MQTT",
            m.uplink_state.clone(),
        );
        r.register(
            "records_sent_mqtt",
            "Records sent to the cloud over MQTT",
            m.records_sent_mqtt.clone(),
        );
        r.register(
            "records_replayed_http",
            "Records replayed to the cloud over HTTP",
            m.records_replayed_http.clone(),
        );
        r.register(
            "acks_received",
            "Acknowledgements from the cloud",
            m.acks_received.clone(),
        );
        r.register(
            "commands_received",
            "Commands received from the cloud",
            m.commands_received.clone(),
        );
        r.register(
            "commands_duplicate",
            "Command deliveries already held",
            m.commands_duplicate.clone(),
        );
        r.register(
            "uplink_failures",
            "Failed uplink connection attempts",
            m.uplink_failures.clone(),
        );
        r.register(
            "configs_applied",
            "Site configurations taken from the cloud",
            m.configs_applied.clone(),
        );
        r.register(
            "records_acknowledged",
            "Transaction records stored durably and acknowledged to chargers",
            m.records_acknowledged.clone(),
        );
        r.register(
            "records_appended",
            "Records appended to the outbox",
            m.records_appended.clone(),
        );
        r.register(
            "starts_refused",
            "Session starts refused locally",
            m.starts_refused.clone(),
        );
        r.register(
            "internal_errors",
            "Store or internal errors",
            m.internal_errors.clone(),
        );
        r.register(
            "frames_in_dropped",
            "Frames from chargers dropped before the site (no live connection, site gone)",
            m.frames_in_dropped.clone(),
        );
        r.register(
            "port_connections",
            "Sockets accepted by a charger port, before authentication",
            m.port_connections.clone(),
        );
        r.register(
            "commands_malformed",
            "Command deliveries refused as malformed or foreign (acknowledged, dropped)",
            m.commands_malformed.clone(),
        );
        r.register(
            "commands_expired",
            "Commands already expired on arrival",
            m.commands_expired.clone(),
        );
        r.register(
            "uplink_rejected",
            "Cloud messages (acks, config notices) refused as malformed or foreign",
            m.uplink_rejected.clone(),
        );
        r.register(
            "configs_rejected",
            "Site configuration fetches that failed or were refused",
            m.configs_rejected.clone(),
        );
        r.register(
            "replay_failures",
            "Failed backlog replay requests over HTTP",
            m.replay_failures.clone(),
        );
        r.register(
            "replay_bytes_http",
            "Compressed bytes of backlog replay over HTTP",
            m.replay_bytes_http.clone(),
        );
        r.register(
            "uplink_resends",
            "Re-sends from the acknowledged mark after an ack timeout",
            m.uplink_resends.clone(),
        );
        r.register(
            "grid_event_active",
            "1 while a V2G grid event runs at the site",
            m.grid_event_active.clone(),
        );
        r.register(
            "grid_participants",
            "Vehicles sharing the running grid event",
            m.grid_participants.clone(),
        );
        r.register(
            "grid_target_watts",
            "The running grid event's export target after the site limit, watts",
            m.grid_target_watts.clone(),
        );
        r.register(
            "grid_planned_watts",
            "Sum of the planned discharge setpoints, watts",
            m.grid_planned_watts.clone(),
        );
        r.register(
            "grid_shortfall_watts",
            "Export target the vehicles cannot provide, watts",
            m.grid_shortfall_watts.clone(),
        );
        r.register(
            "grid_setpoints",
            "Discharge setpoints (0xC4) sent by the dispatcher",
            m.grid_setpoints.clone(),
        );
        r.register(
            "grid_stops",
            "Discharge stops (0xC6) sent by the dispatcher, by cause",
            m.grid_stops.clone(),
        );
        r.register(
            "grid_events_accepted",
            "Grid event commands accepted",
            m.grid_events_accepted.clone(),
        );
        r.register(
            "grid_events_refused",
            "Grid event commands refused",
            m.grid_events_refused.clone(),
        );
        r.register(
            "grid_replan_errors",
            "Dispatch re-plans that failed",
            m.grid_replan_errors.clone(),
        );
        r
    }

    /// Sets the uplink state gauge.
    pub fn set_uplink(&self, state: UplinkState) {
        self.uplink_state.set(state as i64);
    }

    /// Counts one frame received on `port`.
    pub fn frame_in(&self, port: Port, frame_type: u8) {
        self.frames_in
            .get_or_create(&FrameLabels {
                port,
                r#type: frame_type_label(frame_type),
            })
            .inc();
    }

    /// Counts one decode error of `kind` on `port`.
    pub fn decode_error(&self, port: Port, kind: &'static str) {
        self.decode_errors
            .get_or_create(&ReasonLabels { port, reason: kind })
            .inc();
    }

    /// Counts a refused authentication.
    pub fn auth_refused(&self, port: Port, reason: &'static str) {
        self.auth_refused
            .get_or_create(&ReasonLabels { port, reason })
            .inc();
    }

    /// The count of `reason` refusals on `port`.
    pub fn auth_refused_count(&self, port: Port, reason: &'static str) -> u64 {
        self.auth_refused
            .get_or_create(&ReasonLabels { port, reason })
            .get()
    }

    /// The count of decode errors of `kind` on `port`.
    pub fn decode_error_count(&self, port: Port, kind: &'static str) -> u64 {
        self.decode_errors
            .get_or_create(&ReasonLabels { port, reason: kind })
            .get()
    }
}

/// `0x13`-style label for a frame type, from a static table (no allocation per frame).
pub fn frame_type_label(t: u8) -> &'static str {
    static LABELS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| {
        (0..=255u8)
            .map(|t| {
                let mut s = String::new();
                let _ = write!(s, "0x{t:02X}");
                &*Box::leak(s.into_boxed_str())
            })
            .collect()
    })[t as usize]
}

/// Renders the registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
