//! The V2G rows of the store on SQLite and PostgreSQL: a discharge order, its terms and its
//! start command are written together and only for a V2G charger of the order's site; one
//! running discharge order per connector, also when two starts race; the connector state an
//! edge reported is read back; grid events are stored with their command.

mod common;

use jiff::{SignedDuration, Timestamp};
use voltline_cloud::domain::discharge::DischargeTerms;
use voltline_cloud::domain::{CommandState, OrderEvent, OrderKind, OrderState, PaymentMethod};
use voltline_cloud::store::discharges::NewGridEvent;
use voltline_cloud::store::{new_command_id, new_order_id, NewCommand, NewOrder, StoreError};
use voltline_cloud::Store;
use voltline_protocol::domain::{OrderId, Power, Soc};
use voltline_protocol::sync::{
    Command, ConnectorState, ConnectorStatus, Record, RecordBatch, RecordBody, SessionLimit,
};

use common::{acct, conn, pile, serial, site, Ctx};

fn terms() -> DischargeTerms {
    DischargeTerms {
        soc_floor: Soc::new(40).unwrap(),
        departure: Timestamp::now() + SignedDuration::from_hours(5),
        max_power: Power::from_watts(11_000),
    }
}

fn order(n: u16) -> (NewOrder, NewCommand) {
    let id = new_order_id();
    let serial = serial(1, n);
    let t = terms();
    let new = NewOrder {
        id: id.clone(),
        account: acct("d-1"),
        site: site("s-1"),
        pile: pile(1),
        connector: conn(1),
        kind: OrderKind::Discharge,
        payment_method: PaymentMethod::Wallet,
        limit: SessionLimit::default(),
        hold_id: None,
        transaction_serial: Some(serial),
        idempotency_key: None,
    };
    let start = NewCommand {
        id: new_command_id(),
        site: site("s-1"),
        order: Some(id.clone()),
        command: Command::StartDischarge {
            pile: pile(1),
            connector: conn(1),
            order: id,
            serial,
            soc_floor: t.soc_floor,
            max_power: t.max_power,
            until: t.departure,
        },
        expires_at: Timestamp::now() + SignedDuration::from_mins(5),
    };
    (new, start)
}

async fn create(store: &Store, n: u16) -> Result<OrderId, StoreError> {
    let (new, start) = order(n);
    store
        .create_discharge_order(&new, &terms(), &start)
        .await
        .map(|(o, _)| o.id)
}

async fn a_discharge_order_needs_a_v2g_charger_and_keeps_its_terms(ctx: &Ctx) {
    let store = &ctx.store;
    common::seed(store, "s-1", 1).await;
    assert!(!store.charger_v2g(&pile(1)).await.unwrap());
    assert!(matches!(
        create(store, 1).await,
        Err(StoreError::Invalid { .. })
    ));
    store.set_charger_v2g(&pile(1), true).await.unwrap();
    assert!(store.charger_v2g(&pile(1)).await.unwrap());
    assert!(matches!(
        store.set_charger_v2g(&pile(9), true).await,
        Err(StoreError::NotFound { .. })
    ));
    let id = create(store, 1).await.unwrap();
    let o = store.get_order(&id).await.unwrap();
    assert_eq!(
        (o.kind, o.state, o.hold_id),
        (OrderKind::Discharge, OrderState::Pending, None)
    );
    let t = store.discharge_terms(&id).await.unwrap().unwrap();
    let want = terms();
    assert_eq!((t.soc_floor, t.max_power), (want.soc_floor, want.max_power));
    assert!(t.departure > Timestamp::now());
    let pending = store
        .pending_commands(Some(&site("s-1")), Timestamp::now(), 10)
        .await
        .unwrap();
    assert!(pending
        .iter()
        .any(|c| c.order.as_ref() == Some(&id) && c.state == CommandState::Queued));
    // A charging order has no discharge terms.
    let (charge, start) = common::order_with_start(
        "s-1",
        1,
        50,
        Timestamp::now() + SignedDuration::from_mins(5),
    );
    store.create_order(&charge, &start).await.unwrap();
    assert_eq!(store.discharge_terms(&charge.id).await.unwrap(), None);
}

async fn one_running_discharge_per_connector_also_when_starts_race(ctx: &Ctx) {
    let store = &ctx.store;
    common::seed(store, "s-1", 1).await;
    store.set_charger_v2g(&pile(1), true).await.unwrap();
    let other = ctx.reopen().await; // another cloud instance
    let (a, b) = tokio::join!(create(store, 1), create(&other, 2));
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{}: {a:?} {b:?}",
        ctx.backend()
    );
    let first = a.or(b).unwrap();
    assert_eq!(
        store.active_discharge(&pile(1), conn(1)).await.unwrap(),
        Some(first.clone())
    );
    assert!(matches!(
        create(store, 3).await,
        Err(StoreError::Duplicate { .. })
    ));
    // Once it stops, the connector takes a new discharge order.
    let o = store.get_order(&first).await.unwrap();
    store
        .transition_order(&first, o.version, OrderEvent::StopRequested)
        .await
        .unwrap();
    assert_eq!(
        store.active_discharge(&pile(1), conn(1)).await.unwrap(),
        None
    );
    create(store, 4).await.unwrap();
}

async fn connector_states_and_grid_events_are_stored(ctx: &Ctx) {
    let store = &ctx.store;
    common::seed(store, "s-1", 1).await;
    assert_eq!(
        store.connector_state(&pile(1), conn(1)).await.unwrap(),
        None
    );
    let status = |seq, state| Record {
        seq,
        at: Timestamp::now(),
        body: RecordBody::ConnectorStatus(ConnectorStatus {
            pile: pile(1),
            connector: conn(1),
            state,
        }),
    };
    let batch = RecordBatch::new(
        site("s-1"),
        vec![
            status(1, ConnectorState::Available),
            status(2, ConnectorState::Plugged),
        ],
    );
    store.ingest(&site("s-1"), &batch).await.unwrap();
    assert_eq!(
        store.connector_state(&pile(1), conn(1)).await.unwrap(),
        Some(ConnectorState::Plugged)
    );
    let from = Timestamp::now();
    let event = NewGridEvent {
        event_id: "grid-1".into(),
        site: site("s-1"),
        power: Power::from_kw(100),
        from,
        to: from + SignedDuration::from_hours(1),
    };
    let command = NewCommand {
        id: new_command_id(),
        site: site("s-1"),
        order: None,
        command: Command::GridEvent {
            event_id: "grid-1".into(),
            power: event.power,
            from: event.from,
            to: event.to,
        },
        expires_at: event.to,
    };
    let stored = store.create_grid_event(&event, &command).await.unwrap();
    assert_eq!(stored.state, CommandState::Queued);
    assert_eq!(
        store.get_command(&command.id).await.unwrap().command,
        command.command
    );
    assert_eq!(store.count_grid_events(&site("s-1")).await.unwrap(), 1);
    // The same event id again is refused, and nothing half-written stays behind.
    let again = NewCommand {
        id: new_command_id(),
        ..command.clone()
    };
    assert!(store.create_grid_event(&event, &again).await.is_err());
    assert!(store.get_command(&again.id).await.is_err());
    let empty = NewGridEvent {
        to: from,
        ..event.clone()
    };
    assert!(matches!(
        store.create_grid_event(&empty, &command).await,
        Err(StoreError::Invalid { .. })
    ));
}

on_both_backends!(
    a_discharge_order_needs_a_v2g_charger_and_keeps_its_terms,
    one_running_discharge_per_connector_also_when_starts_race,
    connector_states_and_grid_events_are_stored,
);
