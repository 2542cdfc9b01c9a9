//! Commands from the cloud at the site: connector commands go to their machine (a discharge
//! start also leaves its driver's order with grid dispatch, `grid.rs`); time sync and reboot
//! are sent to the pile here and answered by its reply (or fail at a deadline or when the
//! pile disconnects); grid events go to grid dispatch. After a restart the cached grid event
//! and orders, then the inbox's open commands, are taken up again.

use jiff::SignedDuration;
use voltline_protocol::domain::CommandId;
use voltline_protocol::message::maintenance::{ExecuteWhen, Reboot};
use voltline_protocol::message::settings::TimeSync;
use voltline_protocol::sync::{Command, CommandEnvelope, CommandOutcome};
use voltline_protocol::Message;

use super::piles::{self, PileCommand, PileCommandKind, MAX_PILE_COMMANDS};
use super::Site;
use crate::connector::{ConnectorId, Input};
use crate::dispatch::{GridEvent, OptIn, MAX_OPT_INS};
use crate::ports::Verdict;
use crate::store::{CommandStatus, StoreError};

/// Most open commands taken up again after a restart (the inbox holds at most its bound).
const MAX_RESUMED_COMMANDS: usize = 10_000;

/// Done commands are kept this long past their expiry, so a late redelivery is recognised.
const KEEP_DONE_COMMANDS: SignedDuration = SignedDuration::from_hours(24);

impl Site {
    pub(super) async fn on_command(&mut self, env: CommandEnvelope) {
        // A command is the cloud speaking: the V2G dead-man counts from here too.
        self.grid_cloud_heard();
        if env.is_expired(self.now) {
            self.record_result(env.id, CommandOutcome::Expired);
            return;
        }
        match &env.command {
            Command::StartCharging {
                pile, connector, ..
            }
            | Command::StopCharging {
                pile, connector, ..
            }
            | Command::StartDischarge {
                pile, connector, ..
            }
            | Command::StopDischarge {
                pile, connector, ..
            } => {
                let id = ConnectorId {
                    pile: *pile,
                    connector: *connector,
                };
                if !self.machines.contains_key(&id)
                    && self.directory.verify_tcp(pile) != Verdict::Accepted
                {
                    let reason = format!(
                        "pile {pile} is not registered at this site; register the charger for the site in the cloud"
                    );
                    self.record_result(env.id, CommandOutcome::Failed { reason });
                    return;
                }
                let opt_in = match &env.command {
                    Command::StartDischarge {
                        order,
                        serial,
                        soc_floor,
                        max_power,
                        until,
                        ..
                    } => Some(OptIn {
                        order: order.clone(),
                        serial: *serial,
                        soc_floor: *soc_floor,
                        max_power: *max_power,
                        until: *until,
                        in_event: false,
                        battery: Default::default(),
                    }),
                    _ => None,
                };
                if opt_in.is_some() && !self.grid_has_room(id) {
                    let reason = format!(
                        "the site already holds {MAX_OPT_INS} discharge orders; stop some before starting more"
                    );
                    self.record_result(env.id, CommandOutcome::Rejected { reason });
                    return;
                }
                self.command_status(&env.id, CommandStatus::Delivered);
                self.step_connector(id, Input::Command(env), None).await;
                if let Some(o) = opt_in {
                    self.grid_opt_in(id, o);
                }
            }
            Command::SyncTime { pile } => {
                let pile = *pile;
                let Some(time) = piles::pile_clock(
                    self.now,
                    &self.site_zone().unwrap_or(jiff::tz::TimeZone::UTC),
                ) else {
                    let reason = "the site's clock cannot be written as a pile time".into();
                    self.record_result(env.id, CommandOutcome::Failed { reason });
                    return;
                };
                let frame = Message::TimeSync(TimeSync {
                    pile_code: pile,
                    time,
                });
                self.pile_command(env.id, pile, PileCommandKind::SyncTime, frame);
            }
            Command::Reboot { pile } => {
                let pile = *pile;
                let frame = Message::Reboot(Reboot {
                    pile_code: pile,
                    when: ExecuteWhen::Immediately,
                });
                self.pile_command(env.id, pile, PileCommandKind::Reboot, frame);
            }
            Command::GridEvent {
                event_id,
                power,
                from,
                to,
            } => {
                let event = GridEvent {
                    id: event_id.clone(),
                    power: *power,
                    from: *from,
                    to: *to,
                };
                self.command_status(&env.id, CommandStatus::Delivered);
                self.grid_event_command(env.id, event).await;
            }
        }
    }

