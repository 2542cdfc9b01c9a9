//! The bill CSV and the `voltline-cloud bills check|rerun` commands.

use crate::*;

#[test]
fn the_bill_csv_has_a_header_site_adjustment_and_total_rows() {
    use voltline_cloud::bills::store::StoredBill;
    use voltline_cloud::sharing::bill::{cut_open_bill, SettledSession};
    use voltline_cloud::sharing::split::Split;
    let z = berlin();
    let d = date(2026, 10, 25);
    let mk = |id: &str, ended: Timestamp, settled: Timestamp| SettledSession {
        id: id.into(),
        operator: op("op-1"),
        site: site("s.1"),
        ended_at: ended,
        settled_at: settled,
        energy: Energy::from_wh(12_345),
        export_energy: Energy::ZERO,
        split: Split {
            gross: cents(1_000),
            platform_fee: cents(100),
            operator_payable: cents(900),
            parts: Default::default(),
            v2g_driver_credit: Money::ZERO,
            v2g_operator_share: Money::ZERO,
        },
    };
    let sessions = [
        mk("a", at(&z, d.at(9, 0, 0, 0)), at(&z, d.at(9, 1, 0, 0))),
        mk(
            "b",
            at(&z, date(2026, 10, 20).at(9, 0, 0, 0)),
            at(&z, d.at(9, 1, 0, 0)),
        ),
    ];
    let bill = cut_open_bill(&op("op-1"), &z, d, &sessions).unwrap();
    let stored = StoredBill {
        id: StoredBill::id_for(&op("op-1"), d),
        issued_at: Timestamp::UNIX_EPOCH,
        lease_token: 1,
        digest: voltline_cloud::bills::store::digest(&bill),
        bill,
    };
    let csv = voltline_cloud::bills::csv::to_csv(&stored);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], voltline_cloud::bills::csv::HEADER);
    assert_eq!(
        lines[1],
        "bill-op-1-2026-10-25,op-1,2026-10-25,Europe/Berlin,site,s.1,2026-10-25,1,12.345,0,10.00,1.00,9.00,0.00,0.00,9.00"
    );
    assert!(
        lines[2].contains(",adjustment,s.1,2026-10-20,1,"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(",total,,,2,24.69,0,20.00,2.00,18.00,"),
        "{}",
        lines[3]
    );
    let _ = ToSpan::hours(1);
}

/// `voltline-cloud bills check` answers Ok for a bill that matches the ledger and an error
/// (a non-zero exit from `main`) for one that does not; `bills rerun` reproduces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_command_fails_on_a_difference_and_passes_a_clean_bill() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_dir(dir.path()).await.unwrap();
    let z = berlin();
    for (o, with_ledger) in [("op-ok", true), ("op-bad", false)] {
        berlin_operator(&store, o, date(2026, 10, 1)).await;
        let d = date(2026, 10, 2);
        let s = seeded(
            &format!("{o}-1"),
            o,
            &format!("{o}-b-1"),
            at(&z, d.at(9, 0, 0, 0)),
            at(&z, d.at(9, 5, 0, 0)),
            1_000,
        );
        seed_sessions(&store, &[s], with_ledger).await.unwrap();
        BillJob::new(store.clone(), config(), "instance-a")
            .issue_day(&op(o), d, Timestamp::now())
            .await
            .unwrap();
    }
    store.close().await;
    let cfg = dir.path().join("cloud.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = {:?}\n", dir.path().to_str().unwrap()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut v = vec!["voltline-cloud".to_owned(), "--config".to_owned()];
        v.push(cfg.to_str().unwrap().to_owned());
        v.extend(args.iter().map(|a| a.to_string()));
        voltline_cloud::run_cli(v)
    };
    run(&[
        "bills",
        "check",
        "--operator",
        "op-ok",
        "--day",
        "2026-10-02",
    ])
    .await
    .expect("a clean bill passes");
    let bad = run(&[
        "bills",
        "check",
        "--operator",
        "op-bad",
        "--day",
        "2026-10-02",
    ])
    .await;
    assert!(
        bad.is_err(),
        "a bill that differs from the ledger fails the command"
    );
    run(&[
        "bills",
        "rerun",
        "--operator",
        "op-bad",
        "--day",
        "2026-10-02",
    ])
    .await
    .expect("the issued bill reproduces from its settlement rows");
}
