//! The site: the one task that owns every connector machine and drives them with what the
//! ports, the uplink and the clock bring in.
//!
//! - Frames from the ports ([`PortEvent`]): pile-level frames (login, billing model, replies
//!   to time sync and reboot) are answered here ([`piles`]); connector frames go to their
//!   [`ConnectorMachine`]. A frame that names another pile than its connection's is dropped
//!   and counted (`foreign_frames`).
//! - Commands from the uplink (already stored in the inbox) go to their connector, or are
//!   carried out for the pile (time sync, reboot).
//! - A tick steps every machine (deadlines, liveness), expires pile-level commands and ticks
//!   V2G grid dispatch ([`grid`]: grid events, discharge orders, setpoints and stops; each
//!   0xC7 reading goes to it after its connector machine).
//!
//! The machines decide; this module only carries out their [`Effect`]s ([`apply`]): frames
//! to the pile (a reply with its request's sequence), records into the outbox through the
//! group committer (plain records batched per turn, without waiting), and for a
//! transaction record "store durably, **then** acknowledge": the acknowledgement is sent by
//! a task that first awaits the record's flush, then feeds `RecordDurable` back. Card starts
//! are answered from the cached authorisation list ([`cards`]) whether or not the cloud is
//! reachable, which is what keeps an offline site charging.
//!
//! What it must never do: acknowledge a transaction record before its flush; block on a
//! pile (sends never wait; a full pile queue drops the frame and counts it); let its maps
//! grow without a bound (piles and connectors are capped).

mod apply;
pub mod cards;
mod commands;
mod grid;
mod grid_options;
pub mod piles;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_restart;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use voltline_protocol::domain::{ConnectorNo, PileCode};
use voltline_protocol::frame::Frame;
use voltline_protocol::sync::CommandEnvelope;
use voltline_protocol::{Message, TransactionSerial};

use crate::connector::{ConnectorId, ConnectorMachine, Input, MachineConfig, Saved};
use crate::ops::metrics::{EdgeMetrics, PortLabels};
use crate::ports::{ChargerDirectory, PortEvent};
use crate::store::{GroupCommitter, NewRecord, Store, StoreError};

pub use grid_options::GridOptions;
use piles::{PileLink, MAX_CONNECTORS_PER_PILE};

/// Sizes and periods of the site.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// Timeouts and memory of each connector machine (the pile time zone is taken from the
    /// cached site config when there is one).
    pub machine: MachineConfig,
    /// How often every machine is stepped with a tick.
    pub tick_ms: u64,
    /// Most port events handled in one turn before the turn's records are submitted.
    pub max_turn_events: usize,
    /// Most connector machines (connected piles' connectors plus resumed sessions).
    pub max_connectors: usize,
    /// How long a pile has to answer a time sync or reboot.
    pub pile_command_timeout_ms: u64,
    /// The zone of the site's pile clocks until the cloud's site config names one.
    pub time_zone: jiff::tz::TimeZone,
    /// V2G grid dispatch.
    pub grid: GridOptions,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            machine: MachineConfig::default(),
            tick_ms: 1_000,
            max_turn_events: 512,
            max_connectors: 40_000,
            pile_command_timeout_ms: 30_000,
            time_zone: jiff::tz::TimeZone::UTC,
            grid: GridOptions::default(),
        }
    }
}

/// Why the site stopped.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("the site's store failed: {0}; check the disk and restart the edge (nothing unflushed was acknowledged)")]
    Store(#[from] StoreError),
}

/// What the site looks like now, for `/healthz` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteView {
    pub piles_connected: usize,
    pub connectors: usize,
    /// Connectors with a session (charging, stopping, finished, or kept while offline).
    pub sessions: usize,
}

/// A transaction record's flush finished (or failed).
#[derive(Debug)]
struct Flushed {
    id: ConnectorId,
    serial: TransactionSerial,
    ok: bool,
}

