//! One charger's task: drives the [`Charger`] state machine over a [`Link`], with the pile's
//! flash, wire faults, its workload and reconnect backoff. It decides no protocol question.
//!
//! Order inside one step, which the billing guarantees rest on: the state machine handles
//! the input; the durable state it changed is written (memory, and the state dir if any);
//! only then do the step's frames go on the wire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use jiff::tz::TimeZone;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use voltline_protocol::message::common::PhysicalCardNo;

use crate::charger::{Charger, ChargerSpec, Input, Output, StartBy};
use crate::clock::{SimClock, SimTime};
use crate::events::{ChargerSnapshot, SimEvent};
use crate::faults::{self, Fault, WireShaper};
pub use crate::flash::Flash;
use crate::rng::SplitMix64;
use crate::transport::backoff::{Backoff, BackoffConfig};
use crate::transport::{Incoming, Link, Transport};
use crate::workload::{Action, Workload};

/// Commands from a `ChargerHandle`.
#[derive(Debug)]
pub enum Control {
    /// Boxed: keeps the control queue's slots small (10,000 queues).
    Input(Box<Input>),
    Fault(Fault),
    Snapshot(oneshot::Sender<ChargerSnapshot>),
    Shutdown,
}

/// Fleet-wide counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub bad_frames: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
}

/// Everything one charger task needs.
pub struct ChargerTask {
    pub spec: ChargerSpec,
    pub transport: Transport,
    pub clock: SimClock,
    pub zone: TimeZone,
    pub control: mpsc::Receiver<Control>,
    pub events: broadcast::Sender<SimEvent>,
    pub counters: Arc<Counters>,
    pub flash: Flash,
    pub rng: SplitMix64,
    pub backoff: BackoffConfig,
    /// Real delay before the first connection (the ramp).
    pub first_connect_after: Duration,
    pub workload: Option<Workload>,
    /// The card the workload's card starts present (`None`: the workload's own).
    pub card: Option<PhysicalCardNo>,
}

/// Why a connected (or waiting) phase ended.
enum PhaseEnd {
    Shutdown,
    /// Reconnect after backoff.
    Dropped(String),
    Reboot(u64),
    PowerLoss(u64),
    /// The wait was over.
    Elapsed,
}

/// What woke the task.
enum Wake {
    Control(Option<Control>),
    Incoming(Incoming),
    Timer,
}

async fn recv(link: &mut Option<&mut Link>) -> Incoming {
    match link {
        Some(l) => l.recv().await,
        None => std::future::pending().await,
    }
}

impl ChargerTask {
    /// Runs until shut down.
    pub async fn run(mut self) {
        let now = self.clock.now();
        let mut charger = self.power_up(now);
        if let Some(state) = charger.take_durable() {
            Box::pin(self.flash.write(state)).await;
        }
        let mut backoff = Backoff::new(self.backoff);
        let mut shaper = WireShaper::default();
        let mut wait = self.first_connect_after;
        loop {
            let until = Instant::now() + wait;
            let mut none: Option<&mut Link> = None;
            match Box::pin(self.phase(&mut charger, &mut none, &mut shaper, Some(until))).await {
                PhaseEnd::Shutdown => return,
                PhaseEnd::PowerLoss(off) => {
                    charger = Box::pin(self.power_cycle(charger, off)).await;
                    wait = Duration::ZERO;
                    continue;
                }
                PhaseEnd::Reboot(down_ms) => {
                    wait = self.clock.real_duration(down_ms);
                    continue;
                }
                PhaseEnd::Dropped(_) | PhaseEnd::Elapsed => {}
            }
            // Boxed: connecting (MQTT especially) is a large future, alive only briefly.
            let end = match Box::pin(Link::connect(&self.transport, &self.spec.pile)).await {
                Ok(mut link) => {
                    self.counters.connects.fetch_add(1, Ordering::Relaxed);
                    let end = {
                        let mut l = Some(&mut link);
                        match Box::pin(self.step(
                            &mut charger,
                            Input::Connected,
                            &mut l,
                            &mut shaper,
                        ))
                        .await
                        {
                            Some(end) => end,
                            None => {
                                Box::pin(self.phase(&mut charger, &mut l, &mut shaper, None)).await
                            }
                        }
                    };
                    Box::pin(link.close()).await;
                    self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                    end
                }
                Err(e) => PhaseEnd::Dropped(e),
            };
            shaper.reset();
            let was_online = charger.is_online();
            let mut out = Vec::new();
            charger.handle(self.clock.now(), Input::Disconnected, &mut out);
            self.emit(out);
            match end {
                PhaseEnd::Shutdown => return,
                PhaseEnd::Dropped(reason) => {
                    if was_online {
                        backoff.reset();
                    }
                    wait = backoff.next(&mut self.rng);
                    tracing::debug!(pile = %self.spec.pile, ?wait, "link down: {reason}");
                    self.event(SimEvent::Disconnected {
                        pile: self.spec.pile,
                        reason,
                    });
                }
                PhaseEnd::Reboot(down_ms) => {
                    self.event(SimEvent::Disconnected {
                        pile: self.spec.pile,
                        reason: "rebooting".into(),
                    });
                    backoff.reset();
                    wait = self.clock.real_duration(down_ms);
                }
                PhaseEnd::PowerLoss(off) => {
                    self.event(SimEvent::Disconnected {
                        pile: self.spec.pile,
                        reason: "power lost".into(),
                    });
                    charger = Box::pin(self.power_cycle(charger, off)).await;
                    wait = Duration::ZERO;
                }
                PhaseEnd::Elapsed => wait = Duration::ZERO,
            }
        }
    }

