//! Carrying out a machine's effects, in order: frames to the pile, records into the outbox,
//! "store durably, then acknowledge" for transaction records, card decisions from the cached
//! list and "save durably, then answer" for the authorised ones, and the active session in
//! the store.

use std::collections::VecDeque;

use voltline_protocol::frame::Frame;
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::sync::{CommandOutcome, RecordBody};
use voltline_protocol::{Message, TransactionSerial};

use super::{cards, piles, Flushed, Site};
use crate::connector::{Admission, ConnectorId, Context, Effect, Input};
use crate::ops::metrics::PortLabels;
use crate::store::{CommandStatus, NewRecord};

/// Most inputs one call of [`Site::step_connector`] feeds (the first and what its effects
/// feed back: a card decision, a failed store).
const MAX_CHAINED_INPUTS: usize = 4;

impl Site {
    /// Steps connector `id` with `input` (and what its effects feed back), carrying out every
    /// effect. `reply_seq` is the sequence of the pile frame being answered, if any.
    pub(super) async fn step_connector(
        &mut self,
        id: ConnectorId,
        input: Input,
        reply_seq: Option<u16>,
    ) {
        let mut inputs = VecDeque::from([input]);
        let mut fed = 0;
        while let Some(input) = inputs.pop_front() {
            fed += 1;
            assert!(fed <= MAX_CHAINED_INPUTS, "effects fed back without end");
            let cached = self.store.site_config();
            let admission = self.store.admission();
            let now = self.now;
            let Some(machine) = self.machine(id) else {
                return;
            };
            let ctx = Context {
                now,
                tariff: cached.as_ref().and_then(|c| c.tariff.as_ref()),
                admission,
            };
            let step = machine.step(&ctx, input);
            for effect in step.effects {
                if let Some(next) = self.apply(id, effect, reply_seq).await {
                    inputs.push_back(next);
                }
            }
        }
    }

    /// Carries out one effect; returns an input to feed back to the same machine.
    async fn apply(
        &mut self,
        id: ConnectorId,
        effect: Effect,
        reply_seq: Option<u16>,
    ) -> Option<Input> {
        match effect {
            Effect::Send(message) => {
                let seq = if piles::is_reply(&message) {
                    reply_seq
                } else {
                    None
                };
                self.send(id.pile, seq, message);
                None
            }
            Effect::Record(body) => {
                if let RecordBody::CommandResult(r) = &body {
                    self.command_status(&r.command_id, CommandStatus::Done);
                }
                self.pending.push(NewRecord::new(self.now, body));
                None
            }
            Effect::StoreThenAck {
                serial,
                record,
                ack,
            } => {
                self.store_then_ack(id, serial, record, ack, reply_seq)
                    .await
            }
            Effect::AuthoriseCard { card, .. } => Some(self.authorise_card(id, card)),
            Effect::SaveSession(session) => {
                if let Err(e) = self.store.put_session(id, &session) {
                    self.internal_error("saving a session", &e);
                }
                None
            }
            Effect::SaveStart { start, reply } => {
                self.save_start_then_answer(id, start, reply, reply_seq)
                    .await;
                None
            }
            Effect::ClearSession => {
                if let Err(e) = self.store.clear_session(id) {
                    self.internal_error("clearing a session", &e);
                }
                None
            }
        }
    }