/// Bound of the flush-completion channel (each connector has at most a few records in
/// flight, see `connector::machine::MAX_IN_FLIGHT_RECORDS`).
const FLUSHED_QUEUE: usize = 4_096;

/// The things the site drives and is driven by.
pub struct SiteDeps {
    pub store: Store,
    pub committer: GroupCommitter,
    pub directory: ChargerDirectory,
    pub metrics: Arc<EdgeMetrics>,
}

/// The site task's state.
pub struct Site {
    opts: SiteOptions,
    store: Store,
    committer: GroupCommitter,
    directory: ChargerDirectory,
    metrics: Arc<EdgeMetrics>,
    machines: HashMap<ConnectorId, ConnectorMachine>,
    piles: HashMap<PileCode, PileLink>,
    flushed_tx: mpsc::Sender<Flushed>,
    flushed_rx: Option<mpsc::Receiver<Flushed>>,
    /// Plain records of this turn, submitted together at its end.
    pending: Vec<NewRecord>,
    /// Counter of the serials composed for card starts.
    card_counter: u16,
    /// The instant of this turn.
    now: Timestamp,
    view: watch::Sender<SiteView>,
    /// V2G grid dispatch (`grid.rs`).
    grid: grid::Grid,
}

impl Site {
    /// A site resuming the sessions the store holds.
    pub fn new(opts: SiteOptions, deps: SiteDeps) -> Result<Site, SiteError> {
        assert!(opts.tick_ms > 0 && opts.max_turn_events > 0 && opts.max_connectors > 0);
        let (flushed_tx, flushed_rx) = mpsc::channel(FLUSHED_QUEUE);
        let grid = grid::Grid::new(opts.grid, Timestamp::now());
        let mut site = Site {
            opts,
            store: deps.store,
            committer: deps.committer,
            directory: deps.directory,
            metrics: deps.metrics,
            machines: HashMap::new(),
            piles: HashMap::new(),
            flushed_tx,
            flushed_rx: Some(flushed_rx),
            pending: Vec::new(),
            card_counter: 0,
            now: Timestamp::now(),
            view: watch::channel(SiteView::default()).0,
            grid,
        };
        for (id, saved) in site.store.sessions()? {
            let config = site.machine_config();
            if site.store.saved_record_stored(&saved)? {
                // Its record was flushed, but the crash came before its clearing was.
                tracing::info!(pile = %id.pile, "saved session already ended; not resumed");
                site.store.clear_session(id)?;
                continue;
            }
            let machine = match saved {
                Saved::Session(session) => ConnectorMachine::restore(id, config, Some(session)),
                Saved::CardStart(start) => ConnectorMachine::restore_card_start(id, config, start),
            };
            site.machines.insert(id, machine);
        }
        if !site.machines.is_empty() {
            tracing::info!(
                sessions = site.machines.len(),
                "resumed sessions from the store"
            );
        }
        site.publish_view();
        Ok(site)
    }

    /// A receiver of the site's [`SiteView`].
    pub fn view(&self) -> watch::Receiver<SiteView> {
        self.view.subscribe()
    }

