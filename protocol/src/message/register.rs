//! Login, heartbeat and billing model frames (reference chapter 6, types 0x01-0x0A), and the
//! [`BillingModel`] body that 0x0A and 0x58 share.

use serde::{Deserialize, Serialize};

use crate::domain::money::scale;
use crate::domain::{ConnectorNo, Money, PileCode};
use crate::message::{wire_enum, Body};
use crate::wire::bcd::Bcd;
use crate::wire::parse::{bcd_field, code, connector, money, pile_code, text, u8_bin, PResult};
use crate::wire::text::FixedText;
use crate::wire::write::{BodyWriter, EncodeError};

wire_enum!(
    /// DC or AC pile.
    PileKind allowed "0 (DC) or 1 (AC)" { Dc = 0, Ac = 1 }
);
wire_enum!(
    /// How the pile reaches the network.
    NetworkKind allowed "0 (SIM), 1 (LAN), 2 (WAN) or 3 (other)" { Sim = 0, Lan = 1, Wan = 2, Other = 3 }
);
wire_enum!(
    /// The mobile carrier of the pile's SIM card (the reference leaves 0x01 unassigned).
    Carrier allowed "0 (China Mobile), 2 (China Telecom), 3 (China Unicom) or 4 (other)" {
        ChinaMobile = 0, ChinaTelecom = 2, ChinaUnicom = 3, Other = 4
    }
);
wire_enum!(
    /// The platform's answer to a login.
    LoginResult allowed "0 (accepted) or 1 (rejected)" { Accepted = 0, Rejected = 1 }
);
wire_enum!(
    /// A connector's health in a heartbeat.
    GunHealth allowed "0 (normal) or 1 (fault)" { Normal = 0, Fault = 1 }
);
wire_enum!(
    /// Whether the pile's billing model matches the platform's.
    VerifyResult allowed "0 (consistent) or 1 (inconsistent)" { Consistent = 0, Inconsistent = 1 }
);
wire_enum!(
    /// One of the four YKC rates a half-hour slot maps to.
    RateKind allowed "0 (sharp), 1 (peak), 2 (flat) or 3 (valley)" { Sharp = 0, Peak = 1, Flat = 2, Valley = 3 }
);

/// A billing model number: 4 BCD digits (`"0100"`).
pub type BillingModelNo = Bcd<2>;

/// 0x01: the pile logs in after every reset or loss of the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub pile_code: PileCode,
    pub pile_kind: PileKind,
    pub connector_count: u8,
    /// Protocol version × 10 (0x0F is v1.5, 0x10 is v1.6).
    pub protocol_version_x10: u8,
    pub program_version: FixedText<8>,
    pub network: NetworkKind,
    /// The SIM card number, 20 BCD digits, zeros when unknown.
    pub sim: Bcd<10>,
    pub carrier: Carrier,
}

impl Body for Login {
    const TYPE: u8 = 0x01;
    const NAME: &'static str = "login";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, pile_kind) = code("pile_kind")(i)?;
        let (i, connector_count) = u8_bin("connector_count")(i)?;
        let (i, protocol_version_x10) = u8_bin("protocol_version")(i)?;
        let (i, program_version) = text("program_version")(i)?;
        let (i, network) = code("network")(i)?;
        let (i, sim) = bcd_field("sim")(i)?;
        let (i, carrier) = code("carrier")(i)?;
        Ok((
            i,
            Login {
                pile_code,
                pile_kind,
                connector_count,
                protocol_version_x10,
                program_version,
                network,
                sim,
                carrier,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.pile_kind);
        w.u8(self.connector_count);
        w.u8(self.protocol_version_x10);
        w.text(&self.program_version);
        w.code(self.network);
        w.bcd(&self.sim);
        w.code(self.carrier);
        Ok(())
    }
}

/// 0x02: the platform accepts or rejects a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginReply {
    pub pile_code: PileCode,
    pub result: LoginResult,
}

impl Body for LoginReply {
    const TYPE: u8 = 0x02;
    const NAME: &'static str = "login_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((i, LoginReply { pile_code, result }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.result);
        Ok(())
    }
}

/// 0x03: every 10 s per connector; three missed heartbeats mean the link is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub health: GunHealth,
}

impl Body for Heartbeat {
    const TYPE: u8 = 0x03;
    const NAME: &'static str = "heartbeat";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, health) = code("health")(i)?;
        Ok((
            i,
            Heartbeat {
                pile_code,
                connector,
                health,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.health);
        Ok(())
    }
}

/// 0x04: the platform answers a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// Always 0 from a conforming platform; kept as sent.
    pub reply: u8,
}

