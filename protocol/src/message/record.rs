//! Transaction records (0x3B) and their confirmation (0x40): the billing-critical frames of
//! reference section 8.7-8.8. A pile resends a record until the platform confirms it.

use serde::{Deserialize, Serialize};

use crate::domain::money::scale;
use crate::domain::{ConnectorNo, Energy, Money, PileCode, TransactionSerial};
use crate::message::common::{physical_card, PhysicalCardNo};
use crate::message::register::RateKind;
use crate::message::stop_reason::StopReason;
use crate::message::{wire_enum, Body};
use crate::wire::cp56::Cp56Time;
use crate::wire::parse::*;
use crate::wire::text::FixedText;
use crate::wire::write::{BodyWriter, EncodeError};

/// How the transaction in a record was started ("交易标识", 0x3B): 1 app, 2 card, 4 offline
/// card, 5 VIN. Any byte is accepted: a pile's bill is billing-critical and must never be
/// refused for an unlisted flag; [`TransactionOrigin::describe`] names the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransactionOrigin(pub u8);

impl TransactionOrigin {
    /// Started from the app (a platform remote start).
    pub const APP: TransactionOrigin = TransactionOrigin(0x01);
    /// Started by a card the platform authorised.
    pub const CARD: TransactionOrigin = TransactionOrigin(0x02);
    /// Started by a card on the pile's offline list.
    pub const OFFLINE_CARD: TransactionOrigin = TransactionOrigin(0x04);
    /// Started by the vehicle's VIN.
    pub const VIN: TransactionOrigin = TransactionOrigin(0x05);

    /// What the code means, or `None` for an undocumented code.
    pub fn describe(self) -> Option<&'static str> {
        match self.0 {
            0x01 => Some("app start"),
            0x02 => Some("card start"),
            0x04 => Some("offline card start"),
            0x05 => Some("VIN start"),
            _ => None,
        }
    }
}

wire_enum!(
    /// The platform's answer to a transaction record (0x40). "Accepted" only means the record
    /// was received, not that the order is settled.
    RecordAckResult allowed "0 (accepted) or 1 (invalid record)" { Accepted = 0, Invalid = 1 }
);

/// One rate period's line of a transaction record (sharp, peak, flat or valley).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodLine {
    /// Price per kWh at 0.00001 yuan: energy price plus service fee of the billing model's
    /// rate.
    #[serde(rename = "unit_price_yuan_per_kwh")]
    pub unit_price: Money,
    /// Metered energy in the period, at 0.0001 kWh.
    #[serde(rename = "energy_kwh")]
    pub energy: Energy,
    /// The energy plus the billing model's loss ratio ("计损电量"; equal to `energy` while
    /// the loss ratio is 0, as the platform sends it).
    #[serde(rename = "loss_adjusted_energy_kwh")]
    pub loss_adjusted_energy: Energy,
    /// The amount charged for the period, at 0.0001 yuan.
    #[serde(rename = "amount_yuan")]
    pub amount: Money,
}

/// Field names of the four period lines, for error messages (sharp, peak, flat, valley).
const PERIOD_FIELDS: [[&str; 4]; 4] = [
    [
        "sharp_unit_price",
        "sharp_energy",
        "sharp_loss_adjusted_energy",
        "sharp_amount",
    ],
    [
        "peak_unit_price",
        "peak_energy",
        "peak_loss_adjusted_energy",
        "peak_amount",
    ],
    [
        "flat_unit_price",
        "flat_energy",
        "flat_loss_adjusted_energy",
        "flat_amount",
    ],
    [
        "valley_unit_price",
        "valley_energy",
        "valley_loss_adjusted_energy",
        "valley_amount",
    ],
];

/// The four rate kinds in wire order.
const PERIOD_KINDS: [RateKind; 4] = [
    RateKind::Sharp,
    RateKind::Peak,
    RateKind::Flat,
    RateKind::Valley,
];

/// 0x3B: the pile's settlement record of one transaction, sent after every start it acted on
/// (successful or not) until the platform acknowledges it with 0x40. Billing-critical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub start_time: Cp56Time,
    pub end_time: Cp56Time,
    /// Sharp, peak, flat, valley, in that order (see [`TransactionRecord::period_lines`]).
    pub periods: [PeriodLine; 4],
    /// The meter's total register at the start ("电表总起值"), 5 bytes at 0.0001 kWh.
    #[serde(rename = "meter_start_kwh")]
    pub meter_start: Energy,
    /// The meter's total register at the end ("电表总止值").
    #[serde(rename = "meter_end_kwh")]
    pub meter_end: Energy,
    /// Total energy at 0.0001 kWh ("总电量").
    #[serde(rename = "total_energy_kwh")]
    pub total_energy: Energy,
    /// Total loss-adjusted energy ("计损总电量").
    #[serde(rename = "loss_adjusted_total_energy_kwh")]
    pub loss_adjusted_total_energy: Energy,
    /// Total amount at 0.0001 yuan, energy and service fees included ("消费金额").
    #[serde(rename = "total_amount_yuan")]
    pub total_amount: Money,
    /// The vehicle's VIN in reading order (unlike 0x31, not reversed and not zero-padded by
    /// the pile); zeros when unknown.
    pub vin: FixedText<17>,
    pub origin: TransactionOrigin,
    /// When the transaction was recorded ("交易日期、时间").
    pub transaction_time: Cp56Time,
    pub stop_reason: StopReason,
    pub physical_card: PhysicalCardNo,
}

