//! What the site knows of each connected pile, and the frames that concern the pile as a
//! whole rather than one connector: login (0x01), billing model verify and request
//! (0x05/0x09), and the replies to the pile-level commands time sync (0x56) and reboot (0x92).
//!
//! Also the sequence rule of the envelope: a reply carries its request's sequence, a frame
//! the platform starts carries the pile's own counter, which starts again at 0 on every
//! connection (YKC: "resets to 0 on reconnect or overflow").

use jiff::tz::TimeZone;
use jiff::Timestamp;
use voltline_protocol::domain::{CommandId, PileCode};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::{
    BillingModelNo, BillingModelReply, BillingModelVerifyReply, LoginReply, LoginResult,
    VerifyResult,
};
use voltline_protocol::tariff::Tariff;
use voltline_protocol::wire::bcd::{self, Bcd};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::Message;

use crate::ports::{PileSender, SendError};

/// Most connectors a pile may declare (YKC piles have one or two; a login declaring more is
/// capped so a hostile login cannot make the site allocate without bound).
pub const MAX_CONNECTORS_PER_PILE: u8 = 8;

/// Most pile-level commands (time sync, reboot) awaiting a pile's answer.
pub const MAX_PILE_COMMANDS: usize = 8;

/// A pile-level command sent and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PileCommand {
    pub id: CommandId,
    pub kind: PileCommandKind,
    pub deadline: Timestamp,
}

/// Which pile-level command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PileCommandKind {
    SyncTime,
    Reboot,
}

/// One connected pile.
#[derive(Debug)]
pub struct PileLink {
    pub sender: PileSender,
    /// The platform's next own sequence on this connection.
    next_seq: u16,
    /// Connectors the login declared (capped at [`MAX_CONNECTORS_PER_PILE`]).
    pub connectors: u8,
    pub commands: Vec<PileCommand>,
}

impl PileLink {
    /// A pile that just authenticated on `sender`'s connection.
    pub fn new(sender: PileSender) -> PileLink {
        PileLink {
            sender,
            next_seq: 0,
            connectors: 0,
            commands: Vec::new(),
        }
    }

    /// The sequence for a frame the platform starts.
    pub fn own_sequence(&mut self) -> u16 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// Sends `message` with `sequence`, or the pile's own next sequence.
    pub fn send(&mut self, sequence: Option<u16>, message: Message) -> Result<(), SendError> {
        let sequence = sequence.unwrap_or_else(|| self.own_sequence());
        self.sender.send(Frame::new(sequence, message))
    }
}

/// True for the platform's replies to a pile's request; they carry the request's sequence.
pub fn is_reply(m: &Message) -> bool {
    matches!(
        m,
        Message::LoginReply(_)
            | Message::HeartbeatReply(_)
            | Message::BillingModelVerifyReply(_)
            | Message::BillingModelReply(_)
            | Message::PileStartReply(_)
            | Message::TransactionRecordAck(_)
            | Message::DischargeRecordAck(_)
            | Message::ParallelStartReply(_)
    )
}

/// The pile a frame names, for every frame a pile sends that names one.
pub fn pile_of(m: &Message) -> Option<PileCode> {
    if let Some((pile, _)) = crate::connector::frame_target(m) {
        return Some(pile);
    }
    Some(match m {
        Message::Login(f) => f.pile_code,
        Message::BillingModelVerify(f) => f.pile_code,
        Message::BillingModelRequest(f) => f.pile_code,
        Message::TimeSyncReply(f) => f.pile_code,
        Message::RebootReply(f) => f.pile_code,
        Message::BillingModelSetReply(f) => f.pile_code,
        Message::WorkingParamsReply(f) => f.pile_code,
        Message::ChargingHandshake(f) => f.pile_code,
        Message::ParameterConfig(f) => f.pile_code,
        Message::BmsDemand(f) => f.pile_code,
        Message::BmsInfo(f) => f.pile_code,
        Message::BalanceUpdateReply(f) => f.pile_code,
        Message::UpdateReply(f) => f.pile_code,
        _ => return None,
    })
}