impl Body for HeartbeatReply {
    const TYPE: u8 = 0x04;
    const NAME: &'static str = "heartbeat_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, reply) = u8_bin("reply")(i)?;
        Ok((
            i,
            HeartbeatReply {
                pile_code,
                connector,
                reply,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.u8(self.reply);
        Ok(())
    }
}

/// 0x05: after login the pile asks whether its billing model is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModelVerify {
    pub pile_code: PileCode,
    /// Zero on first connection.
    pub model_no: BillingModelNo,
}

impl Body for BillingModelVerify {
    const TYPE: u8 = 0x05;
    const NAME: &'static str = "billing_model_verify";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, model_no) = bcd_field("model_no")(i)?;
        Ok((
            i,
            BillingModelVerify {
                pile_code,
                model_no,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.bcd(&self.model_no);
        Ok(())
    }
}

/// 0x06: the platform says whether the pile's billing model is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModelVerifyReply {
    pub pile_code: PileCode,
    pub model_no: BillingModelNo,
    pub result: VerifyResult,
}

impl Body for BillingModelVerifyReply {
    const TYPE: u8 = 0x06;
    const NAME: &'static str = "billing_model_verify_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, model_no) = bcd_field("model_no")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((
            i,
            BillingModelVerifyReply {
                pile_code,
                model_no,
                result,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.bcd(&self.model_no);
        w.code(self.result);
        Ok(())
    }
}

/// 0x09: the pile asks for the current billing model (it may not charge until it has one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModelRequest {
    pub pile_code: PileCode,
}

impl Body for BillingModelRequest {
    const TYPE: u8 = 0x09;
    const NAME: &'static str = "billing_model_request";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        Ok((i, BillingModelRequest { pile_code }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        Ok(())
    }
}

/// One YKC rate: energy price and service fee per kWh, at 0.00001 yuan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Electricity price, yuan per kWh.
    #[serde(rename = "energy_price_yuan_per_kwh")]
    pub energy_price: Money,
    /// Service fee, yuan per kWh.
    #[serde(rename = "service_fee_yuan_per_kwh")]
    pub service_fee: Money,
}

/// The YKC billing model: four rates and 48 half-hour slots (00:00-00:30 first), each slot
/// naming the rate in force. Shared by 0x0A and 0x58.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModel {
    pub model_no: BillingModelNo,
    /// Sharp, peak, flat, valley, in that order.
    pub rates: [Rate; 4],
    /// Loss ratio ("计损比例"), percent added to metered energy; the platform sends 0.
    pub loss_ratio_pct: u8,
    /// The rate of each half hour of the day.
    #[serde(with = "crate::wire::fixed_array")]
    pub slots: [RateKind; 48],
}

impl BillingModel {
    /// The rate for one of the four kinds.
    pub fn rate(&self, kind: RateKind) -> Rate {
        self.rates[kind as usize]
    }

    /// Parses the fields after the pile code.
    pub fn parse(i: &[u8]) -> PResult<'_, Self> {
        const NAMES: [(&str, &str); 4] = [
            ("sharp_energy_price", "sharp_service_fee"),
            ("peak_energy_price", "peak_service_fee"),
            ("flat_energy_price", "flat_service_fee"),
            ("valley_energy_price", "valley_service_fee"),
        ];
        let (mut i, model_no) = bcd_field("model_no")(i)?;
        let mut rates = [Rate {
            energy_price: Money::ZERO,
            service_fee: Money::ZERO,
        }; 4];
        for (rate, (price_name, fee_name)) in rates.iter_mut().zip(NAMES) {
            let (rest, energy_price) = money::<4>(price_name, scale::UNIT_PRICE)(i)?;
            let (rest, service_fee) = money::<4>(fee_name, scale::UNIT_PRICE)(rest)?;
            *rate = Rate {
                energy_price,
                service_fee,
            };
            i = rest;
        }
        let (mut i, loss_ratio_pct) = u8_bin("loss_ratio")(i)?;
        let mut slots = [RateKind::Flat; 48];
        for slot in slots.iter_mut() {
            let (rest, kind) = code("slot_rate")(i)?;
            *slot = kind;
            i = rest;
        }
        Ok((
            i,
            BillingModel {
                model_no,
                rates,
                loss_ratio_pct,
                slots,
            },
        ))
    }

    /// Writes the fields after the pile code.
    pub fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.bcd(&self.model_no);
        for rate in &self.rates {
            w.money("energy_price", rate.energy_price, scale::UNIT_PRICE, 4)?;
            w.money("service_fee", rate.service_fee, scale::UNIT_PRICE, 4)?;
        }
        w.u8(self.loss_ratio_pct);
        for slot in &self.slots {
            w.code(*slot);
        }
        Ok(())
    }
}

/// 0x0A: the platform sends the billing model the pile asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingModelReply {
    pub pile_code: PileCode,
    pub model: BillingModel,
}

impl Body for BillingModelReply {
    const TYPE: u8 = 0x0A;
    const NAME: &'static str = "billing_model_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, model) = BillingModel::parse(i)?;
        Ok((i, BillingModelReply { pile_code, model }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        self.model.write(w)
    }
}
