//! Card starts at the pile: a 0x31 asks, the cached authorisation list decides (through
//! [`Effect::AuthoriseCard`] and [`Input::CardDecision`]), a 0x32 answers.
//!
//! A pile asks for one start per connector at a time and asks again when an answer does not
//! come in time (YKC piles wait 60 s; a simulator at 60x speed, one second). The rules here
//! make that safe and make sure a start is never left unanswered:
//! - the same card again while its start is pending gets the same 0x32 again (same serial):
//!   the first answer may still be on its way, and a second serial for one start would leave
//!   the pile charging a transaction the edge does not know;
//! - another card while a card start is pending means the pile gave that start up: it is
//!   dropped and the new card is decided afresh; so is the same card once a record of the
//!   start's serial was seen, or once the pile was out of sight since the answer (link loss,
//!   edge restart): it may have charged and ended that start unseen, and a serial is never
//!   handed out for a second session. The dropped start is remembered, so its record is still
//!   billed to the card;
//! - a card while a cloud start is pending is not answered: the cloud's start holds the
//!   connector until it succeeds, fails or passes its deadline, and the pile asks again;
//! - a 0x13 that shows the pile idle after the 0x32 reached it (gun out, or plugged past
//!   `card_answer_grace_ms`) drops the pending card start (see `frames.rs`).
//!
//! An answered card start is saved in the store and flushed before its 0x32 goes out
//! ([`Effect::SaveStart`]), and kept while the pile is offline, so a pile that started on its
//! 0x32 just before an edge restart or a link loss is still charged to the card's account,
//! within the card's limit (the cloud cannot bill a session without an account).
//!
//! Never: answer a card while the store refuses new sessions, or send an authorised 0x32 for
//! a start the machine does not hold.
//!
//! [`Input::CardDecision`]: super::Input::CardDecision

use voltline_protocol::domain::money::scale;
use voltline_protocol::domain::{Money, RoundingRule};
use voltline_protocol::message::transaction::{
    AuthFailure, Outcome, PhysicalCardNo, PileStartReply, PileStartRequest,
};
use voltline_protocol::sync::Authorisation;
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::{Message, TransactionSerial};

use super::machine::ms;
use super::session::{CardAnswer, Direction, PendingStart};
use super::{Admission, CardDecision, ConnectorMachine, Context, Effect, Ignored, State, Step};

impl ConnectorMachine {
    pub(super) fn on_card_request(
        &mut self,
        ctx: &Context<'_>,
        r: PileStartRequest,
        step: &mut Step,
    ) {
        let state = self.take_state();
        self.state = match state {
            State::StartRequested(mut p) => match p.card.as_mut() {
                Some(answer)
                    if answer.card == r.card && !answer.unseen && !self.serial_used(p.serial) =>
                {
                    // Asked again: the answer did not reach the pile in time. Same answer, and
                    // the pile gets a full start window from it.
                    answer.answered_at = ctx.now;
                    let reply = self.authorised_reply(p.serial, answer.balance);
                    p.deadline = ctx.now + ms(self.config.start_timeout_ms);
                    step.push(Effect::SaveStart {
                        start: p.clone(),
                        reply,
                    });
                    self.state = State::StartRequested(p);
                    return;
                }
                // The pile gave the answered start up and asks for another card.
                Some(_) => State::Idle {
                    plugged: self.plugged,
                },
                None => State::StartRequested(p),
            },
            other => other,
        };
        if !matches!(self.state, State::Idle { .. }) {
            step.ignored = Some(Ignored::Irrelevant);
            return;
        }
        if ctx.admission == Admission::Refuse {
            step.push(self.card_refusal(AuthFailure::StationCapacityInsufficient));
            return;
        }
        step.push(Effect::AuthoriseCard {
            card: r.card,
            method: r.method,
        });
    }

    pub(super) fn on_card_decision(
        &mut self,
        ctx: &Context<'_>,
        card: PhysicalCardNo,
        decision: CardDecision,
    ) -> Step {
        let mut step = Step::default();
        if !matches!(self.state, State::Idle { .. }) {
            return Step::ignore(Ignored::NotPending);
        }
        match decision {
            CardDecision::Authorised { .. } if ctx.admission == Admission::Refuse => {
                step.push(self.card_refusal(AuthFailure::StationCapacityInsufficient));
            }
            CardDecision::Authorised {
                account,
                serial,
                limit,
                balance,
            } => {
                let balance = balance.round_to(scale::CENT, RoundingRule::Down);
                let reply = self.authorised_reply(serial, balance);
                let start = PendingStart {
                    command_id: None,
                    serial,
                    authorisation: Authorisation::OfflineCard {
                        card: card.to_string(),
                        account,
                    },
                    limit,
                    direction: Direction::Charge,
                    deadline: ctx.now + ms(self.config.start_timeout_ms),
                    waiting_for_plug: false,
                    card: Some(CardAnswer {
                        card,
                        balance,
                        answered_at: ctx.now,
                        unseen: false,
                    }),
                };
                step.push(Effect::SaveStart {
                    start: start.clone(),
                    reply,
                });
                self.state = State::StartRequested(start);
            }
            CardDecision::Refused(failure) => step.push(self.card_refusal(failure)),
        }
        step
    }

    /// Whether a record of `serial` was seen: a start whose serial was used is over, and a
    /// new 0x31 must never get that serial again.
    fn serial_used(&self, serial: TransactionSerial) -> bool {
        self.durable.contains(&serial) || self.in_flight.contains(&serial)
    }

    /// Whether a 0x13 that is not charging shows that the pile did not take card start `p`:
    /// the gun is out, or the report came well after the 0x32 (an earlier one may have been
    /// sent before the 0x32 reached the pile). Always false for a cloud start.
    pub(super) fn card_start_not_taken(&self, p: &PendingStart, ctx: &Context<'_>) -> bool {
        p.card.as_ref().is_some_and(|answer| {
            !self.plugged || ctx.now >= answer.answered_at + ms(self.config.card_answer_grace_ms)
        })
    }

    fn authorised_reply(&self, serial: TransactionSerial, balance: Money) -> Message {
        Message::PileStartReply(PileStartReply {
            serial,
            pile_code: self.id.pile,
            connector: self.id.connector,
            logical_card: Bcd::ZERO,
            balance,
            authorised: Outcome::Succeeded,
            failure: AuthFailure::None,
        })
    }

    fn card_refusal(&self, failure: AuthFailure) -> Effect {
        Effect::Send(Message::PileStartReply(PileStartReply {
            serial: TransactionSerial::NONE,
            pile_code: self.id.pile,
            connector: self.id.connector,
            logical_card: Bcd::ZERO,
            balance: Money::ZERO,
            authorised: Outcome::Failed,
            failure,
        }))
    }
}
