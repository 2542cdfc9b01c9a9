//! Registry, tariff and token cases.

use super::*;

pub(crate) async fn registry_round_trips(ctx: &Ctx) {
    let s = &ctx.store;
    let o = s
        .create_operator(&op("op-1"), "Operator One")
        .await
        .unwrap();
    assert_eq!(s.get_operator(&op("op-1")).await.unwrap(), o);
    assert!(matches!(
        s.create_operator(&op("op-1"), "again").await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        s.get_operator(&op("nobody")).await,
        Err(StoreError::NotFound { .. })
    ));

    let new_site = NewSite {
        id: site("s-1"),
        operator: op("op-1"),
        name: "Depot".into(),
        time_zone: "Asia/Shanghai".into(),
    };
    let (created, edge_secret) = s.create_site(&new_site).await.unwrap();
    assert_eq!(s.get_site(&site("s-1")).await.unwrap(), created);
    assert_eq!(created.config_version, 1);
    assert!(s
        .verify_edge_credential(&site("s-1"), edge_secret.expose())
        .await
        .unwrap());
    assert!(!s
        .verify_edge_credential(&site("s-1"), "guess")
        .await
        .unwrap());
    assert!(!format!("{edge_secret:?}").contains(edge_secret.expose()));
    let bad_tz = NewSite {
        id: site("s-x"),
        time_zone: "Mars/Olympus".into(),
        ..new_site.clone()
    };
    assert!(matches!(
        s.create_site(&bad_tz).await,
        Err(StoreError::Invalid { .. })
    ));
    let orphan = NewSite {
        id: site("s-y"),
        operator: op("nobody"),
        ..new_site.clone()
    };
    assert!(matches!(
        s.create_site(&orphan).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(s.list_sites(&op("op-1")).await.unwrap(), vec![created]);
    assert_eq!(s.bump_config_version(&site("s-1")).await.unwrap(), 2);

    let (charger, pile_secret) = s
        .create_charger(&NewCharger {
            pile: pile(32010600019236),
            site: site("s-1"),
            connectors: 2,
        })
        .await
        .unwrap();
    assert_eq!(s.get_charger(&pile(32010600019236)).await.unwrap(), charger);
    assert_eq!(s.list_chargers(&site("s-1")).await.unwrap(), vec![charger]);
    assert!(s
        .verify_charger_credential(&pile(32010600019236), pile_secret.expose())
        .await
        .unwrap());
    let dup = NewCharger {
        pile: pile(32010600019236),
        site: site("s-1"),
        connectors: 1,
    };
    assert!(matches!(
        s.create_charger(&dup).await,
        Err(StoreError::Duplicate { .. })
    ));
    let zero = NewCharger {
        pile: pile(1),
        site: site("s-1"),
        connectors: 0,
    };
    assert!(matches!(
        s.create_charger(&zero).await,
        Err(StoreError::Invalid { .. })
    ));

    let a = s
        .create_account(&acct("d-1"), Some(&op("op-1")), "Driver")
        .await
        .unwrap();
    assert_eq!(s.get_account(&acct("d-1")).await.unwrap(), a);
    let b = s
        .create_account(&acct("d-2"), None, "Roamer")
        .await
        .unwrap();
    assert_eq!(
        s.get_account(&acct("d-2")).await.unwrap().operator,
        b.operator
    );
    assert_eq!(s.list_accounts(&op("op-1")).await.unwrap(), vec![a]);

    // Updates and deletes.
    let moved = s
        .update_site(&site("s-1"), "Depot North", "Europe/Berlin")
        .await
        .unwrap();
    assert_eq!(
        (
            moved.name.as_str(),
            moved.time_zone.as_str(),
            moved.config_version
        ),
        ("Depot North", "Europe/Berlin", 4)
    );
    assert!(matches!(
        s.update_site(&site("s-1"), "x", "Nowhere/Land").await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.update_site(&site("ghost"), "x", "UTC").await,
        Err(StoreError::NotFound { .. })
    ));
    // Registering the charger moved the version (3) before the update (4); removing it
    // moves it again.
    assert_eq!(s.delete_charger(&pile(32010600019236)).await.unwrap(), 5);
    assert!(matches!(
        s.get_charger(&pile(32010600019236)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_charger(&pile(32010600019236)).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) fn tariff(version: u32, price: rust_decimal::Decimal) -> Tariff {
    Tariff::new(
        TariffVersion(version),
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        vec![TariffPeriod::new(
            "flat",
            Money::from_yuan(price),
            Money::from_yuan(dec!(0.40)),
        )],
        vec![ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0)],
    )
    .unwrap()
}

pub(crate) async fn tariffs_are_versioned_and_assigned(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    s.create_operator(&op("op-2"), "Other").await.unwrap();
    let v1 = s
        .create_tariff_version("std", &op("op-1"), &tariff(1, dec!(0.80)), t0())
        .await
        .unwrap();
    assert_eq!(s.get_tariff("std", TariffVersion(1)).await.unwrap(), v1);
    // The version stored last again (other content or not) exists: it is never edited.
    assert!(matches!(
        s.create_tariff_version("std", &op("op-1"), &tariff(1, dec!(0.90)), t0())
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        s.create_tariff_version("std", &op("op-2"), &tariff(7, dec!(0.90)), t0())
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let v2 = s
        .create_tariff_version("std", &op("op-1"), &tariff(2, dec!(0.95)), t0())
        .await
        .unwrap();
    // Below the version stored last: invalid (versions only go up).
    assert!(matches!(
        s.create_tariff_version("std", &op("op-1"), &tariff(1, dec!(0.80)), t0())
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(
        s.get_tariff("std", TariffVersion(2)).await.unwrap().tariff,
        v2.tariff
    );
    assert_eq!(
        s.get_tariff("std", TariffVersion(1)).await.unwrap().tariff,
        v1.tariff,
        "versions are immutable"
    );

    let assign = |version: u32, from: Timestamp| TariffAssignment {
        site: site("s-1"),
        kind: OrderKind::Charge,
        tariff_id: "std".into(),
        version: TariffVersion(version),
        effective_from: from,
    };
    let before = s.get_site(&site("s-1")).await.unwrap().config_version;
    assert_eq!(s.assign_tariff(&assign(1, t0())).await.unwrap(), before + 1);
    s.assign_tariff(&assign(2, t0() + 1.hour())).await.unwrap();
    let s1 = site("s-1");
    let at = |t| s.tariff_for_site(&s1, OrderKind::Charge, t);
    assert_eq!(at(t0() - 1.second()).await.unwrap(), None);
    assert_eq!(at(t0()).await.unwrap().unwrap().version(), TariffVersion(1));
    assert_eq!(
        at(t0() + 2.hours()).await.unwrap().unwrap().version(),
        TariffVersion(2)
    );
    assert_eq!(
        s.tariff_for_site(&site("s-1"), OrderKind::Discharge, t0())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        s.assign_tariff(&assign(9, t0())).await,
        Err(StoreError::NotFound { .. })
    ));
    s.create_tariff_version("other", &op("op-2"), &tariff(1, dec!(1)), t0())
        .await
        .unwrap();
    let foreign = TariffAssignment {
        tariff_id: "other".into(),
        ..assign(1, t0())
    };
    assert!(matches!(
        s.assign_tariff(&foreign).await,
        Err(StoreError::Invalid { .. })
    ));
}

pub(crate) async fn tokens_verify_revoke_and_expire(ctx: &Ctx) {
    let s = &ctx.store;
    let now = Timestamp::now();
    let admin = s
        .create_token(&NewToken {
            actor: Actor::Admin,
            label: "ops".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    let edge = s
        .create_token(&NewToken {
            actor: Actor::Edge(site("s-1")),
            label: "edge".into(),
            expires_at: Some(now + 1.hour()),
        })
        .await
        .unwrap();
    assert_eq!(
        s.verify_token(admin.secret.expose(), now).await.unwrap(),
        Some(Actor::Admin)
    );
    assert_eq!(
        s.verify_token(edge.secret.expose(), now).await.unwrap(),
        Some(Actor::Edge(site("s-1")))
    );
    assert_eq!(
        s.verify_token(edge.secret.expose(), now + 2.hours())
            .await
            .unwrap(),
        None,
        "expired"
    );
    let mut forged = admin.secret.expose().to_owned();
    forged.pop();
    forged.push('x');
    assert_eq!(s.verify_token(&forged, now).await.unwrap(), None);
    assert_eq!(s.verify_token("not a token", now).await.unwrap(), None);
    assert_eq!(
        s.verify_token("vlt_unknown.secret", now).await.unwrap(),
        None
    );
    let info = s.get_token(&admin.id).await.unwrap();
    assert_eq!((info.actor, info.revoked_at), (Actor::Admin, None));
    s.revoke_token(&admin.id).await.unwrap();
    s.revoke_token(&admin.id).await.unwrap();
    assert_eq!(
        s.verify_token(admin.secret.expose(), now).await.unwrap(),
        None,
        "revoked"
    );
    assert!(s.get_token(&admin.id).await.unwrap().revoked_at.is_some());
    assert!(matches!(
        s.revoke_token("nope").await,
        Err(StoreError::NotFound { .. })
    ));
}
