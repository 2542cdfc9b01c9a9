//! The link's life: login (0x01 → 0x02), billing model check (0x05 → 0x06, and 0x09 → 0x0A
//! when inconsistent), heartbeats (0x03 every 10 s per connector; three unanswered drop the
//! link, reference 6.3).

use voltline_protocol::message::register::{
    BillingModelRequest, BillingModelVerify, Carrier, GunHealth, Heartbeat, Login, LoginResult,
    NetworkKind, PileKind, VerifyResult,
};
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::wire::text::FixedText;

use super::{Charger, ChargerKind, DropReason, Link, Output};
use crate::clock::SimTime;
use crate::events::SimEvent;

/// Heartbeat replies missed before the link counts as down.
const MISSED_HEARTBEATS: u64 = 3;

impl Charger {
    pub(super) fn on_connected(&mut self, now: SimTime, out: &mut Vec<Output>) {
        self.seq = 0;
        self.link = Link::LoggingIn;
        self.login_deadline = Some(
            now.plus_secs(self.spec.login_timeout_s as u64)
                .plus_ms(self.spec.link_slack_ms),
        );
        let login = Login {
            pile_code: self.spec.pile,
            pile_kind: match self.spec.kind {
                ChargerKind::Dc => PileKind::Dc,
                ChargerKind::Ac => PileKind::Ac,
            },
            connector_count: self.spec.connectors,
            protocol_version_x10: 0x10,
            program_version: FixedText::from_text(&self.spec.program_version)
                .unwrap_or(FixedText::EMPTY),
            network: NetworkKind::Lan,
            sim: Bcd::ZERO,
            carrier: Carrier::Other,
        };
        self.event(
            SimEvent::Connected {
                pile: self.spec.pile,
            },
            out,
        );
        self.send(login, out);
    }

    pub(super) fn on_disconnected(&mut self) {
        self.link = Link::Offline;
        self.login_deadline = None;
        for c in &mut self.connectors {
            c.reported = None;
            if matches!(c.activity, super::connector::Activity::AwaitingAuth { .. }) {
                // Asked again after the next login.
                c.activity = super::connector::Activity::Idle;
            }
        }
    }

    pub(super) fn on_login_reply(
        &mut self,
        now: SimTime,
        result: LoginResult,
        out: &mut Vec<Output>,
    ) {
        if self.link != Link::LoggingIn {
            return;
        }
        self.login_deadline = None;
        match result {
            LoginResult::Accepted => {
                self.link = Link::Online;
                self.event(
                    SimEvent::LoggedIn {
                        pile: self.spec.pile,
                    },
                    out,
                );
                let model_no = self.model.as_ref().map(|m| m.model_no).unwrap_or(Bcd::ZERO);
                self.send(
                    BillingModelVerify {
                        pile_code: self.spec.pile,
                        model_no,
                    },
                    out,
                );
                self.next_heartbeat = now;
                self.last_heartbeat_reply = now;
                self.records.all_due(now);
                for c in &mut self.connectors {
                    c.reported = None;
                    c.next_report = now;
                }
            }
            LoginResult::Rejected => {
                self.link = Link::Offline;
                self.event(
                    SimEvent::LoginRejected {
                        pile: self.spec.pile,
                    },
                    out,
                );
                out.push(Output::Drop(DropReason::LoginRejected));
            }
        }
    }

    pub(super) fn on_verify_reply(&mut self, result: VerifyResult, out: &mut Vec<Output>) {
        if result == VerifyResult::Inconsistent || self.model.is_none() {
            self.send(
                BillingModelRequest {
                    pile_code: self.spec.pile,
                },
                out,
            );
        }
    }

    pub(super) fn next_heartbeat_timeout(&self) -> SimTime {
        self.last_heartbeat_reply
            .plus_secs(self.spec.heartbeat_interval_s as u64 * MISSED_HEARTBEATS)
            .plus_ms(500 + self.spec.link_slack_ms)
    }

    pub(super) fn link_timers(&mut self, now: SimTime, out: &mut Vec<Output>) {
        if let Some(d) = self.login_deadline {
            if d <= now && self.link == Link::LoggingIn {
                self.login_deadline = None;
                self.link = Link::Offline;
                out.push(Output::Drop(DropReason::LoginTimeout));
                return;
            }
        }
        if self.link != Link::Online {
            return;
        }
        if self.next_heartbeat_timeout() <= now {
            self.on_disconnected();
            out.push(Output::Drop(DropReason::HeartbeatsUnanswered));
            return;
        }
        if self.next_heartbeat <= now {
            for i in 0..self.connectors.len() {
                let health = if self.connectors[i].faulted {
                    GunHealth::Fault
                } else {
                    GunHealth::Normal
                };
                let hb = Heartbeat {
                    pile_code: self.spec.pile,
                    connector: self.connectors[i].no,
                    health,
                };
                self.send(hb, out);
            }
            self.next_heartbeat = now.plus_secs(self.spec.heartbeat_interval_s as u64);
        }
    }
}
