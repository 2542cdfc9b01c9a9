//! Cards, the charger list an edge caches, the site power limit, and the read-only reports.

use super::*;
use voltline_cloud::store::NewCard;
use voltline_protocol::domain::Power;
use voltline_protocol::message::common::PhysicalCardNo;

fn card(hex: &str) -> PhysicalCardNo {
    hex.parse().unwrap()
}

fn new_card(hex: &str, account: &str, cents: i64) -> NewCard {
    NewCard {
        card: card(hex),
        account: acct(account),
        offline_limit: Money::from_cents(cents),
    }
}

pub(crate) async fn cards_belong_to_one_account_and_move_the_operator_sites(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    s.create_site(&NewSite {
        id: site("s-2"),
        operator: op("op-1"),
        name: "Second".into(),
        time_zone: "Europe/Berlin".into(),
    })
    .await
    .unwrap();
    s.create_operator(&op("op-2"), "Other").await.unwrap();
    seed_other(s).await;
    let v = |id: &'static str| async move { s.get_site(&site(id)).await.unwrap().config_version };
    let (before1, before2, before_other) = (v("s-1").await, v("s-2").await, v("o-1").await);

    let (created, bumps) = s
        .create_card(&new_card("00000000D14B0A54", "d-1", 3_000))
        .await
        .unwrap();
    assert_eq!(created.account, acct("d-1"));
    assert_eq!(created.offline_limit, Money::from_cents(3_000));
    let mut moved: Vec<(String, u64)> = bumps
        .iter()
        .map(|b| (b.site.to_string(), b.config_version))
        .collect();
    moved.sort();
    assert_eq!(
        moved,
        vec![("s-1".into(), before1 + 1), ("s-2".into(), before2 + 1)]
    );
    assert_eq!(
        v("o-1").await,
        before_other,
        "another operator's site moved"
    );
    assert_eq!(
        s.get_card(&card("00000000D14B0A54")).await.unwrap(),
        created
    );
    assert_eq!(
        s.list_cards(&acct("d-1")).await.unwrap(),
        vec![created.clone()]
    );

    // One card, one account; no card 0; no negative limit; no unknown account.
    assert!(matches!(
        s.create_card(&new_card("00000000D14B0A54", "d-o", 1)).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        s.create_card(&new_card("0000000000000000", "d-1", 1)).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.create_card(&new_card("0000000000000001", "d-1", -1))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.create_card(&new_card("0000000000000002", "ghost", 1))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // The site lists cards of the accounts its operator scopes only.
    s.create_card(&new_card("00000000000000FF", "d-o", 500))
        .await
        .unwrap();
    let at_s1: Vec<String> = s
        .site_cards(&site("s-1"), 100)
        .await
        .unwrap()
        .iter()
        .map(|c| c.card.to_string())
        .collect();
    assert_eq!(at_s1, ["00000000D14B0A54"]);
    assert_eq!(s.site_cards(&site("o-1"), 100).await.unwrap().len(), 1);
    assert_eq!(s.site_cards(&site("s-1"), 0).await.unwrap().len(), 0);

    // Removal: only by the holding account, once.
    assert!(matches!(
        s.delete_card(&acct("d-o"), &card("00000000D14B0A54")).await,
        Err(StoreError::NotFound { .. })
    ));
    let bumps = s
        .delete_card(&acct("d-1"), &card("00000000D14B0A54"))
        .await
        .unwrap();
    assert_eq!(bumps.len(), 2);
    assert!(s.list_cards(&acct("d-1")).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_card(&acct("d-1"), &card("00000000D14B0A54")).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Operator `op-2` with site `o-1` and its driver `d-o`.
async fn seed_other(s: &voltline_cloud::Store) {
    s.create_site(&NewSite {
        id: site("o-1"),
        operator: op("op-2"),
        name: "Other site".into(),
        time_zone: "UTC".into(),
    })
    .await
    .unwrap();
    s.create_account(&acct("d-o"), Some(&op("op-2")), "Other driver")
        .await
        .unwrap();
}

pub(crate) async fn charger_grants_carry_the_credential_hash_and_power_limits_move_the_version(
    ctx: &Ctx,
) {
    use sha2::{Digest, Sha256};
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    let before = s.get_site(&site("s-1")).await.unwrap().config_version;
    let (_, secret) = s
        .create_charger(&NewCharger {
            pile: pile(101),
            site: site("s-1"),
            connectors: 1,
        })
        .await
        .unwrap();
    assert_eq!(
        s.get_site(&site("s-1")).await.unwrap().config_version,
        before + 1
    );
    let grants = s.charger_grants(&site("s-1"), 100).await.unwrap();
    assert_eq!(grants.len(), 2);
    let g = grants.iter().find(|g| g.pile == pile(101)).unwrap();
    assert_eq!(g.connectors, 1);
    let want: String = Sha256::digest(secret.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(g.credential_sha256, want);
    assert_eq!(s.charger_grants(&site("s-1"), 1).await.unwrap().len(), 1);

    assert_eq!(s.site_power_limit(&site("s-1")).await.unwrap(), None);
    let v = s
        .set_site_power_limit(&site("s-1"), Some(Power::from_kw(250)))
        .await
        .unwrap();
    assert_eq!(v, before + 2);
    assert_eq!(
        s.site_power_limit(&site("s-1")).await.unwrap(),
        Some(Power::from_kw(250))
    );
    assert!(matches!(
        s.set_site_power_limit(&site("s-1"), Some(Power::ZERO))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    s.set_site_power_limit(&site("s-1"), None).await.unwrap();
    assert_eq!(s.site_power_limit(&site("s-1")).await.unwrap(), None);
    assert!(matches!(
        s.site_power_limit(&site("ghost")).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn reports_summarise_ingest_and_transactions(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    let empty = s.ingest_summary(&site("s-1")).await.unwrap();
    assert_eq!(empty.records(), 0);
    let tx = transaction(2, 100, serial(100, 7), None);
    let records = vec![reading(1, 100), tx, reading(4, 100)];
    s.ingest(&site("s-1"), &RecordBatch::new(site("s-1"), records))
        .await
        .unwrap();
    let sum = s.ingest_summary(&site("s-1")).await.unwrap();
    assert_eq!(
        (sum.acked_seq, sum.committed_above_ack, sum.records()),
        (2, 1, 3)
    );
    assert_eq!((sum.transactions, sum.meter_readings), (1, 2));
    let txs = s.site_transactions(&site("s-1")).await.unwrap();
    assert_eq!(txs.len(), 1);
    let t = &txs[0];
    assert_eq!((t.pile, t.serial, t.seq), (pile(100), serial(100, 7), 2));
    assert_eq!(t.kind, OrderKind::Charge);
    assert_eq!(t.charger_total, Some(Money::from_yuan(dec!(10))));
    assert_eq!(t.edge_cost, Some(Money::from_yuan(dec!(10))));
    assert!(!t.settled && t.settlement.is_none());
    assert!(s
        .site_transactions(&site("other"))
        .await
        .unwrap()
        .is_empty());
}