    fn power_up(&mut self, now: SimTime) -> Charger {
        let epoch = self.clock.epoch();
        match self.flash.read() {
            Some(state) => {
                let mut out = Vec::new();
                let c = Charger::restore(
                    self.spec.clone(),
                    epoch,
                    self.zone.clone(),
                    now,
                    state,
                    &mut out,
                );
                self.emit(out);
                c
            }
            None => Charger::new(self.spec.clone(), epoch, self.zone.clone(), now),
        }
    }

    /// Power off for `off_ms` simulated: the charger's memory is gone; only flash remains.
    async fn power_cycle(&mut self, charger: Charger, off_ms: u64) -> Charger {
        drop(charger);
        self.event(SimEvent::PowerLost {
            pile: self.spec.pile,
        });
        let until = Instant::now() + self.clock.real_duration(off_ms);
        // While off, nothing is answered (a snapshot request gets no reply: dropped sender).
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                ctl = self.control.recv() => match ctl {
                    None | Some(Control::Shutdown) => break,
                    Some(_) => {}
                },
            }
        }
        let now = self.clock.now();
        let mut c = self.power_up(now);
        if let Some(state) = c.take_durable() {
            Box::pin(self.flash.write(state)).await;
        }
        c
    }

    /// Runs the charger, online (with a link) or offline (until `until`).
    async fn phase(
        &mut self,
        charger: &mut Charger,
        link: &mut Option<&mut Link>,
        shaper: &mut WireShaper,
        until: Option<Instant>,
    ) -> PhaseEnd {
        loop {
            let mut wake_at = charger.next_deadline();
            if let Some(w) = &self.workload {
                wake_at = wake_at.min(w.next_at());
            }
            let mut deadline = self.clock.deadline(wake_at);
            if let Some(u) = until {
                deadline = deadline.min(u);
            }
            if let Some(r) = shaper.release_at() {
                deadline = deadline.min(r);
            }
            let wake = tokio::select! {
                c = self.control.recv() => Wake::Control(c),
                i = recv(link) => Wake::Incoming(i),
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
            };
            let end = match wake {
                Wake::Control(None | Some(Control::Shutdown)) => return PhaseEnd::Shutdown,
                Wake::Control(Some(Control::Snapshot(tx))) => {
                    let end = Box::pin(self.step(charger, Input::Tick, link, shaper)).await;
                    let _ = tx.send(charger.snapshot());
                    end
                }
                Wake::Control(Some(Control::Input(i))) => {
                    Box::pin(self.step(charger, *i, link, shaper)).await
                }
                Wake::Control(Some(Control::Fault(f))) => {
                    Box::pin(self.fault(charger, f, link, shaper)).await
                }
                Wake::Incoming(Incoming::Frame(f)) => {
                    self.counters
                        .frames_received
                        .fetch_add(1, Ordering::Relaxed);
                    Box::pin(self.step(charger, Input::Frame(f), link, shaper)).await
                }
                Wake::Incoming(Incoming::Bad(e)) => {
                    self.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                    self.event(SimEvent::BadFrame {
                        pile: self.spec.pile,
                        error: e.to_string(),
                    });
                    None
                }
                Wake::Incoming(Incoming::Closed(reason)) => Some(PhaseEnd::Dropped(reason)),
                Wake::Timer => {
                    if until.is_some_and(|u| Instant::now() >= u) {
                        return PhaseEnd::Elapsed;
                    }
                    if let Some(held) = shaper.take_due(Instant::now()) {
                        if let Some(l) = link.as_deref_mut() {
                            self.counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                            if let Err(e) = l.write(held).await {
                                return PhaseEnd::Dropped(e);
                            }
                        }
                    }
                    let now = self.clock.now();
                    let actions = self
                        .workload
                        .as_mut()
                        .map(|w| w.due(now))
                        .unwrap_or_default();
                    let mut end = None;
                    for a in actions {
                        end = match a {
                            Action::Input(i) => {
                                let i = with_card(self.card, i);
                                Box::pin(self.step(charger, i, link, shaper)).await
                            }
                            Action::Fault(f) => {
                                Box::pin(self.fault(charger, f, link, shaper)).await
                            }
                        };
                        if end.is_some() {
                            break;
                        }
                    }
                    match end {
                        Some(e) => Some(e),
                        None => Box::pin(self.step(charger, Input::Tick, link, shaper)).await,
                    }
                }
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// Applies a fault: pile faults through the state machine, wire faults here.
    async fn fault(
        &mut self,
        charger: &mut Charger,
        fault: Fault,
        link: &mut Option<&mut Link>,
        shaper: &mut WireShaper,
    ) -> Option<PhaseEnd> {
        if let Fault::Pile(f) = fault {
            return self.step(charger, Input::Fault(f), link, shaper).await;
        }
        self.event(SimEvent::FaultInjected {
            pile: self.spec.pile,
            fault: format!("{fault:?}"),
        });
        match fault {
            Fault::Pile(_) => None,
            Fault::DropConnection => link
                .is_some()
                .then(|| PhaseEnd::Dropped("fault: connection dropped".into())),
            Fault::Garbage { bytes } => {
                let l = link.as_deref_mut()?;
                let junk = faults::garbage(&mut self.rng, bytes);
                l.write(junk).await.err().map(PhaseEnd::Dropped)
            }
            Fault::DuplicateNext { frames } => {
                shaper.duplicate(frames);
                None
            }
            Fault::ReorderNext { frames } => {
                shaper.reorder(frames);
                None
            }
            Fault::PowerLoss { off_s } => Some(PhaseEnd::PowerLoss(off_s as u64 * 1_000)),
        }
    }

    /// One step of the state machine, then its outputs.
    async fn step(
        &mut self,
        charger: &mut Charger,
        input: Input,
        link: &mut Option<&mut Link>,
        shaper: &mut WireShaper,
    ) -> Option<PhaseEnd> {
        let mut out = Vec::new();
        charger.handle(self.clock.now(), input, &mut out);
        // Flash first, then the wire: a record is durable before it is sent.
        if let Some(state) = charger.take_durable() {
            Box::pin(self.flash.write(state)).await;
        }
        let mut end = None;
        for o in out {
            match o {
                Output::Send(frame) => {
                    if end.is_some() {
                        continue;
                    }
                    let Some(l) = link.as_deref_mut() else {
                        continue;
                    };
                    let mut buf = BytesMut::with_capacity(voltline_protocol::frame::MAX_FRAME_LEN);
                    if let Err(e) = frame.encode(&mut buf) {
                        tracing::error!(pile = %self.spec.pile, "cannot encode {}: {e}", frame.message.name());
                        continue;
                    }
                    for bytes in shaper.shape(buf.freeze()) {
                        self.counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = l.write(bytes).await {
                            end = Some(PhaseEnd::Dropped(e));
                            break;
                        }
                    }
                }
                Output::Drop(reason) => {
                    end.get_or_insert(PhaseEnd::Dropped(reason.to_string()));
                }
                Output::Reboot { down_ms } => {
                    end = Some(PhaseEnd::Reboot(down_ms));
                }
                Output::Event(e) => {
                    if let Some(w) = self.workload.as_mut() {
                        w.on_event(&e, self.clock.now());
                    }
                    self.event(e);
                }
            }
        }
        end
    }

    fn emit(&mut self, out: Vec<Output>) {
        for o in out {
            if let Output::Event(e) = o {
                self.event(e);
            }
        }
    }

    fn event(&self, e: SimEvent) {
        // No receiver is fine: nobody is listening.
        let _ = self.events.send(e);
    }
}

/// `input` with `card` presented instead when it is a card start and `card` is set.
fn with_card(card: Option<PhysicalCardNo>, input: Input) -> Input {
    match (card, input) {
        (
            Some(card),
            Input::PlugIn {
                connector,
                vehicle,
                start: StartBy::Card(_),
            },
        ) => Input::PlugIn {
            connector,
            vehicle,
            start: StartBy::Card(card),
        },
        (_, input) => input,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_card_starts_take_the_piles_own_card() {
        use super::*;
        use crate::vehicle::VehicleSpec;
        let own = PhysicalCardNo([0, 0, 0, 0, 0xCA, 0x4D, 0, 7]);
        let plug = |start| Input::PlugIn {
            connector: 1,
            vehicle: VehicleSpec::standard(),
            start,
        };
        let random = PhysicalCardNo([0, 0, 0, 0, 1, 2, 3, 4]);
        let start_of = |i: Input| match i {
            Input::PlugIn { start, .. } => start,
            other => panic!("not a plug-in: {other:?}"),
        };
        assert_eq!(
            start_of(with_card(Some(own), plug(StartBy::Card(random)))),
            StartBy::Card(own)
        );
        assert_eq!(
            start_of(with_card(None, plug(StartBy::Card(random)))),
            StartBy::Card(random)
        );
        assert_eq!(
            start_of(with_card(Some(own), plug(StartBy::Vin))),
            StartBy::Vin
        );
        assert!(matches!(with_card(Some(own), Input::Tick), Input::Tick));
    }

    #[test]
    fn a_charger_task_stays_small_in_memory() {
        use super::*;
        eprintln!("Control {}", std::mem::size_of::<Control>());
        eprintln!("Charger {}", std::mem::size_of::<Charger>());
        eprintln!("Input {}", std::mem::size_of::<Input>());
        eprintln!("Output {}", std::mem::size_of::<Output>());
        eprintln!("ChargerTask {}", std::mem::size_of::<ChargerTask>());
        eprintln!("Link {}", std::mem::size_of::<Link>());
        eprintln!("Workload {}", std::mem::size_of::<Workload>());
        eprintln!(
            "Connector {}",
            std::mem::size_of::<crate::charger::connector::Connector>()
        );
        eprintln!("SimEvent {}", std::mem::size_of::<SimEvent>());
        let (_tx, rx) = mpsc::channel(1);
        let (ev, _) = broadcast::channel(1);
        let pile = voltline_protocol::domain::PileCode::from_number(1).unwrap();
        let task = ChargerTask {
            spec: ChargerSpec::ac(pile),
            transport: Transport::Tcp { addr: "x".into() },
            clock: SimClock::start(crate::clock::Speed::REAL_TIME, jiff::Timestamp::UNIX_EPOCH),
            zone: TimeZone::UTC,
            control: rx,
            events: ev,
            counters: Arc::new(Counters::default()),
            flash: Flash {
                mem: Arc::new(std::sync::Mutex::new(None)),
                dir: None,
                journal: None,
            },
            rng: SplitMix64::new(1),
            backoff: BackoffConfig::default(),
            first_connect_after: Duration::ZERO,
            workload: None,
            card: None,
        };
        let mut task = task;
        let mut charger = task.power_up(SimTime::ZERO);
        let mut shaper = WireShaper::default();
        let mut none: Option<&mut Link> = None;
        {
            let f = task.phase(&mut charger, &mut none, &mut shaper, None);
            assert!(
                std::mem::size_of_val(&f) <= 1_024,
                "phase future {}",
                std::mem::size_of_val(&f)
            );
        }
        {
            let f = task.step(&mut charger, Input::Tick, &mut none, &mut shaper);
            eprintln!("StepFuture {}", std::mem::size_of_val(&f));
        }
        let fut = task.run();
        eprintln!("RunFuture {}", std::mem::size_of_val(&fut));
        // 10,000 of these must fit in ~200 MiB with their sockets and buffers.
        assert!(std::mem::size_of_val(&fut) <= 4_096);
        assert!(std::mem::size_of::<Control>() <= 32);
    }
}
