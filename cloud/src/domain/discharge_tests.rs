//! Unit tests of `discharge.rs`: the state machine against the stored order machine, stops,
//! terms, connector readiness and who may start a discharge.

use super::*;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn kw(tenths: i64) -> Option<Power> {
    Some(Power::from_watts(tenths * 100))
}

#[test]
fn the_machine_agrees_with_the_stored_order_machine_everywhere() {
    for s in DischargeState::ALL {
        assert_eq!(DischargeState::from_order(s.to_order()), Some(s));
        for e in OrderEvent::ALL {
            let ours = s.apply(e).map(DischargeState::to_order);
            let stored = s.to_order().apply(DischargeState::KIND, e);
            assert_eq!(ours, stored, "{s:?} + {e:?}");
        }
    }
    assert_eq!(DischargeState::from_order(OrderState::Charging), None);
}

#[test]
fn settled_is_final_and_a_record_rescues_a_failed_start() {
    for e in OrderEvent::ALL {
        assert!(DischargeState::Settled.apply(e).is_err());
    }
    assert_eq!(
        DischargeState::Failed.apply(OrderEvent::RecordReceived),
        Ok(DischargeState::Completed)
    );
}

#[test]
fn stops_go_out_while_running_and_are_refused_after() {
    use DischargeState as S;
    let table = [
        (S::Dispatching, StopAction::Stop),
        (S::Discharging, StopAction::Stop),
        (S::Stopping, StopAction::Repeat),
        (S::Completed, StopAction::Refuse),
        (S::Settled, StopAction::Refuse),
        (S::Failed, StopAction::Refuse),
    ];
    for (s, want) in table {
        assert_eq!(s.stop_action(), want, "{s:?}");
        if want == StopAction::Stop {
            assert_eq!(s.apply(OrderEvent::StopRequested), Ok(S::Stopping));
        }
    }
}

#[test]
fn drivers_admins_and_the_site_operator_on_behalf_may_start_nobody_else() {
    let acc: AccountId = "acc-1".parse().unwrap();
    let (a, b): (OperatorId, OperatorId) = ("op-a".parse().unwrap(), "op-b".parse().unwrap());
    let other: AccountId = "acc-2".parse().unwrap();
    assert!(may_start(&Actor::Admin, &acc, Some(&a), &a));
    assert!(may_start(&Actor::Driver(acc.clone()), &acc, Some(&a), &a));
    assert!(!may_start(&Actor::Driver(other), &acc, Some(&a), &a));
    assert!(may_start(&Actor::Operator(a.clone()), &acc, Some(&a), &a));
    // Not at another operator's site, not for another operator's or a platform account.
    assert!(!may_start(&Actor::Operator(b.clone()), &acc, Some(&a), &a));
    assert!(!may_start(&Actor::Operator(a.clone()), &acc, Some(&b), &a));
    assert!(!may_start(&Actor::Operator(a.clone()), &acc, None, &a));
    assert!(!may_start(
        &Actor::Edge("site-1".parse().unwrap()),
        &acc,
        Some(&a),
        &a
    ));
}

#[test]
fn terms_check_floor_departure_and_power() {
    let dep = now() + SignedDuration::from_hours(3);
    let ok = DischargeTerms::new(30, dep, kw(70), now()).unwrap();
    assert_eq!((ok.soc_floor.percent(), ok.max_power.watts()), (30, 7_000));
    assert_eq!(
        DischargeTerms::new(30, dep, None, now()).unwrap().max_power,
        MAX_POWER
    );
    for floor in [0, 9, 96, 100, 300] {
        assert_eq!(
            DischargeTerms::new(floor, dep, None, now()),
            Err(DischargeRefusal::BadFloor { got: floor })
        );
    }
    for floor in [MIN_SOC_FLOOR_PCT, MAX_SOC_FLOOR_PCT] {
        assert!(DischargeTerms::new(u16::from(floor), dep, None, now()).is_ok());
    }
    assert!(matches!(
        DischargeTerms::new(30, now() + SignedDuration::from_mins(4), None, now()),
        Err(DischargeRefusal::DepartureTooSoon { .. })
    ));
    assert!(matches!(
        DischargeTerms::new(30, now() - SignedDuration::from_hours(1), None, now()),
        Err(DischargeRefusal::DepartureTooSoon { .. })
    ));
    assert!(matches!(
        DischargeTerms::new(
            30,
            now() + MAX_LEAD + SignedDuration::from_secs(1),
            None,
            now()
        ),
        Err(DischargeRefusal::DepartureTooLate { .. })
    ));
    for w in [0, -100, 150, MAX_POWER.watts() + 100] {
        assert_eq!(
            DischargeTerms::new(30, dep, Some(Power::from_watts(w)), now()),
            Err(DischargeRefusal::BadPower { got_w: w })
        );
    }
}

#[test]
fn only_a_plugged_idle_vehicle_on_a_v2g_charger_may_discharge() {
    use ConnectorState as C;
    assert!(check_connector("p", 1, true, Some(C::Plugged)).is_ok());
    let not_v2g = check_connector("p", 1, false, Some(C::Plugged)).unwrap_err();
    assert!(matches!(not_v2g, DischargeRefusal::NotV2gCapable { .. }));
    assert!(!not_v2g.conflict());
    for state in [C::Charging, C::Discharging] {
        let e = check_connector("p", 1, true, Some(state)).unwrap_err();
        assert!(matches!(e, DischargeRefusal::Busy { .. }) && e.conflict());
    }
    for state in [None, Some(C::Available), Some(C::Faulted), Some(C::Offline)] {
        let e = check_connector("p", 1, true, state).unwrap_err();
        assert!(matches!(e, DischargeRefusal::NoVehicle { .. }) && e.conflict());
        assert!(e.to_string().contains("plug the vehicle in"), "{e}");
    }
}