    /// Runs until `shutdown`, then submits what the last turn recorded and waits for it to
    /// be durable.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<PortEvent>,
        mut commands: mpsc::Receiver<CommandEnvelope>,
        shutdown: CancellationToken,
    ) -> Result<(), SiteError> {
        let mut flushed = self.flushed_rx.take().expect("run is called once");
        self.now = Timestamp::now();
        self.resume_commands().await?;
        self.submit_pending().await;
        let mut tick = tokio::time::interval(Duration::from_millis(self.opts.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(f) = flushed.recv() => {
                    self.now = Timestamp::now();
                    let input = if f.ok {
                        Input::RecordDurable { serial: f.serial }
                    } else {
                        Input::RecordFailed { serial: f.serial }
                    };
                    self.step_connector(f.id, input, None).await;
                }
                Some(event) = events.recv() => {
                    self.now = Timestamp::now();
                    self.on_port_event(event).await;
                    for _ in 1..self.opts.max_turn_events {
                        match events.try_recv() {
                            Ok(event) => self.on_port_event(event).await,
                            Err(_) => break,
                        }
                    }
                }
                Some(command) = commands.recv() => {
                    self.now = Timestamp::now();
                    self.on_command(command).await;
                }
                _ = tick.tick() => {
                    self.now = Timestamp::now();
                    self.on_tick().await;
                }
            }
            self.submit_pending().await;
        }
        let last = std::mem::take(&mut self.pending);
        if !last.is_empty() {
            self.committer.append_durable(last).await?;
        }
        self.store.flush().await?;
        tracing::info!("site stopped; its records are on disk");
        Ok(())
    }

    fn machine_config(&self) -> MachineConfig {
        let mut config = self.opts.machine.clone();
        if let Some(zone) = self.site_zone() {
            config.pile_time_zone = zone;
        }
        config
    }

    /// The zone of the site's pile clocks: the cached config's, else the configured one.
    fn site_zone(&self) -> Option<jiff::tz::TimeZone> {
        Some(
            self.store
                .site_config()
                .map_or_else(|| self.opts.time_zone.clone(), |c| c.time_zone()),
        )
    }

    /// The machine of `id`, created (offline) if the bound allows.
    fn machine(&mut self, id: ConnectorId) -> Option<&mut ConnectorMachine> {
        if !self.machines.contains_key(&id) {
            if self.machines.len() >= self.opts.max_connectors {
                tracing::warn!(pile = %id.pile, max = self.opts.max_connectors, "connector limit reached; frame ignored");
                return None;
            }
            let config = self.machine_config();
            self.machines.insert(id, ConnectorMachine::new(id, config));
        }
        self.machines.get_mut(&id)
    }

    async fn on_port_event(&mut self, event: PortEvent) {
        match event {
            PortEvent::Connected { sender } => {
                // The ports keep `chargers_connected` per open connection; a new connection
                // of a pile supersedes its old one here.
                self.piles.insert(sender.pile, PileLink::new(sender));
                self.publish_view();
            }
            PortEvent::Frame {
                pile,
                conn,
                port,
                frame,
            } => {
                if self.piles.get(&pile).is_none_or(|l| l.sender.conn != conn) {
                    // A late frame of a superseded or closed connection.
                    tracing::debug!(%pile, conn, "frame from a connection that is no longer current");
                    return;
                }
                if piles::pile_of(&frame.message) != Some(pile) {
                    self.metrics
                        .foreign_frames
                        .get_or_create(&PortLabels { port })
                        .inc();
                    tracing::warn!(%pile, frame_type = frame.frame_type(), "frame names another pile than its connection's; dropped");
                    return;
                }
                self.on_frame(pile, frame).await;
            }
            PortEvent::Disconnected { pile, conn, .. } => {
                if self.piles.get(&pile).is_none_or(|l| l.sender.conn != conn) {
                    return;
                }
                if let Some(link) = self.piles.remove(&pile) {
                    for c in link.commands {
                        self.pile_command_done(
                            c.id,
                            voltline_protocol::sync::CommandOutcome::Failed {
                                reason: "the pile disconnected before answering".into(),
                            },
                        );
                    }
                }
                for id in self.connectors_of(pile) {
                    self.step_connector(id, Input::PileDisconnected, None).await;
                }
                self.publish_view();
            }
        }
    }

    async fn on_frame(&mut self, pile: PileCode, frame: Frame) {
        if let Message::BidirectionalMeter(b) = &frame.message {
            let b = b.clone();
            self.on_pile_frame(pile, frame).await;
            self.grid_meter(&b).await;
            return;
        }
        self.on_pile_frame(pile, frame).await;
    }

    async fn on_pile_frame(&mut self, pile: PileCode, frame: Frame) {
        let seq = frame.sequence;
        let cached = self.store.site_config();
        let tariff = cached.as_ref().and_then(|c| c.tariff.as_ref());
        match frame.message {
            Message::Login(login) => {
                let n = login.connector_count.clamp(1, MAX_CONNECTORS_PER_PILE);
                if let Some(link) = self.piles.get_mut(&pile) {
                    link.connectors = n;
                }
                self.send(pile, Some(seq), piles::login_reply(pile));
                for c in 1..=n {
                    if let Some(connector) = ConnectorNo::new(c) {
                        self.step_connector(
                            ConnectorId { pile, connector },
                            Input::PileConnected,
                            None,
                        )
                        .await;
                    }
                }
                self.publish_view();
            }
            Message::BillingModelVerify(v) => {
                self.send(
                    pile,
                    Some(seq),
                    piles::verify_reply(pile, v.model_no, tariff),
                );
            }
            Message::BillingModelRequest(_) => match piles::model_reply(pile, tariff) {
                Ok(reply) => self.send(pile, Some(seq), reply),
                Err(e) => {
                    tracing::warn!(%pile, error = %e, "cannot send the pile a billing model")
                }
            },
            Message::TimeSyncReply(_) => {
                self.pile_command_answered(pile, piles::PileCommandKind::SyncTime, true);
            }
            Message::RebootReply(r) => {
                let ok =
                    r.result == voltline_protocol::message::maintenance::RebootResult::Succeeded;
                self.pile_command_answered(pile, piles::PileCommandKind::Reboot, ok);
            }
            message => match crate::connector::frame_target(&message) {
                Some((_, Some(connector))) if connector.get() <= MAX_CONNECTORS_PER_PILE => {
                    self.step_connector(
                        ConnectorId { pile, connector },
                        Input::Frame(message),
                        Some(seq),
                    )
                    .await;
                }
                _ => {
                    tracing::trace!(%pile, frame = message.name(), "frame with nothing for the site to do")
                }
            },
        }
    }

    fn connectors_of(&self, pile: PileCode) -> Vec<ConnectorId> {
        let mut ids: Vec<ConnectorId> = self
            .machines
            .keys()
            .filter(|id| id.pile == pile)
            .copied()
            .collect();
        ids.sort();
        ids
    }

    /// Sends `message` to `pile` if it is connected; counts what went out or was dropped.
    fn send(&mut self, pile: PileCode, sequence: Option<u16>, message: Message) {
        let Some(link) = self.piles.get_mut(&pile) else {
            tracing::debug!(%pile, frame = message.name(), "pile not connected; frame not sent");
            return;
        };
        let port = link.sender.port;
        match link.send(sequence, message) {
            Ok(()) => {
                self.metrics
                    .frames_out
                    .get_or_create(&PortLabels { port })
                    .inc();
            }
            Err(e) => {
                self.metrics
                    .frames_out_dropped
                    .get_or_create(&PortLabels { port })
                    .inc();
                tracing::warn!(%pile, error = %e, "frame to the pile dropped");
            }
        }
    }

    async fn on_tick(&mut self) {
        let mut ids: Vec<ConnectorId> = self.machines.keys().copied().collect();
        ids.sort();
        for id in ids {
            self.step_connector(id, Input::Tick, None).await;
        }
        self.expire_pile_commands();
        self.grid_tick().await;
        let ledger = self.store.ledger();
        self.metrics
            .outbox_depth
            .set(ledger.head.saturating_sub(ledger.acked) as i64);
        self.metrics.outbox_bytes.set(ledger.bytes as i64);
        self.metrics.store_refusing.set(i64::from(
            self.store.admission() == crate::connector::Admission::Refuse,
        ));
        self.publish_view();
    }

    fn publish_view(&self) {
        let sessions = self
            .machines
            .values()
            .filter(|m| m.state().session().is_some())
            .count();
        self.view.send_replace(SiteView {
            piles_connected: self.piles.len(),
            connectors: self.machines.len(),
            sessions,
        });
    }
}
