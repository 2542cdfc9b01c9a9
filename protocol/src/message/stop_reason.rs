//! The stop-reason code table of the reference's appendix 13.1 ("充电停止原因代码表"), used by
//! transaction records (0x3B) and charger stop frames. Any byte is accepted, so a pile's bill is
//! never refused for an undocumented reason; `describe()` names the documented ones.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The broad class of a [`StopReason`], from the ranges of appendix 13.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCategory {
    /// 0x00: no reason given (the reference's own sample record uses it).
    None,
    /// 0x40..=0x49: charging finished normally ("充电完成").
    Completed,
    /// 0x4A..=0x69: charging never started ("充电启动失败").
    StartFailed,
    /// 0x6A..=0x8F: charging stopped abnormally ("充电异常中止").
    Aborted,
    /// 0x90: stopped for an unknown reason ("未知原因停止").
    Unknown,
    /// Any other value: not in the table.
    Undocumented,
}

/// Why charging stopped (appendix 13.1, "充电停止原因代码表"; the 0x3B table calls it
/// "appendix 11.1"). Any byte is accepted and kept: piles send codes outside the table, and a
/// transaction record must never be refused for its stop reason. JSON: the number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StopReason(pub u8);

impl StopReason {
    /// 0x00: no reason.
    pub const NONE: StopReason = StopReason(0x00);
    /// 0x40: stopped remotely from the app (0x36).
    pub const APP_REMOTE_STOP: StopReason = StopReason(0x40);
    /// 0x41: SoC reached 100 %.
    pub const SOC_FULL: StopReason = StopReason(0x41);
    /// 0x42: the energy target was reached.
    pub const ENERGY_TARGET_REACHED: StopReason = StopReason(0x42);
    /// 0x43: the amount target was reached.
    pub const AMOUNT_TARGET_REACHED: StopReason = StopReason(0x43);
    /// 0x44: the time target was reached.
    pub const TIME_TARGET_REACHED: StopReason = StopReason(0x44);
    /// 0x45: stopped manually at the pile.
    pub const MANUAL_STOP: StopReason = StopReason(0x45);
    /// 0x4E: the start failed for lack of balance.
    pub const START_FAILED_INSUFFICIENT_BALANCE: StopReason = StopReason(0x4E);
    /// 0x6E: charging stopped because the balance ran out.
    pub const ABORTED_INSUFFICIENT_BALANCE: StopReason = StopReason(0x6E);
    /// 0x83: the pile lost power.
    pub const PILE_POWER_LOST: StopReason = StopReason(0x83);
    /// 0x90: unknown reason.
    pub const UNKNOWN: StopReason = StopReason(0x90);

    /// The wire byte.
    pub const fn code(self) -> u8 {
        self.0
    }

    /// The class of the code.
    pub const fn category(self) -> StopCategory {
        match self.0 {
            0x00 => StopCategory::None,
            0x40..=0x49 => StopCategory::Completed,
            0x4A..=0x69 => StopCategory::StartFailed,
            0x6A..=0x8F => StopCategory::Aborted,
            0x90 => StopCategory::Unknown,
            _ => StopCategory::Undocumented,
        }
    }

    /// True when charging finished normally (0x40..=0x49).
    pub const fn is_normal(self) -> bool {
        matches!(self.category(), StopCategory::Completed)
    }

    /// True when charging never started (0x4A..=0x69).
    pub const fn is_start_failure(self) -> bool {
        matches!(self.category(), StopCategory::StartFailed)
    }

    /// True when charging stopped abnormally (0x6A..=0x8F) or for an unknown reason (0x90).
    pub const fn is_abnormal(self) -> bool {
        matches!(
            self.category(),
            StopCategory::Aborted | StopCategory::Unknown
        )
    }

    /// True when the code is in appendix 13.1 (including its reserved slots) or is 0x00.
    pub const fn is_documented(self) -> bool {
        !matches!(self.category(), StopCategory::Undocumented)
    }

