//! What the site resumes from the store after a restart: an answered card start (its serial
//! never handed out again, its record billed to the card) and no session whose record was
//! already stored; and a record whose session the edge lost is billed to the card it names.

use voltline_protocol::message::realtime::ConnectorStatus as PileStatus;
use voltline_protocol::message::transaction::Outcome;
use voltline_protocol::sync::{Authorisation, RecordBody};
use voltline_protocol::Message;

use super::tests::{card_request, frame_of, next, options, start, start_with, with_cards};
use crate::connector::tests_support::{charging_machine, id, record_frame, rt, serial, tx_record};
use crate::connector::Saved;

#[tokio::test]
async fn a_card_start_answered_before_a_restart_is_never_answered_again_but_bills_its_card() {
    let h = start().await;
    with_cards(&h).await;
    let mut p = h.login().await;
    h.send(&mut p, frame_of(rt(0, PileStatus::Idle, 0, 0)))
        .await;
    // An unknown card first, so the answered start's serial has a counter that a fresh
    // decision after the restart would not repeat.
    h.send(&mut p, card_request(0x0BAD)).await;
    let Message::PileStartReply(refused) = next(&mut p).await.message else {
        panic!("no 0x32")
    };
    assert_eq!(refused.authorised, Outcome::Failed);
    h.send(&mut p, card_request(0xD14B_0A54)).await;
    let Message::PileStartReply(first) = next(&mut p).await.message else {
        panic!("no 0x32")
    };
    assert_eq!(first.authorised, Outcome::Succeeded);
    h.store.flush().await.unwrap();
    let dir = h.stop().await;

    let h = start_with(dir, options()).await;
    let mut p = h.login().await;
    let seq = h.send(&mut p, card_request(0xD14B_0A54)).await;
    let reply = next(&mut p).await;
    assert_eq!(reply.sequence, seq);
    let Message::PileStartReply(again) = reply.message else {
        panic!("{reply:?}")
    };
    assert_eq!(again.authorised, Outcome::Succeeded);
    assert_ne!(
        again.serial, first.serial,
        "the pile may have charged the first answer while the edge was down"
    );
    // The first start's record, resent now, is billed to the card all the same.
    let mut record = tx_record(1);
    record.serial = first.serial;
    h.send(&mut p, Message::TransactionRecord(Box::new(record)))
        .await;
    assert!(matches!(
        next(&mut p).await.message,
        Message::TransactionRecordAck(_)
    ));
    let stored = h.records().await;
    assert!(stored.iter().any(|r| matches!(
        r,
        RecordBody::Transaction(up)
            if up.record.serial == first.serial
                && matches!(&up.authorisation, Authorisation::OfflineCard { account, .. } if account.as_str() == "driver-7")
    )));
    h.stop().await;
}

#[tokio::test]
async fn a_saved_session_whose_record_is_stored_is_not_resumed() {
    let h = start().await;
    let mut p = h.login().await;
    h.send(&mut p, frame_of(record_frame(1))).await;
    assert!(matches!(
        next(&mut p).await.message,
        Message::TransactionRecordAck(_)
    ));
    // A crash right after the record's flush loses the clearing of its session.
    let session = charging_machine().state().session().unwrap().clone();
    assert_eq!(session.serial, serial(1));
    h.store.put_session(id(), &session).unwrap();
    h.store.flush().await.unwrap();
    let dir = h.stop().await;

    let h = start_with(dir, options()).await;
    assert_eq!(h.view.borrow().sessions, 0, "an ended session came back");
    assert_eq!(h.store.sessions().unwrap(), Vec::<(_, Saved)>::new());
    h.stop().await;
}

#[tokio::test]
async fn a_saved_card_start_whose_record_is_stored_is_not_resumed() {
    let h = start().await;
    let mut p = h.login().await;
    h.send(&mut p, frame_of(record_frame(3))).await;
    assert!(matches!(
        next(&mut p).await.message,
        Message::TransactionRecordAck(_)
    ));
    // The pile charged and ended the card start; a crash lost the clearing of the start.
    let m = crate::connector::tests_support::card_start_machine();
    let crate::connector::State::StartRequested(start) = m.state().clone() else {
        panic!("{:?}", m.state())
    };
    assert_eq!(start.serial, serial(3));
    h.store.put_card_start(id(), &start).unwrap();
    h.store.flush().await.unwrap();
    let dir = h.stop().await;

    let h = start_with(dir, options()).await;
    assert_eq!(h.store.sessions().unwrap(), Vec::<(_, Saved)>::new());
    h.stop().await;
}

#[tokio::test]
async fn a_record_of_a_lost_card_session_is_billed_to_its_card() {
    let h = start().await;
    with_cards(&h).await;
    let mut p = h.login().await;
    let mut record = tx_record(9);
    record.physical_card = super::tests::card(0xD14B_0A54);
    h.send(&mut p, Message::TransactionRecord(Box::new(record)))
        .await;
    assert!(matches!(
        next(&mut p).await.message,
        Message::TransactionRecordAck(_)
    ));
    let stored = h.records().await;
    let up = stored
        .iter()
        .find_map(|r| match r {
            RecordBody::Transaction(up) => Some(up),
            _ => None,
        })
        .expect("the record is stored");
    assert!(
        matches!(&up.authorisation, Authorisation::OfflineCard { account, .. } if account.as_str() == "driver-7"),
        "{:?}",
        up.authorisation
    );
    h.stop().await;
}