    fn pile_command(
        &mut self,
        id: CommandId,
        pile: voltline_protocol::domain::PileCode,
        kind: PileCommandKind,
        frame: Message,
    ) {
        let deadline =
            self.now + SignedDuration::from_millis(self.opts.pile_command_timeout_ms as i64);
        let refusal = match self.piles.get_mut(&pile) {
            None => Some(CommandOutcome::Failed {
                reason: format!("pile {pile} is not connected; retry when it is online"),
            }),
            Some(link) if link.commands.len() >= MAX_PILE_COMMANDS => {
                Some(CommandOutcome::Rejected {
                    reason: format!(
                        "pile {pile} already has {MAX_PILE_COMMANDS} commands waiting for an answer"
                    ),
                })
            }
            Some(link) => {
                link.commands.push(PileCommand {
                    id: id.clone(),
                    kind,
                    deadline,
                });
                None
            }
        };
        match refusal {
            Some(outcome) => self.record_result(id, outcome),
            None => {
                self.command_status(&id, CommandStatus::Delivered);
                self.send(pile, None, frame);
            }
        }
    }

    /// The pile answered the oldest command of `kind` it was sent.
    pub(super) fn pile_command_answered(
        &mut self,
        pile: voltline_protocol::domain::PileCode,
        kind: PileCommandKind,
        ok: bool,
    ) {
        let Some(link) = self.piles.get_mut(&pile) else {
            return;
        };
        let Some(i) = link.commands.iter().position(|c| c.kind == kind) else {
            tracing::debug!(%pile, ?kind, "reply to no command in flight");
            return;
        };
        let command = link.commands.remove(i);
        let outcome = if ok {
            CommandOutcome::Accepted
        } else {
            CommandOutcome::Rejected {
                reason: "the pile refused the command".into(),
            }
        };
        self.pile_command_done(command.id, outcome);
    }

    pub(super) fn pile_command_done(&mut self, id: CommandId, outcome: CommandOutcome) {
        self.record_result(id, outcome);
    }

    pub(super) fn expire_pile_commands(&mut self) {
        let now = self.now;
        let mut late = Vec::new();
        for link in self.piles.values_mut() {
            link.commands.retain(|c| {
                if c.deadline <= now {
                    late.push(c.id.clone());
                    false
                } else {
                    true
                }
            });
        }
        for id in late {
            let reason = "the pile did not answer in time".into();
            self.pile_command_done(id, CommandOutcome::Failed { reason });
        }
    }

    /// Takes up the inbox's open commands after a restart: those never handed on are
    /// delivered now; those a machine already held (their pending state died with the
    /// process) fail with a reason, so the cloud's order does not wait until its expiry.
    pub(super) async fn resume_commands(&mut self) -> Result<(), StoreError> {
        self.grid_restore().await?;
        let open = self.store.open_commands(MAX_RESUMED_COMMANDS)?;
        let purged = self.store.purge_commands(self.now, KEEP_DONE_COMMANDS)?;
        if !open.is_empty() || purged > 0 {
            tracing::info!(open = open.len(), purged, "took up the command inbox");
        }
        for entry in open {
            match entry.status {
                CommandStatus::Pending => self.on_command(entry.envelope).await,
                CommandStatus::Delivered => {
                    let reason =
                        "the edge restarted before the pile answered; send the command again"
                            .into();
                    self.record_result(entry.envelope.id, CommandOutcome::Failed { reason });
                }
                CommandStatus::Done => {}
            }
        }
        Ok(())
    }
}
