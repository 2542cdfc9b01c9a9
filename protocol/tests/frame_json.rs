//! The JSON form of a frame (what `voltline frame decode` prints) round-trips.

mod common;

use voltline_protocol::Frame;

#[test]
fn frame_json_has_type_name_sequence_and_body() {
    let bytes = common::sample("68 0D 3600 00 04 55031412782305 01 00 0000");
    let f = voltline_protocol::frame::decode(&bytes).unwrap();
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["type"], "0x04");
    assert_eq!(json["name"], "heartbeat_reply");
    assert_eq!(json["sequence"], 0x36);
    assert_eq!(json["encryption"], "plain");
    assert_eq!(json["body"]["pile_code"], "55031412782305");
    let back: Frame = serde_json::from_value(json).unwrap();
    assert_eq!(back, f);
    assert_eq!(back.to_bytes().unwrap().as_ref(), &bytes[..]);
}

#[test]
fn type_must_agree_with_name() {
    let json = r#"{"type":"0x05","name":"heartbeat_reply","sequence":1,
                   "body":{"pile_code":"55031412782305","connector":1,"reply":0}}"#;
    let err = serde_json::from_str::<Frame>(json).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    let without_type = r#"{"name":"heartbeat_reply","sequence":1,
                   "body":{"pile_code":"55031412782305","connector":1,"reply":0}}"#;
    assert!(serde_json::from_str::<Frame>(without_type).is_ok());
}

#[test]
fn every_quantity_in_frame_json_names_its_unit() {
    // A charging connector's real-time data: each physical field carries its unit.
    let bytes = common::sample(
        "68 40 0700 00 13 55031412782305012003161714470001 55031412782305 01 03 00 01 \
         DA0E D304 4B 0000000000000000 38 50 2A00 1F00 40E20100 40E20100 ED720200 0000 0000",
    );
    let f = voltline_protocol::frame::decode(&bytes).unwrap();
    let json = serde_json::to_value(&f).unwrap();
    let body = &json["body"];
    assert_eq!(body["output_voltage_v"], "380.2");
    assert_eq!(body["output_current_a"], "123.5");
    assert_eq!(body["gun_temperature_c"], 25);
    assert_eq!(body["soc_pct"], 56);
    assert_eq!(body["charging_time_min"], 42);
    assert_eq!(body["energy_kwh"], "12.3456");
    assert_eq!(body["amount_yuan"], "16.0493");
}