    /// Submits the record (with this turn's earlier records, keeping their order) and hands
    /// its acknowledgement to a task that sends it only once the group is flushed.
    async fn store_then_ack(
        &mut self,
        id: ConnectorId,
        serial: TransactionSerial,
        record: RecordBody,
        ack: Message,
        reply_seq: Option<u16>,
    ) -> Option<Input> {
        let mut record = record;
        if let RecordBody::Transaction(up) = &mut record {
            if cards::attribute_to_card(self.store.site_config().as_deref(), up) {
                tracing::info!(pile = %id.pile, %serial, "record of a session the edge did not hold billed to the card it names");
            }
        }
        let mut records = std::mem::take(&mut self.pending);
        records.push(NewRecord::new(self.now, record));
        let n = records.len() as u64;
        let ticket = match self.committer.submit(records).await {
            Ok(t) => t,
            Err(e) => {
                self.internal_error("submitting a transaction record", &e);
                return Some(Input::RecordFailed { serial });
            }
        };
        self.metrics.records_appended.inc_by(n);
        let sender = self.piles.get(&id.pile).map(|l| l.sender.clone());
        let flushed = self.flushed_tx.clone();
        let metrics = self.metrics.clone();
        let seq = reply_seq.unwrap_or(0);
        tokio::spawn(async move {
            let ok = match ticket.durable().await {
                Ok(_) => {
                    // Durable: now, and only now, the pile may hear that it is stored.
                    if let Some(sender) = sender {
                        let port = sender.port;
                        match sender.send(Frame::new(seq, ack)) {
                            Ok(()) => metrics.frames_out.get_or_create(&PortLabels { port }).inc(),
                            Err(_) => metrics
                                .frames_out_dropped
                                .get_or_create(&PortLabels { port })
                                .inc(),
                        };
                    }
                    metrics.records_acknowledged.inc();
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, "a transaction record did not become durable; not acknowledged, the pile will resend it");
                    metrics.internal_errors.inc();
                    false
                }
            };
            let _ = flushed.send(Flushed { id, serial, ok }).await;
        });
        None
    }

    /// Saves an answered card start and hands its 0x32 to a task that sends it only once
    /// the store is flushed: the pile may start on it at once, and after a crash the edge
    /// must still know the card behind that session. Unsaved, nothing is sent (the pile asks
    /// again).
    async fn save_start_then_answer(
        &mut self,
        id: ConnectorId,
        start: crate::connector::PendingStart,
        reply: Message,
        reply_seq: Option<u16>,
    ) {
        if let Err(e) = self.store.put_card_start(id, &start) {
            self.internal_error("saving a card start", &e);
            return;
        }
        let Some(sender) = self.piles.get(&id.pile).map(|l| l.sender.clone()) else {
            return;
        };
        // An empty request to the group committer resolves after its group's flush, which
        // covers the start: one flush for many starts (a flush per start, when every pile
        // asks at once after a restart, would tie up sled's whole thread pool).
        let ticket = match self.committer.submit(Vec::new()).await {
            Ok(t) => t,
            Err(e) => {
                self.internal_error("flushing a card start", &e);
                return;
            }
        };
        let metrics = self.metrics.clone();
        let seq = reply_seq.unwrap_or(0);
        tokio::spawn(async move {
            if let Err(e) = ticket.durable().await {
                tracing::error!(error = %e, "a card start did not become durable; not answered, the pile will ask again");
                metrics.internal_errors.inc();
                return;
            }
            let port = sender.port;
            match sender.send(Frame::new(seq, reply)) {
                Ok(()) => metrics.frames_out.get_or_create(&PortLabels { port }).inc(),
                Err(_) => metrics
                    .frames_out_dropped
                    .get_or_create(&PortLabels { port })
                    .inc(),
            };
        });
    }

    fn authorise_card(&mut self, id: ConnectorId, card: PhysicalCardNo) -> Input {
        let cached = self.store.site_config();
        let zone = self.site_zone().unwrap_or(jiff::tz::TimeZone::UTC);
        let local = self.now.to_zoned_datetime(zone).datetime();
        self.card_counter = (self.card_counter + 1) % (cards::MAX_SERIAL_COUNTER + 1);
        let decision = cards::decide(cached.as_deref(), id, &card, local, self.card_counter);
        if let crate::connector::CardDecision::Refused(why) = &decision {
            let reason = if cached.is_none() {
                "no_authorisation_list"
            } else {
                match why {
                    voltline_protocol::message::transaction::AuthFailure::InsufficientBalance => {
                        "no_offline_limit"
                    }
                    _ => "unknown_card",
                }
            };
            self.metrics
                .starts_refused
                .get_or_create(&crate::ops::metrics::ReasonLabels {
                    port: self
                        .piles
                        .get(&id.pile)
                        .map_or(crate::ports::Port::Tcp, |l| l.sender.port),
                    reason,
                })
                .inc();
            tracing::info!(pile = %id.pile, connector = id.connector.get(), reason, "card start refused");
        } else if self.store.admission() == Admission::Refuse {
            tracing::warn!(pile = %id.pile, "card start refused: the store is near its bound");
        }
        Input::CardDecision { card, decision }
    }

    /// Submits this turn's plain records without waiting for their flush.
    pub(super) async fn submit_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.pending);
        let n = records.len() as u64;
        match self.committer.submit(records).await {
            Ok(_ticket) => {
                self.metrics.records_appended.inc_by(n);
            }
            Err(e) => self.internal_error("submitting records", &e),
        }
    }

    pub(super) fn command_status(
        &self,
        id: &voltline_protocol::domain::CommandId,
        status: CommandStatus,
    ) {
        if let Err(e) = self.store.set_command_status(id, status) {
            self.internal_error("updating a command's status", &e);
        }
    }

    /// Records the outcome of a command the site carried out itself.
    pub(super) fn record_result(
        &mut self,
        command_id: voltline_protocol::domain::CommandId,
        outcome: CommandOutcome,
    ) {
        self.command_status(&command_id, CommandStatus::Done);
        self.pending.push(NewRecord::new(
            self.now,
            RecordBody::CommandResult(voltline_protocol::sync::CommandResult {
                command_id,
                outcome,
            }),
        ));
    }

    pub(super) fn internal_error(&self, what: &str, e: &dyn std::fmt::Display) {
        self.metrics.internal_errors.inc();
        tracing::error!(error = %e, "{what} failed");
    }
}
