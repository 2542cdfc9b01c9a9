//! The reference's sample frames for chapter 6 (login, heartbeat, billing model) decode to
//! their documented values and re-encode byte for byte. Sample checksums are recomputed
//! (they are placeholders in the reference).

mod common;

use common::{round_trip, sample};
use rust_decimal_macros::dec;
use voltline_protocol::message::register::*;
use voltline_protocol::{Message, Money};

#[test]
fn login_sample_6_1() {
    let bytes = sample(
        "68 22 0000 00 01 55031412782305 00 02 0F 56342E312E353000 01 01010101010101010101 04 675A",
    );
    let f = round_trip(&bytes);
    assert_eq!(f.sequence, 0);
    let Message::Login(m) = f.message else {
        panic!("not a login: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "55031412782305");
    assert_eq!(m.pile_kind, PileKind::Dc);
    assert_eq!(m.connector_count, 2);
    assert_eq!(m.protocol_version_x10, 0x0F);
    assert_eq!(m.program_version.as_text(), Some("V4.1.50"));
    assert_eq!(m.network, NetworkKind::Lan);
    assert_eq!(m.sim.to_string(), "01010101010101010101");
    assert_eq!(m.carrier, Carrier::Other);
}

#[test]
fn login_reply_sample_6_2() {
    let f = round_trip(&sample("68 0C 0000 00 02 55 03 14 12 78 23 05 00 DA 4C"));
    let Message::LoginReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.result, LoginResult::Accepted);
}

#[test]
fn heartbeat_sample_6_3() {
    let f = round_trip(&sample("68 0D 0001 00 03 32010200000001 01 00 6890"));
    assert_eq!(f.sequence, 0x0100, "sequence bytes 00 01 are little-endian");
    let Message::Heartbeat(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.health, GunHealth::Normal);
}

#[test]
fn heartbeat_reply_sample_6_4() {
    let f = round_trip(&sample("68 0D 3600 00 04 55031412782305 01 00 65B2"));
    assert_eq!(f.sequence, 0x0036);
    let Message::HeartbeatReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.reply, 0);
}

#[test]
fn billing_model_verify_sample_6_5() {
    let f = round_trip(&sample("68 0D 0002 00 05 32010200000001 0001 9C00"));
    let Message::BillingModelVerify(m) = f.message else {
        panic!()
    };
    assert_eq!(m.model_no.to_string(), "0001");
}

#[test]
fn billing_model_verify_reply_sample_6_6() {
    let f = round_trip(&sample(
        "68 0E CE 04 00 06 55 03 14 12 78 23 05 00 00 00 8E 2F",
    ));
    assert_eq!(f.sequence, 0x04CE);
    let Message::BillingModelVerifyReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.result, VerifyResult::Consistent);
}

#[test]
fn billing_model_request_sample_6_7() {
    let f = round_trip(&sample("68 0B 0200 00 09 55031412782305 DD25"));
    let Message::BillingModelRequest(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "55031412782305");
}

#[test]
fn billing_model_reply_sample_6_8() {
    let f = round_trip(&sample(
        "68 5E 02 00 00 0A 55 03 14 12 78 23 05 01 00 \
         40 0D 03 00 9C 40 00 00 E0 93 04 00 9C 40 00 00 80 1A 06 00 9C 40 00 00 20 A1 07 00 9C 40 00 00 \
         00 \
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
         5E 60",
    ));
    let Message::BillingModelReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.model.model_no.to_string(), "0100");
    // 40 0D 03 00 = 0x00030D40 = 200000 → 2.00000 yuan; 9C 40 00 00 = 16540 → 0.16540 yuan.
    assert_eq!(
        m.model.rate(RateKind::Sharp).energy_price,
        Money::from_yuan(dec!(2.00000))
    );
    assert_eq!(
        m.model.rate(RateKind::Sharp).service_fee,
        Money::from_yuan(dec!(0.16540))
    );
    assert_eq!(
        m.model.rate(RateKind::Peak).energy_price,
        Money::from_yuan(dec!(3.00000))
    );
    assert_eq!(
        m.model.rate(RateKind::Flat).energy_price,
        Money::from_yuan(dec!(4.00000))
    );
    assert_eq!(
        m.model.rate(RateKind::Valley).energy_price,
        Money::from_yuan(dec!(5.00000))
    );
    assert_eq!(m.model.loss_ratio_pct, 0);
    assert!(m.model.slots.iter().all(|s| *s == RateKind::Sharp));
}