    /// An English description of the code.
    pub const fn describe(self) -> &'static str {
        match self.0 {
            0x00 => "No stop reason given",
            0x40 => "Charging finished: stopped remotely from the app",
            0x41 => "Charging finished: SoC reached 100%",
            0x42 => "Charging finished: energy target reached",
            0x43 => "Charging finished: amount target reached",
            0x44 => "Charging finished: time target reached",
            0x45 => "Charging finished: stopped manually",
            0x46..=0x49 => "Charging finished: other (reserved)",
            0x4A => "Start failed: pile control system fault (needs a restart or automatic recovery)",
            0x4B => "Start failed: control pilot disconnected",
            0x4C => "Start failed: circuit breaker tripped",
            0x4D => "Start failed: meter communication lost",
            0x4E => "Start failed: insufficient balance",
            0x4F => "Start failed: charging module fault",
            0x50 => "Start failed: emergency stop pressed",
            0x51 => "Start failed: surge protector fault",
            0x52 => "Start failed: BMS not ready",
            0x53 => "Start failed: abnormal temperature",
            0x54 => "Start failed: battery connected with reverse polarity",
            0x55 => "Start failed: electronic lock fault",
            0x56 => "Start failed: contactor failed to close",
            0x57 => "Start failed: insulation fault",
            0x58 => "Start failed: reserved",
            0x59 => "Start failed: timeout waiting for the BMS handshake (BHM)",
            0x5A => "Start failed: timeout waiting for BMS and vehicle identification (BRM)",
            0x5B => "Start failed: timeout waiting for battery charging parameters (BCP)",
            0x5C => "Start failed: timeout waiting for BMS ready to charge (BRO 0xAA)",
            0x5D => "Start failed: timeout waiting for battery charging status (BCS)",
            0x5E => "Start failed: timeout waiting for battery charging requirements (BCL)",
            0x5F => "Start failed: timeout waiting for battery status (BSM)",
            0x60 => "Start failed: GB/T 2015 battery voltage present during BHM, charging not allowed",
            0x61 => "Start failed: GB/T 2015 battery voltage at BRO 0xAA differs from BCP by more than 5%",
            0x62 => "Start failed: GB/T 2015 BRO went from 0xAA back to 0x00 during pre-charge",
            0x63 => "Start failed: timeout waiting for the host configuration message",
            0x64 => "Start failed: charger not ready, CRO 0xAA not sent (old GB/T)",
            0x65..=0x69 => "Start failed: other (reserved)",
            0x6A => "Aborted: system locked out",
            0x6B => "Aborted: control pilot disconnected",
            0x6C => "Aborted: circuit breaker tripped",
            0x6D => "Aborted: meter communication lost",
            0x6E => "Aborted: insufficient balance",
            0x6F => "Aborted: AC protection tripped",
            0x70 => "Aborted: DC protection tripped",
            0x71 => "Aborted: charging module fault",
            0x72 => "Aborted: emergency stop pressed",
            0x73 => "Aborted: surge protector fault",
            0x74 => "Aborted: abnormal temperature",
            0x75 => "Aborted: abnormal output",
            0x76 => "Aborted: no charging current",
            0x77 => "Aborted: electronic lock fault",
            0x78 => "Aborted: reserved",
            0x79 => "Aborted: abnormal total charging voltage",
            0x7A => "Aborted: abnormal total charging current",
            0x7B => "Aborted: abnormal cell charging voltage",
            0x7C => "Aborted: battery pack over temperature",
            0x7D => "Aborted: abnormal highest cell charging voltage",
            0x7E => "Aborted: highest battery pack temperature too high",
            0x7F => "Aborted: abnormal cell charging voltage (BMV)",
            0x80 => "Aborted: battery pack over temperature (BMT)",
            0x81 => "Aborted: abnormal battery status",
            0x82 => "Aborted: the vehicle prohibited charging",
            0x83 => "Aborted: the pile lost power",
            0x84 => "Aborted: timeout waiting for battery charging status (BCS)",
            0x85 => "Aborted: timeout waiting for battery charging requirements (BCL)",
            0x86 => "Aborted: timeout waiting for battery status (BSM)",
            0x87 => "Aborted: timeout waiting for the BMS stop message (BST)",
            0x88 => "Aborted: timeout waiting for BMS charging statistics (BSD)",
            0x89 => "Aborted: timeout waiting for the peer's CCS message",
            0x8A..=0x8F => "Aborted: other (reserved)",
            0x90 => "Stopped for an unknown reason",
            _ => "Not in the stop-reason table",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X} ({})", self.0, self.describe())
    }
}

impl fmt::Debug for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StopReason({self})")
    }
}

impl From<u8> for StopReason {
    fn from(v: u8) -> StopReason {
        StopReason(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reason_categories_follow_the_appendix_ranges() {
        assert_eq!(StopReason(0x00).category(), StopCategory::None);
        assert!(StopReason(0x40).is_normal());
        assert!(StopReason(0x49).is_normal());
        assert!(StopReason(0x4A).is_start_failure());
        assert!(StopReason(0x69).is_start_failure());
        assert!(StopReason(0x6A).is_abnormal());
        assert!(StopReason(0x8F).is_abnormal());
        assert!(StopReason(0x90).is_abnormal());
        assert_eq!(StopReason(0x3F).category(), StopCategory::Undocumented);
        assert_eq!(StopReason(0x91).category(), StopCategory::Undocumented);
        assert!(!StopReason(0xFF).is_documented());
    }
}
