//! Working parameters, time sync, billing model set and parking locks (reference chapters 9-10,
//! types 0x51-0x63).

use serde::{Deserialize, Serialize};

use crate::domain::{ConnectorNo, PileCode, Soc};
pub use crate::message::common::Outcome;
use crate::message::register::BillingModel;
use crate::message::{wire_enum, Body};
use crate::wire::cp56::Cp56Time;
use crate::wire::parse::{bytes, code, cp56, pile_code, soc, u8_bin, FieldError, PResult};
use crate::wire::write::{BodyWriter, EncodeError};

wire_enum!(
    /// Whether the platform lets the pile work (0x52).
    WorkPermission allowed "0 (allowed to work) or 1 (out of service, pile locked)" {
        /// 0x00: normal operation.
        Allowed = 0,
        /// 0x01: stop using the pile and lock it.
        Locked = 1
    }
);
wire_enum!(
    /// Where a parking lock's arm is.
    LockPosition allowed "0x00 (not in position), 0x55 (raised) or 0xFF (lowered)" {
        /// 0x00: between positions (moving, or stuck).
        NotInPosition = 0x00,
        /// 0x55: fully raised: the bay is blocked.
        Raised = 0x55,
        /// 0xFF: fully lowered: the bay is free to enter.
        Lowered = 0xFF
    }
);
wire_enum!(
    /// Whether a vehicle stands in the parking bay.
    ParkingSpace allowed "0x00 (empty) or 0xFF (vehicle parked)" { Empty = 0x00, Occupied = 0xFF }
);
wire_enum!(
    /// A parking lock's alarm state.
    LockAlarm allowed "0x00 (no alarm), 0x55 (arm did not reach its position) or 0xFF (arm damaged while idle)" {
        /// 0x00: normal, no alarm.
        Normal = 0x00,
        /// 0x55: the arm failed to reach its position when raising or lowering.
        ArmNotInPosition = 0x55,
        /// 0xFF: the arm was forced or broken while idle.
        ArmDamaged = 0xFF
    }
);
wire_enum!(
    /// Raise or lower a parking lock (the reference types it "BCD", but 0xFF is not BCD: it
    /// is a code byte).
    LockCommand allowed "0x55 (raise) or 0xFF (lower)" { Raise = 0x55, Lower = 0xFF }
);

/// A connector number sent as one BIN byte (the parking lock frames' table says BIN where the
/// other chapters say BCD; for connectors 1-9 both are the same byte). Values above 99 are out
/// of range, as `ConnectorNo` allows 0..=99.
fn connector_bin<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, ConnectorNo> {
    move |i| {
        let (rest, n) = u8_bin(field)(i)?;
        match ConnectorNo::new(n) {
            Some(c) => Ok((rest, c)),
            None => Err(FieldError::out_of_range(i, field, n as i64, "0..=99")),
        }
    }
}

/// The largest output power limit a pile accepts, percent.
const MAX_POWER_PCT: u8 = 100;

/// 0x52: the platform takes the pile in or out of service and limits its output power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingParams {
    pub pile_code: PileCode,
    pub permission: WorkPermission,
    /// Maximum output power as a percentage of rated power, 0..=100 (the reference says piles
    /// honour 30..=100; its own sample sends 0 with a locked pile, so 0..=100 is accepted).
    pub max_output_power_pct: u8,
}

impl Body for WorkingParams {
    const TYPE: u8 = 0x52;
    const NAME: &'static str = "working_params";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, permission) = code("permission")(i)?;
        let (rest, max_output_power_pct) = u8_bin("max_output_power_pct")(i)?;
        if max_output_power_pct > MAX_POWER_PCT {
            return Err(FieldError::out_of_range(
                i,
                "max_output_power_pct",
                max_output_power_pct as i64,
                "0..=100 %",
            ));
        }
        Ok((
            rest,
            WorkingParams {
                pile_code,
                permission,
                max_output_power_pct,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        if self.max_output_power_pct > MAX_POWER_PCT {
            return Err(w.error(
                "max_output_power_pct",
                format_args!("{} % is above 100 %", self.max_output_power_pct),
            ));
        }
        w.pile_code(&self.pile_code);
        w.code(self.permission);
        w.u8(self.max_output_power_pct);
        Ok(())
    }
}

/// 0x51: the pile answers a working parameters setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingParamsReply {
    pub pile_code: PileCode,
    pub result: Outcome,
}

impl Body for WorkingParamsReply {
    const TYPE: u8 = 0x51;
    const NAME: &'static str = "working_params_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((i, WorkingParamsReply { pile_code, result }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.result);
        Ok(())
    }
}

/// 0x56: the platform sets the pile's clock (daily).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSync {
    pub pile_code: PileCode,
    /// The platform's current wall-clock time for the pile.
    pub time: Cp56Time,
}