/// The billing model number a tariff is announced under: its version, folded into the four
/// BCD digits of the field (0 is "none" to a pile, so it is skipped).
pub fn model_no(tariff: &Tariff) -> BillingModelNo {
    let n = u64::from(tariff.version().0 % 9_999 + 1);
    bcd::encode_value::<2>(n)
        .and_then(|b| Bcd::from_bytes(b).ok())
        .unwrap_or(Bcd::ZERO)
}

/// The answer to a login: accepted (the port already checked the pile is registered).
pub fn login_reply(pile: PileCode) -> Message {
    Message::LoginReply(LoginReply {
        pile_code: pile,
        result: LoginResult::Accepted,
    })
}

/// The answer to 0x05: consistent only when the pile holds the model of the cached tariff.
/// Without a cached tariff the pile's own model is left alone (consistent): the site has
/// nothing better to give it.
pub fn verify_reply(pile: PileCode, theirs: BillingModelNo, tariff: Option<&Tariff>) -> Message {
    let result = match tariff {
        Some(t) if model_no(t) != theirs => VerifyResult::Inconsistent,
        _ => VerifyResult::Consistent,
    };
    Message::BillingModelVerifyReply(BillingModelVerifyReply {
        pile_code: pile,
        model_no: theirs,
        result,
    })
}

/// Why the site cannot answer a billing model request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelUnavailable {
    #[error(
        "no tariff is cached for this site yet; assign one in the cloud and let the edge fetch it"
    )]
    NoTariff,
    #[error("the site's tariff cannot be sent to a YKC pile: {0}")]
    NotRepresentable(String),
}

/// The answer to 0x09: the cached tariff as a YKC billing model.
pub fn model_reply(pile: PileCode, tariff: Option<&Tariff>) -> Result<Message, ModelUnavailable> {
    let t = tariff.ok_or(ModelUnavailable::NoTariff)?;
    let model = t
        .to_billing_model(model_no(t))
        .map_err(|e| ModelUnavailable::NotRepresentable(e.to_string()))?;
    Ok(BillingModelReply {
        pile_code: pile,
        model,
    }
    .into())
}

/// The wall-clock time to set on a pile whose clock shows `zone`.
pub fn pile_clock(now: Timestamp, zone: &TimeZone) -> Option<Cp56Time> {
    Cp56Time::from_civil(now.to_zoned_datetime(zone.clone()).datetime())
}

#[cfg(test)]
mod tests {
    use voltline_protocol::message::register::VerifyResult;

    use super::*;

    fn pile() -> PileCode {
        "32010600019236".parse().unwrap()
    }

    #[test]
    fn replies_are_recognised_and_requests_are_not() {
        assert!(is_reply(&login_reply(pile())));
        assert!(!is_reply(&Message::Reboot(
            voltline_protocol::message::maintenance::Reboot {
                pile_code: pile(),
                when: voltline_protocol::message::maintenance::ExecuteWhen::Immediately,
            }
        )));
    }

    #[test]
    fn own_sequences_count_up_and_wrap() {
        let (tx, _rx) = tokio::sync::mpsc::channel(4);
        let mut link = PileLink::new(PileSender::new(pile(), 1, crate::ports::Port::Tcp, tx));
        assert_eq!(link.own_sequence(), 0);
        assert_eq!(link.own_sequence(), 1);
        link.next_seq = u16::MAX;
        assert_eq!(link.own_sequence(), u16::MAX);
        assert_eq!(link.own_sequence(), 0);
    }

    #[test]
    fn verify_without_a_tariff_leaves_the_pile_alone() {
        let theirs = Bcd::from_bytes(bcd::encode_value::<2>(100).unwrap()).unwrap();
        let Message::BillingModelVerifyReply(r) = verify_reply(pile(), theirs, None) else {
            panic!()
        };
        assert_eq!(r.result, VerifyResult::Consistent);
        assert_eq!(
            model_reply(pile(), None).unwrap_err(),
            ModelUnavailable::NoTariff
        );
    }
}
