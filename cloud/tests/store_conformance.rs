//! The store conformance suite: every case runs on SQLite and on PostgreSQL (see
//! `common/mod.rs` for how each backend is set up and when the PostgreSQL half is skipped).
//! The cases live in `store_conformance/`, one file per area; migrations and restart
//! durability are here.

#[path = "store_conformance/cards.rs"]
mod cards;
mod common;
#[path = "store_conformance/ingest.rs"]
mod ingest;
#[path = "store_conformance/orders.rs"]
mod orders;
#[path = "store_conformance/registry.rs"]
mod registry;

use std::collections::BTreeSet;

use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal_macros::dec;
use voltline_cloud::domain::{Actor, CommandState, OrderEvent, OrderKind, OrderState};
use voltline_cloud::store::{
    new_command_id, NewCharger, NewCommand, NewSite, NewToken, TariffAssignment,
};
use voltline_cloud::StoreError;
use voltline_protocol::domain::CommandId;
use voltline_protocol::sync::{
    Alarm, Command, CommandOutcome, CommandResult, ConnectorState, ConnectorStatus, Record,
    RecordBatch, RecordBody, Severity,
};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::Money;

use cards::*;
use common::*;
use ingest::*;
use orders::*;
use registry::*;

on_both_backends!(
    migrations_are_idempotent,
    registry_round_trips,
    tariffs_are_versioned_and_assigned,
    tokens_verify_revoke_and_expire,
    orders_refuse_stale_versions_and_bad_transitions,
    commands_follow_the_state_machine_and_expire,
    ingest_deduplicates_and_acks_the_contiguous_prefix,
    ingest_acks_correctly_under_random_batch_orderings,
    transactions_are_stored_once_per_pile_and_serial,
    command_results_apply_to_commands_and_orders,
    pending_commands_and_acks_survive_a_restart,
    cards_belong_to_one_account_and_move_the_operator_sites,
    charger_grants_carry_the_credential_hash_and_power_limits_move_the_version,
    reports_summarise_ingest_and_transactions,
);

async fn migrations_are_idempotent(ctx: &Ctx) {
    ctx.store.migrate().await.unwrap();
    ctx.store.migrate().await.unwrap();
    let again = ctx.reopen().await;
    again.migrate().await.unwrap();
    again
        .create_operator(&op("op-m"), "Migrated")
        .await
        .unwrap();
    assert_eq!(
        ctx.store.get_operator(&op("op-m")).await.unwrap().name,
        "Migrated"
    );
    again.close().await;
}

async fn pending_commands_and_acks_survive_a_restart(ctx: &Ctx) {
    seed(&ctx.store, "s-1", 100).await;
    let now = Timestamp::now();
    let (order, start) = order_with_start("s-1", 100, 1, now + 1.hour());
    ctx.store.create_order(&order, &start).await.unwrap();
    ctx.store
        .ingest(&site("s-1"), &batch("s-1", 1..=3))
        .await
        .unwrap();
    ctx.store.close().await;

    let reopened = ctx.reopen().await;
    let pending = reopened
        .pending_commands(Some(&site("s-1")), now, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, start.id);
    assert_eq!(pending[0].command, start.command);
    assert_eq!(reopened.acked_seq(&site("s-1")).await.unwrap(), 3);
    assert_eq!(
        reopened.get_order(&order.id).await.unwrap().state,
        OrderState::Pending
    );
    reopened.close().await;
}

#[tokio::test]
async fn sqlite_urls_open_a_wal_database_and_other_schemes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-url.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = voltline_cloud::Store::open(&url).await.unwrap();
    store.create_operator(&op("op-u"), "By URL").await.unwrap();
    assert!(
        dir.path().join("by-url.db-wal").exists(),
        "the database runs in WAL mode"
    );
    store.close().await;
    let again = voltline_cloud::Store::open(&url).await.unwrap();
    assert_eq!(
        again.get_operator(&op("op-u")).await.unwrap().name,
        "By URL"
    );
    let err = voltline_cloud::Store::open("mysql://localhost/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(err.to_string().contains("use sqlite://PATH"), "{err}");
}
