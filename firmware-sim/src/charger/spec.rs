//! What a charger is (its nameplate) and what can be done to it (inputs) and what it does
//! (outputs).

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{ConnectorNo, PileCode, Power};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::BillingModel;
use voltline_protocol::message::transaction::PhysicalCardNo;

use crate::events::SimEvent;
use crate::vehicle::VehicleSpec;

/// AC or DC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargerKind {
    Ac,
    Dc,
}

/// A charger's nameplate and firmware settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargerSpec {
    pub pile: PileCode,
    pub kind: ChargerKind,
    /// Rated power per connector.
    pub rated_power: Power,
    /// 1 or 2.
    pub connectors: u8,
    pub v2g: bool,
    /// Firmware version, up to 8 ASCII characters.
    pub program_version: String,
    /// Real-time data interval while charging or discharging, simulated seconds (15).
    pub report_interval_s: u32,
    /// Real-time data interval while idle, simulated seconds (300).
    pub idle_report_interval_s: u32,
    /// Heartbeat interval per connector, simulated seconds (10).
    pub heartbeat_interval_s: u32,
    /// First resend interval of an unconfirmed record, simulated seconds (30; reference 8.7).
    pub record_resend_s: u32,
    /// Resend interval after the third resend, simulated seconds (300; reference 8.8).
    pub record_resend_slow_s: u32,
    /// How long to wait for the login reply, simulated seconds.
    pub login_timeout_s: u32,
    /// Most unconfirmed records kept. When full, new sessions are refused (the oldest
    /// records are never dropped).
    pub max_pending_records: usize,
    /// The billing model the pile ships with (`None`: it asks the platform after login).
    pub billing_model: Option<BillingModel>,
    /// Firmware that zeroes the meter registers on every reboot (a fault knob).
    pub meter_reset_on_reboot: bool,
    /// How long a reboot keeps the pile off the network, simulated seconds.
    pub reboot_s: u32,
    /// Added to the login and heartbeat timeouts, simulated milliseconds. Networks do not
    /// speed up with the simulation: the fleet sets this to a couple of real seconds at its
    /// speed, so a fast simulation does not drop links over ordinary latency.
    #[serde(default)]
    pub link_slack_ms: u64,
}

impl ChargerSpec {
    /// A 7 kW AC pile with one connector and default firmware settings.
    pub fn ac(pile: PileCode) -> ChargerSpec {
        ChargerSpec {
            pile,
            kind: ChargerKind::Ac,
            rated_power: Power::from_kw(7),
            connectors: 1,
            v2g: false,
            program_version: "VSIM1.0".into(),
            report_interval_s: 15,
            idle_report_interval_s: 300,
            heartbeat_interval_s: 10,
            record_resend_s: 30,
            record_resend_slow_s: 300,
            login_timeout_s: 30,
            max_pending_records: 256,
            billing_model: None,
            meter_reset_on_reboot: false,
            reboot_s: 5,
            link_slack_ms: 0,
        }
    }

    /// A DC pile of `kw` (60-160) with two connectors.
    pub fn dc(pile: PileCode, kw: i64) -> ChargerSpec {
        ChargerSpec {
            kind: ChargerKind::Dc,
            rated_power: Power::from_kw(kw),
            connectors: 2,
            ..ChargerSpec::ac(pile)
        }
    }

    /// The same pile, V2G-capable.
    pub fn with_v2g(mut self) -> ChargerSpec {
        self.v2g = true;
        self
    }

    /// The same pile with `n` connectors.
    pub fn with_connectors(mut self, n: u8) -> ChargerSpec {
        self.connectors = n;
        self
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=2).contains(&self.connectors) {
            return Err(format!("pile {}: connectors must be 1 or 2", self.pile));
        }
        if self.program_version.len() > 8 || !self.program_version.is_ascii() {
            return Err(format!(
                "pile {}: program version '{}' must be at most 8 ASCII characters",
                self.pile, self.program_version
            ));
        }
        if self.rated_power.watts() <= 0 || self.rated_power.watts() % 100 != 0 {
            return Err(format!(
                "pile {}: rated power {} must be positive, in 0.1 kW steps",
                self.pile, self.rated_power
            ));
        }
        let intervals = [
            self.report_interval_s,
            self.idle_report_interval_s,
            self.heartbeat_interval_s,
            self.record_resend_s,
            self.record_resend_slow_s,
            self.login_timeout_s,
        ];
        if intervals.contains(&0) {
            return Err(format!(
                "pile {}: intervals must be at least 1 s",
                self.pile
            ));
        }
        if self.max_pending_records == 0 {
            return Err(format!(
                "pile {}: max_pending_records must be at least 1",
                self.pile
            ));
        }
        Ok(())
    }
}

/// How a plugged-in vehicle's session gets started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartBy {
    /// The platform starts it (0x34, e.g. from the app). The pile waits.
    Remote,
    /// A card swiped at the pile: 0x31, started on an authorised 0x32.
    Card(PhysicalCardNo),
    /// Plug and charge by VIN: 0x31 with the VIN.
    Vin,
}

/// Faults the state machine itself carries out (the wire-level ones live in the transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargerFault {
    /// The pile's clock jumps to 1970-01-01 00:00 local.
    ClockAt1970,
    /// The pile's clock is this many minutes off true time.
    ClockSkew { minutes: i64 },
    /// The next reboot zeroes the meter registers.
    MeterResetOnNextReboot,
    /// Reboot now (as if by 0x92 "immediately").
    Reboot,
    /// A connector faults: charging stops, starts are refused, heartbeats say "fault".
    ConnectorFault { connector: u8 },
    /// A connector's fault clears.
    ClearConnectorFault { connector: u8 },
}

/// One thing that happens to a charger.
#[derive(Debug, Clone)]
pub enum Input {
    /// The transport is up: log in.
    Connected,
    /// The transport went down.
    Disconnected,
    /// A frame from the platform.
    Frame(Frame),
    /// Time passed.
    Tick,
    /// A vehicle arrives and plugs into a connector.
    PlugIn {
        connector: u8,
        vehicle: VehicleSpec,
        start: StartBy,
    },
    /// The vehicle leaves (a running session is stopped first).
    Unplug { connector: u8 },
    /// The user stops charging at the pile.
    UserStop { connector: u8 },
    /// A fault.
    Fault(ChargerFault),
}

/// Why the charger drops its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    LoginTimeout,
    LoginRejected,
    HeartbeatsUnanswered,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropReason::LoginTimeout => "no login reply in time",
            DropReason::LoginRejected => "login rejected",
            DropReason::HeartbeatsUnanswered => "three heartbeats unanswered",
        })
    }
}

/// What the charger does.
#[derive(Debug, Clone)]
pub enum Output {
    /// Write a frame to the platform.
    Send(Frame),
    /// Close the link; reconnect with backoff.
    Drop(DropReason),
    /// Close the link, stay off for this many simulated milliseconds, then reconnect.
    Reboot { down_ms: u64 },
    /// Tell the world.
    Event(SimEvent),
}

/// A connector number from a 1-based index, for code paths that have validated it.
pub(crate) fn connector_no(n: u8) -> ConnectorNo {
    const ONE: ConnectorNo = match ConnectorNo::new(1) {
        Some(c) => c,
        None => panic!("1 is a connector number"),
    };
    ConnectorNo::new(n).unwrap_or(ONE)
}