impl Body for TimeSync {
    const TYPE: u8 = 0x56;
    const NAME: &'static str = "time_sync";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, time) = cp56("time")(i)?;
        Ok((i, TimeSync { pile_code, time }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.cp56(&self.time);
        Ok(())
    }
}

/// 0x55: the pile answers a time sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSyncReply {
    pub pile_code: PileCode,
    /// The pile's clock after the sync.
    pub time: Cp56Time,
}

impl Body for TimeSyncReply {
    const TYPE: u8 = 0x55;
    const NAME: &'static str = "time_sync_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, time) = cp56("time")(i)?;
        Ok((i, TimeSyncReply { pile_code, time }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.cp56(&self.time);
        Ok(())
    }
}

/// 0x58: the platform pushes a new billing model (same body as 0x0A).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModelSet {
    pub pile_code: PileCode,
    pub model: BillingModel,
}

impl Body for BillingModelSet {
    const TYPE: u8 = 0x58;
    const NAME: &'static str = "billing_model_set";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, model) = BillingModel::parse(i)?;
        Ok((i, BillingModelSet { pile_code, model }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        self.model.write(w)
    }
}

/// 0x57: the pile answers a billing model set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModelSetReply {
    pub pile_code: PileCode,
    pub result: Outcome,
}

impl Body for BillingModelSetReply {
    const TYPE: u8 = 0x57;
    const NAME: &'static str = "billing_model_set_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((i, BillingModelSetReply { pile_code, result }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.result);
        Ok(())
    }
}

/// 0x61: a parking lock reports its state on every change, and every 5 minutes otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkingLockStatus {
    pub pile_code: PileCode,
    /// The connector whose bay the lock guards (one BIN byte on the wire).
    pub connector: ConnectorNo,
    pub lock: LockPosition,
    pub space: ParkingSpace,
    /// The lock's own battery level.
    #[serde(rename = "battery_pct")]
    pub battery: Soc,
    pub alarm: LockAlarm,
    /// Reserved, all zeros from a conforming pile; kept as sent.
    pub reserved: [u8; 4],
}

impl Body for ParkingLockStatus {
    const TYPE: u8 = 0x61;
    const NAME: &'static str = "parking_lock_status";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector_bin("connector")(i)?;
        let (i, lock) = code("lock")(i)?;
        let (i, space) = code("space")(i)?;
        let (i, battery) = soc("battery")(i)?;
        let (i, alarm) = code("alarm")(i)?;
        let (i, reserved) = bytes::<4>("reserved")(i)?;
        Ok((
            i,
            ParkingLockStatus {
                pile_code,
                connector,
                lock,
                space,
                battery,
                alarm,
                reserved,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.u8(self.connector.get());
        w.code(self.lock);
        w.code(self.space);
        w.soc(self.battery);
        w.code(self.alarm);
        w.bytes(&self.reserved);
        Ok(())
    }
}

/// 0x62: the platform raises or lowers a parking lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkingLockCommand {
    pub pile_code: PileCode,
    /// The connector whose bay the lock guards (one BIN byte on the wire).
    pub connector: ConnectorNo,
    pub command: LockCommand,
    /// Reserved ("may be used for multiple connectors"), all zeros; kept as sent.
    pub reserved: [u8; 4],
}

impl Body for ParkingLockCommand {
    const TYPE: u8 = 0x62;
    const NAME: &'static str = "parking_lock_command";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector_bin("connector")(i)?;
        let (i, command) = code("command")(i)?;
        let (i, reserved) = bytes::<4>("reserved")(i)?;
        Ok((
            i,
            ParkingLockCommand {
                pile_code,
                connector,
                command,
                reserved,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.u8(self.connector.get());
        w.code(self.command);
        w.bytes(&self.reserved);
        Ok(())
    }
}

/// 0x63: the pile answers a parking lock command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkingLockReply {
    pub pile_code: PileCode,
    /// The connector whose bay the lock guards (one BIN byte on the wire).
    pub connector: ConnectorNo,
    pub result: Outcome,
    /// Reserved ("may be used for multiple connectors"), all zeros; kept as sent.
    pub reserved: [u8; 4],
}

impl Body for ParkingLockReply {
    const TYPE: u8 = 0x63;
    const NAME: &'static str = "parking_lock_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector_bin("connector")(i)?;
        let (i, result) = code("result")(i)?;
        let (i, reserved) = bytes::<4>("reserved")(i)?;
        Ok((
            i,
            ParkingLockReply {
                pile_code,
                connector,
                result,
                reserved,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.u8(self.connector.get());
        w.code(self.result);
        w.bytes(&self.reserved);
        Ok(())
    }
}