impl TransactionRecord {
    /// The four period lines with their rate kind, in wire order (sharp, peak, flat, valley).
    pub fn period_lines(&self) -> impl Iterator<Item = (RateKind, &PeriodLine)> + '_ {
        PERIOD_KINDS.into_iter().zip(self.periods.iter())
    }

    /// The line of one rate period.
    pub fn period(&self, kind: RateKind) -> &PeriodLine {
        &self.periods[kind as usize]
    }

    /// The total energy the pile reports ("总电量"), the figure to bill on.
    pub fn total_energy(&self) -> Energy {
        self.total_energy
    }

    /// The total amount the pile reports ("消费金额").
    pub fn total_amount(&self) -> Money {
        self.total_amount
    }

    /// The sum of the four periods' energies (for cross-checking against the total).
    pub fn period_energy_sum(&self) -> Energy {
        self.periods.iter().map(|p| p.energy).sum()
    }

    /// The sum of the four periods' amounts (for cross-checking against the total).
    pub fn period_amount_sum(&self) -> Money {
        self.periods.iter().map(|p| p.amount).sum()
    }

    /// The end meter register minus the start register, or `None` when the end is lower
    /// (a replaced or rolled-over meter: the registers cannot be trusted for this record).
    pub fn meter_delta(&self) -> Option<Energy> {
        if self.meter_end < self.meter_start {
            return None;
        }
        self.meter_end.checked_sub(self.meter_start)
    }
}

impl Body for TransactionRecord {
    const TYPE: u8 = 0x3B;
    const NAME: &'static str = "transaction_record";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, start_time) = cp56("start_time")(i)?;
        let (mut i, end_time) = cp56("end_time")(i)?;
        let mut periods = [PeriodLine {
            unit_price: Money::ZERO,
            energy: Energy::ZERO,
            loss_adjusted_energy: Energy::ZERO,
            amount: Money::ZERO,
        }; 4];
        for (line, [price_f, energy_f, loss_f, amount_f]) in periods.iter_mut().zip(PERIOD_FIELDS) {
            let (rest, unit_price) = money::<4>(price_f, scale::UNIT_PRICE)(i)?;
            let (rest, metered) = energy::<4>(energy_f)(rest)?;
            let (rest, loss_adjusted_energy) = energy::<4>(loss_f)(rest)?;
            let (rest, amount) = money::<4>(amount_f, scale::AMOUNT)(rest)?;
            *line = PeriodLine {
                unit_price,
                energy: metered,
                loss_adjusted_energy,
                amount,
            };
            i = rest;
        }
        let (i, meter_start) = energy::<5>("meter_start")(i)?;
        let (i, meter_end) = energy::<5>("meter_end")(i)?;
        let (i, total_energy) = energy::<4>("total_energy")(i)?;
        let (i, loss_adjusted_total_energy) = energy::<4>("loss_adjusted_total_energy")(i)?;
        let (i, total_amount) = money::<4>("total_amount", scale::AMOUNT)(i)?;
        let (i, vin) = text("vin")(i)?;
        let (i, origin) = u8_bin("origin")(i)?;
        let origin = TransactionOrigin(origin);
        let (i, transaction_time) = cp56("transaction_time")(i)?;
        let (i, stop_reason) = u8_bin("stop_reason")(i)?;
        let (i, physical_card) = physical_card("physical_card")(i)?;
        Ok((
            i,
            TransactionRecord {
                serial,
                pile_code,
                connector,
                start_time,
                end_time,
                periods,
                meter_start,
                meter_end,
                total_energy,
                loss_adjusted_total_energy,
                total_amount,
                vin,
                origin,
                transaction_time,
                stop_reason: StopReason(stop_reason),
                physical_card,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.cp56(&self.start_time);
        w.cp56(&self.end_time);
        for (line, [price_f, energy_f, loss_f, amount_f]) in self.periods.iter().zip(PERIOD_FIELDS)
        {
            w.money(price_f, line.unit_price, scale::UNIT_PRICE, 4)?;
            w.energy(energy_f, line.energy, 4)?;
            w.energy(loss_f, line.loss_adjusted_energy, 4)?;
            w.money(amount_f, line.amount, scale::AMOUNT, 4)?;
        }
        w.energy("meter_start", self.meter_start, 5)?;
        w.energy("meter_end", self.meter_end, 5)?;
        w.energy("total_energy", self.total_energy, 4)?;
        w.energy(
            "loss_adjusted_total_energy",
            self.loss_adjusted_total_energy,
            4,
        )?;
        w.money("total_amount", self.total_amount, scale::AMOUNT, 4)?;
        w.text(&self.vin);
        w.u8(self.origin.0);
        w.cp56(&self.transaction_time);
        w.u8(self.stop_reason.0);
        w.bytes(self.physical_card.as_bytes());
        Ok(())
    }
}

/// 0x40: the platform confirms it received a transaction record (not that it is settled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRecordAck {
    pub serial: TransactionSerial,
    pub result: RecordAckResult,
}

impl Body for TransactionRecordAck {
    const TYPE: u8 = 0x40;
    const NAME: &'static str = "transaction_record_ack";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((i, TransactionRecordAck { serial, result }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.code(self.result);
        Ok(())
    }
}
