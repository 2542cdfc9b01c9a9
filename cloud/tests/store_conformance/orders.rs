//! Order and command cases.

use super::*;

pub(crate) async fn orders_refuse_stale_versions_and_bad_transitions(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    let (new, start) = order_with_start("s-1", 100, 1, Timestamp::now() + 1.minute());
    let (order, cmd) = s.create_order(&new, &start).await.unwrap();
    assert_eq!(
        (order.state, order.version, cmd.state),
        (OrderState::Pending, 1, CommandState::Queued)
    );
    let stored = s.get_order(&new.id).await.unwrap();
    assert_eq!(stored, order);
    assert_eq!(stored.limit.amount, Some(Money::from_yuan(dec!(50.00))));
    assert_eq!(
        s.get_command(&start.id).await.unwrap().order,
        Some(new.id.clone())
    );

    let charging = s
        .transition_order(&new.id, 1, OrderEvent::StartAccepted)
        .await
        .unwrap();
    assert_eq!(
        (charging.state, charging.version),
        (OrderState::Charging, 2)
    );
    let stale = s
        .transition_order(&new.id, 1, OrderEvent::StopRequested)
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionConflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    let bad = s.transition_order(&new.id, 2, OrderEvent::Settled).await;
    assert!(
        matches!(bad, Err(StoreError::OrderTransition(_))),
        "{bad:?}"
    );
    let held = s.set_order_hold(&new.id, 2, "hold-1").await.unwrap();
    assert_eq!((held.hold_id.as_deref(), held.version), (Some("hold-1"), 3));
    assert!(matches!(
        s.set_order_hold(&new.id, 2, "hold-2").await,
        Err(StoreError::VersionConflict { .. })
    ));

    // One order per (account, idempotency key).
    let (mut again, mut start2) = order_with_start("s-1", 100, 2, Timestamp::now() + 1.minute());
    again.idempotency_key = new.idempotency_key.clone();
    start2.order = Some(again.id.clone());
    assert!(matches!(
        s.create_order(&again, &start2).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(
        s.get_command(&start2.id).await.is_err(),
        "no command without its order"
    );
    // The connector must exist on the charger.
    let (mut wide, start3) = order_with_start("s-1", 100, 3, Timestamp::now() + 1.minute());
    wide.connector = conn(3);
    assert!(matches!(
        s.create_order(&wide, &start3).await,
        Err(StoreError::Invalid { .. })
    ));
    // A charger with orders is kept for settlement and audit.
    assert!(matches!(
        s.delete_charger(&pile(100)).await,
        Err(StoreError::Invalid { .. })
    ));
}

pub(crate) async fn commands_follow_the_state_machine_and_expire(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    let now = Timestamp::now();
    let reboot = |id: CommandId, expires_at| NewCommand {
        id,
        site: site("s-1"),
        order: None,
        command: Command::Reboot { pile: pile(100) },
        expires_at,
    };
    let a = s
        .enqueue_command(&reboot(new_command_id(), now + 1.hour()))
        .await
        .unwrap();
    assert_eq!(s.get_command(&a.id).await.unwrap(), a);
    assert_eq!(a.envelope().expires_at, a.expires_at);
    assert_eq!(s.record_dispatch_attempt(&a.id, now).await.unwrap(), 1);
    assert_eq!(s.record_dispatch_attempt(&a.id, now).await.unwrap(), 2);
    let d = s
        .transition_command(&a.id, CommandState::Delivered, None)
        .await
        .unwrap();
    assert_eq!(d.state, CommandState::Delivered);
    let r = s
        .transition_command(&a.id, CommandState::Rejected, Some("busy"))
        .await
        .unwrap();
    assert_eq!(
        (r.state, r.reason.as_deref()),
        (CommandState::Rejected, Some("busy"))
    );
    let again = s
        .transition_command(&a.id, CommandState::Accepted, None)
        .await;
    assert!(
        matches!(again, Err(StoreError::CommandTransition(_))),
        "final states stay final: {again:?}"
    );

    // A start command that expires fails its order; a live one stays pending.
    let (order, start) = order_with_start("s-1", 100, 1, now + 1.minute());
    s.create_order(&order, &start).await.unwrap();
    let live = s
        .enqueue_command(&reboot(new_command_id(), now + 1.hour()))
        .await
        .unwrap();
    let pending: Vec<_> = s
        .pending_commands(Some(&site("s-1")), now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(pending, vec![start.id.clone(), live.id.clone()]);
    assert!(s.expire_overdue_commands(now).await.unwrap().is_empty());
    let expired = s.expire_overdue_commands(now + 2.minutes()).await.unwrap();
    assert_eq!(expired, vec![start.id.clone()]);
    assert_eq!(
        s.get_command(&start.id).await.unwrap().state,
        CommandState::Expired
    );
    assert_eq!(
        s.get_order(&order.id).await.unwrap().state,
        OrderState::Failed
    );
    assert_eq!(
        s.get_command(&live.id).await.unwrap().state,
        CommandState::Queued
    );
    let pending_all = s
        .pending_commands(None, now + 2.minutes(), 100)
        .await
        .unwrap();
    assert_eq!(pending_all.len(), 1);
    assert!(
        s.expire_overdue_commands(now + 2.minutes())
            .await
            .unwrap()
            .is_empty(),
        "expiry is idempotent"
    );
}
