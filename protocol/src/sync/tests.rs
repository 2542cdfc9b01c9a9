use super::*;

fn site() -> SiteId {
    SiteId::new("site-1").unwrap()
}

fn alarm(seq: u64) -> Record {
    Record {
        seq,
        at: Timestamp::from_second(1_700_000_000).unwrap(),
        body: RecordBody::Alarm(Alarm {
            severity: Severity::Warning,
            code: "store_near_bound".into(),
            message: "outbox at 90 % of its bound".into(),
            pile: None,
        }),
    }
}

#[test]
fn batch_json_is_versioned_and_round_trips() {
    let b = RecordBatch::new(site(), vec![alarm(1), alarm(2)]);
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["v"], 1);
    assert_eq!(json["records"][0]["type"], "alarm");
    let back: RecordBatch = serde_json::from_value(json).unwrap();
    assert_eq!(back, b);
}

#[test]
fn other_versions_are_refused_with_a_clear_error() {
    let json = r#"{"v":2,"site":"site-1","up_to_seq":5}"#;
    let err = serde_json::from_str::<Ack>(json).unwrap_err().to_string();
    assert!(err.contains("version 2 is not supported"), "{err}");
}

#[test]
fn batch_validation() {
    let ok = RecordBatch::new(site(), vec![alarm(3), alarm(7)]);
    assert_eq!(ok.validate(&site(), 10), Ok(()));
    assert_eq!(ok.last_seq(), Some(7));
    let empty = RecordBatch::new(site(), vec![]);
    assert_eq!(empty.validate(&site(), 10), Err(SyncError::Empty));
    let dup = RecordBatch::new(site(), vec![alarm(3), alarm(3)]);
    assert!(matches!(
        dup.validate(&site(), 10),
        Err(SyncError::BadSequence { index: 1, .. })
    ));
    let zero = RecordBatch::new(site(), vec![alarm(0)]);
    assert!(matches!(
        zero.validate(&site(), 10),
        Err(SyncError::BadSequence { .. })
    ));
    assert!(matches!(
        ok.validate(&site(), 1),
        Err(SyncError::TooLarge { .. })
    ));
    let other = SiteId::new("site-2").unwrap();
    assert!(matches!(
        ok.validate(&other, 10),
        Err(SyncError::WrongSite { .. })
    ));
}

#[test]
fn command_envelope_round_trips_and_expires() {
    let t0 = Timestamp::from_second(1_700_000_000).unwrap();
    let env = CommandEnvelope {
        v: V1,
        id: CommandId::new("cmd-1").unwrap(),
        site: site(),
        issued_at: t0,
        expires_at: Timestamp::from_second(1_700_000_060).unwrap(),
        command: Command::StopCharging {
            pile: "32010600019236".parse().unwrap(),
            connector: ConnectorNo::new(1).unwrap(),
            order: OrderId::new("ord-1").unwrap(),
        },
    };
    let json = serde_json::to_string(&env).unwrap();
    assert!(json.contains(r#""type":"stop_charging""#), "{json}");
    let back: CommandEnvelope = serde_json::from_str(&json).unwrap();
    assert_eq!(back, env);
    assert!(!env.is_expired(t0));
    assert!(env.is_expired(env.expires_at));
}

#[test]
fn command_results_flatten_the_outcome() {
    let r = CommandResult {
        command_id: CommandId::new("c").unwrap(),
        outcome: CommandOutcome::Rejected {
            reason: "connector busy".into(),
        },
    };
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["outcome"], "rejected");
    assert_eq!(json["reason"], "connector busy");
    assert_eq!(serde_json::from_value::<CommandResult>(json).unwrap(), r);
}

#[test]
fn thinned_sequences_travel_as_tiny_records() {
    let r = Record {
        seq: 9,
        at: Timestamp::from_second(1_700_000_000).unwrap(),
        body: RecordBody::Thinned,
    };
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"seq":9,"at":"2023-11-14T22:13:20Z","type":"thinned"}"#
    );
    assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), r);
    assert!(!r.body.is_billing_critical());
}

fn site_doc() -> SiteConfigDoc {
    SiteConfigDoc {
        v: V1,
        site: site(),
        config_version: 3,
        time_zone: "Asia/Shanghai".into(),
        charge_tariff: None,
        discharge_tariff: None,
        chargers: vec![ChargerGrant {
            pile: "32010600019236".parse().unwrap(),
            connectors: 2,
            credential_sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                .into(),
        }],
        cards: vec![CardGrant {
            card: "00000000D14B0A54".parse().unwrap(),
            account: AccountId::new("driver-1").unwrap(),
            offline_limit: Money::from_cents(3_000),
        }],
        limits: SiteLimitsDoc {
            offline_session_limit: Money::from_cents(10_000),
            default_session_amount: Money::from_cents(5_000),
            command_expiry_s: 60,
            max_site_power: Some(Power::from_kw(250)),
        },
    }
}

#[test]
fn site_config_round_trips_and_validates() {
    let doc = site_doc();
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["v"], 1);
    assert_eq!(json["cards"][0]["card"], "00000000D14B0A54");
    let back: SiteConfigDoc = serde_json::from_value(json).unwrap();
    assert_eq!(back, doc);
    assert_eq!(doc.validate(&site()), Ok(()));
    assert!(doc.card(&"00000000D14B0A54".parse().unwrap()).is_some());
    let other = SiteId::new("site-2").unwrap();
    assert!(doc.validate(&other).unwrap_err().contains("site-2"));
}

#[test]
fn site_config_with_duplicates_or_bad_hashes_is_refused() {
    let mut twice = site_doc();
    twice.cards.push(twice.cards[0].clone());
    assert!(twice.validate(&site()).unwrap_err().contains("twice"));
    let mut upper = site_doc();
    upper.chargers[0].credential_sha256 = upper.chargers[0].credential_sha256.to_uppercase();
    assert!(upper.validate(&site()).unwrap_err().contains("SHA-256"));
    let mut short = site_doc();
    short.chargers[0].credential_sha256 = "abc".into();
    assert!(short.validate(&site()).is_err());
}

#[test]
fn billing_critical_records_are_marked() {
    assert!(!alarm(1).body.is_billing_critical());
    let r = RecordBody::CommandResult(CommandResult {
        command_id: CommandId::new("c").unwrap(),
        outcome: CommandOutcome::Accepted,
    });
    assert!(r.is_billing_critical());
}
