//! Model-level property test of the ledger: random interleavings of top-ups, holds, posts,
//! voids, refunds, settlements (with overruns and charger mismatches), replays of earlier
//! sets and conflicting reuses of their keys, applied to the in-memory `Ledger`.
//!
//! Concurrency is modelled the way it happens in the service: an operation is *planned* from
//! the balances read at one moment and *committed* either at once or later, after other
//! operations committed in between (a stale read). After every step the test checks that the
//! ledger balances, that every balance equals the sum of its postings and is within its
//! limit, that every idempotency key was applied once (a replay or a refusal changes
//! nothing), that a hold never exceeded the available balance it was committed against, and
//! that wallets and receivables match an independent tally of what was committed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rust_decimal::Decimal;
use voltline_cloud::ledger::*;
use voltline_protocol::domain::{AccountId, ConnectorNo, PileCode, SerialTime, TransactionSerial};
use voltline_protocol::tariff::{CostBreakdown, TariffVersion};
use voltline_protocol::{Energy, Money};

const CREDIT_CENTS: [i64; 2] = [0, 3_000];
const PROVIDERS: [&str; 2] = ["alipay", "wechat"];
const MINIMUM_HOLD_CENTS: i64 = 100;

/// A payment: top-up or refund. References come from a small pool, so keys get reused.
#[derive(Debug, Clone)]
struct Pay {
    driver: usize,
    provider: usize,
    reference: u8,
    cents: i64,
}

/// A transaction record to settle, against a placed hold (`slot`) or none (offline start).
#[derive(Debug, Clone)]
struct Record {
    slot: Option<usize>,
    driver: usize,
    energy_cents: i64,
    service_cents: i64,
    /// The charger's total minus ours, in 0.0001 yuan.
    charger_delta: i64,
}

/// An operation planned from the balances as they stand.
#[derive(Debug, Clone)]
enum Plan {
    TopUp(Pay),
    Refund(Pay),
    Hold {
        driver: usize,
        requested: Option<i64>,
    },
    Void {
        slot: usize,
    },
    Post {
        slot: usize,
        permille: i64,
    },
    Settle(Record),
}

#[derive(Debug, Clone)]
enum Step {
    /// Plan and commit at once.
    Now(Plan),
    /// Plan now, commit at a later `Commit` (a concurrent request whose read goes stale).
    Later(Plan),
    Commit(usize),
    /// Resend an applied set exactly.
    Replay(usize),
    /// Reuse an applied set's key with other content.
    Conflict(usize),
}

/// What a committed set changes in the independent tally.
#[derive(Debug, Clone)]
enum Effect {
    Wallet {
        driver: usize,
        delta: Money,
    },
    Hold {
        driver: usize,
        hold: Hold,
    },
    Settle {
        driver: usize,
        charged: Money,
        receivable: Money,
    },
    None,
}

#[derive(Default)]
struct World {
    ledger: Ledger,
    holds: Vec<(usize, Hold)>,
    queue: Vec<(TransferSet, Effect)>,
    applied: Vec<TransferSet>,
    applied_keys: BTreeSet<IdempotencyKey>,
    wallet: [Money; 2],
    receivable: [Money; 2],
    next_order: u32,
    next_record: u16,
    stats: BTreeMap<&'static str, u32>,
}

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}
fn account(d: usize) -> AccountId {
    format!("acc-{d}").parse().unwrap()
}
fn wallet(d: usize) -> LedgerAccountId {
    LedgerAccountId::DriverWallet(account(d))
}
fn provider(p: usize) -> ProviderId {
    ProviderId::new(PROVIDERS[p]).unwrap()
}
fn pick<T: Clone>(items: &[T], slot: usize) -> Option<T> {
    items.get(slot % items.len().max(1)).cloned()
}
fn cost_of(energy: i64, service: i64) -> CostBreakdown {
    CostBreakdown {
        tariff_version: TariffVersion(1),
        lines: vec![],
        total_energy: Energy::ZERO,
        energy_fee_exact: cents(energy),
        service_fee_exact: cents(service),
        energy_fee: cents(energy),
        service_fee: cents(service),
        total: cents(energy + service),
    }
}
fn record_ref(counter: u16) -> RecordRef {
    let pile = PileCode::from_number(32_010_600_019_236).unwrap();
    let (year, month, day, hour, minute, second) = (26, 11, 25, 5, 0, 0);
    let at = SerialTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    };
    let connector = ConnectorNo::new(1).unwrap();
    let serial = TransactionSerial::compose(pile, connector, at, counter).unwrap();
    RecordRef { pile, serial }
}

impl World {
    fn new() -> World {
        let mut ledger = Ledger::new();
        for (d, credit) in CREDIT_CENTS.into_iter().enumerate() {
            let policy = AccountPolicy::wallet(cents(credit)).unwrap();
            ledger.open_account(wallet(d), policy).unwrap();
        }
        let mut others = vec![LedgerAccountId::OperatorPayable("op-1".parse().unwrap())];
        others.extend((0..2).map(|d| LedgerAccountId::Receivable(account(d))));
        others.extend((0..2).map(|p| LedgerAccountId::ProviderClearing(provider(p))));
        for id in others {
            let policy = AccountPolicy::default_for(&id);
            ledger.open_account(id, policy).unwrap();
        }
        World {
            ledger,
            ..World::default()
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    fn available(&self, d: usize) -> Money {
        self.ledger.account(&wallet(d)).unwrap().available()
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Now(plan) | Step::Later(plan) => {
                if let Some((set, effect)) = self.plan(plan) {
                    match step {
                        Step::Now(_) => drop(self.commit(set, effect)),
                        _ => self.queue.push((set, effect)),
                    }
                }
            }
            Step::Commit(slot) => {
                if !self.queue.is_empty() {
                    let (set, effect) = self.queue.remove(slot % self.queue.len());
                    self.count("stale commits");
                    drop(self.commit(set, effect));
                }
            }
            Step::Replay(slot) => {
                if let Some(set) = pick(&self.applied, *slot) {
                    assert!(
                        self.commit(set, Effect::None)
                            .expect("a replay succeeds")
                            .replay
                    );
                }
            }
            Step::Conflict(slot) => {
                if let Some(mut set) = pick(&self.applied, *slot) {
                    match set.legs.first_mut() {
                        Some(leg) if slot % 2 == 0 => leg.amount += cents(1),
                        _ => set.memo.external_ref = Some("tampered".into()),
                    }
                    let e = self.commit(set, Effect::None).unwrap_err();
                    assert!(matches!(e, LedgerError::IdempotencyConflict { .. }), "{e}");
                }
            }
        }
        self.check();
    }

    /// Plans an operation from the balances as they stand; `None` if the planner refused it.
    fn plan(&mut self, plan: &Plan) -> Option<(TransferSet, Effect)> {
        match plan {
            Plan::TopUp(p) => {
                let r = ExternalRef::new(format!("pay-{}", p.reference)).unwrap();
                let set = top_up(
                    &provider(p.provider),
                    &r,
                    &account(p.driver),
                    cents(p.cents),
                );
                let effect = Effect::Wallet {
                    driver: p.driver,
                    delta: cents(p.cents),
                };
                Some((set.unwrap(), effect))
            }
            Plan::Refund(p) => {
                let r = ExternalRef::new(format!("rf-{}", p.reference)).unwrap();
                let refundable = self.available(p.driver).max(Money::ZERO);
                let amount = cents(p.cents);
                match refund(
                    &provider(p.provider),
                    &r,
                    &account(p.driver),
                    amount,
                    refundable,
                ) {
                    Ok(set) => Some((
                        set,
                        Effect::Wallet {
                            driver: p.driver,
                            delta: -amount,
                        },
                    )),
                    Err(e) => {
                        assert!(
                            matches!(e, LedgerError::RefundExceedsRefundable { .. }),
                            "{e}"
                        );
                        None
                    }
                }
            }
            &Plan::Hold { driver, requested } => {
                self.next_order += 1;
                let available = self.available(driver);
                let request = HoldRequest {
                    order: format!("o-{}", self.next_order).parse().unwrap(),
                    account: account(driver),
                    requested: requested.map(cents),
                    default_hold: cents(5_000),
                    minimum_hold: cents(MINIMUM_HOLD_CENTS),
                    available,
                    expires_at: None,
                };
                let asked_too_little = requested.is_some_and(|r| r < MINIMUM_HOLD_CENTS);
                match place_hold(&request) {
                    Ok((set, hold)) => {
                        assert!(hold.amount <= available && !asked_too_little);
                        Some((set, Effect::Hold { driver, hold }))
                    }
                    Err(LedgerError::InsufficientFunds { .. }) => {
                        assert!(available < cents(MINIMUM_HOLD_CENTS) && !asked_too_little);
                        self.count("insufficient funds at start");
                        None
                    }
                    Err(e) => {
                        assert!(matches!(e, LedgerError::BadInput { .. }) && asked_too_little);
                        None
                    }
                }
            }
            &Plan::Void { slot } => {
                pick(&self.holds, slot).map(|(_, h)| (void_hold(&h), Effect::None))
            }
            &Plan::Post { slot, permille } => {
                // A raw partial post of a hold, its proceeds passed on in the same set.
                let (driver, hold) = pick(&self.holds, slot)?;
                let amount = cents((hold.amount.to_scaled(2).unwrap() * permille / 1000).max(1));
                let clearing = LedgerAccountId::SessionClearing;
                let post = Transfer {
                    kind: TransferKind::Post {
                        pending: hold.pending.clone(),
                    },
                    ..Transfer::single(wallet(driver), clearing.clone(), amount)
                };
                let fee = Transfer::single(clearing, LedgerAccountId::PlatformRevenue, amount);
                let key = IdempotencyKey::new(format!("post:{}", hold.order)).unwrap();
                let set = TransferSet {
                    key,
                    legs: vec![post, fee],
                    memo: Memo::new(Reason::Adjustment),
                };
                Some((
                    set,
                    Effect::Wallet {
                        driver,
                        delta: -amount,
                    },
                ))
            }
            Plan::Settle(r) => Some(self.plan_settlement(r)),
        }
    }

    fn plan_settlement(&mut self, r: &Record) -> (TransferSet, Effect) {
        let hold = r.slot.and_then(|s| pick(&self.holds, s));
        let driver = hold.as_ref().map_or(r.driver, |(d, _)| *d);
        self.next_record += 1;
        let cost = cost_of(r.energy_cents, r.service_cents);
        let input = SettlementInput {
            record: record_ref(self.next_record),
            order: match &hold {
                Some((_, h)) => h.order.clone(),
                None => format!("off-{}", self.next_record).parse().unwrap(),
            },
            account: account(driver),
            operator: "op-1".parse().unwrap(),
            hold: hold.map(|(_, h)| h),
            tariff_version_at_start: TariffVersion(1),
            cost: &cost,
            charger_reported_total: cost.total + Money::from_scaled(r.charger_delta, 4),
            platform_fee: PlatformFeeRule::new(Decimal::new(125, 1)).unwrap(),
            wallet_available: self.available(driver),
            credit_limit: cents(CREDIT_CENTS[driver]),
        };
        let plan = plan_settlement(&input).unwrap();
        assert_eq!(plan.split.operator + plan.split.platform_fee, plan.cost);
        assert_eq!(
            plan.from_hold + plan.from_wallet + plan.receivable,
            plan.cost
        );
        assert_eq!(plan.mismatch.is_some(), r.charger_delta.abs() > 100);
        if plan.mismatch.is_some() {
            self.count("mismatches");
        }
        let (charged, receivable) = (plan.from_hold + plan.from_wallet, plan.receivable);
        (
            plan.set,
            Effect::Settle {
                driver,
                charged,
                receivable,
            },
        )
    }

    fn commit(&mut self, set: TransferSet, effect: Effect) -> Result<Applied, LedgerError> {
        let before = self.ledger.clone();
        let result = self.ledger.apply(set.clone());
        match &result {
            Ok(a) if a.replay => {
                assert!(
                    self.applied_keys.contains(&set.key),
                    "replay of a key never applied"
                );
                assert_eq!(a.set, set);
                assert_eq!(self.ledger, before, "a replay changed the ledger");
                self.count("replays");
            }
            Ok(_) => {
                assert!(
                    self.applied_keys.insert(set.key.clone()),
                    "a key was applied twice"
                );
                self.applied.push(set);
                self.count("applied");
                match effect {
                    Effect::Wallet { driver, delta } => self.wallet[driver] += delta,
                    Effect::Hold { driver, hold } => {
                        let available = before.account(&wallet(driver)).unwrap().available();
                        assert!(
                            hold.amount <= available,
                            "a hold exceeded the available balance"
                        );
                        self.holds.push((driver, hold));
                    }
                    Effect::Settle {
                        driver,
                        charged,
                        receivable,
                    } => {
                        self.wallet[driver] -= charged;
                        self.receivable[driver] += receivable;
                        if !receivable.is_zero() {
                            self.count("receivables");
                        }
                    }
                    Effect::None => {}
                }
            }
            Err(e) => {
                assert_eq!(self.ledger, before, "a refused set changed the ledger");
                match e {
                    // A plan made from a balance that changed since: the ledger's own check.
                    LedgerError::InsufficientFunds { .. } => self.count("stale plans refused"),
                    LedgerError::PendingClosed { .. } => self.count("closed holds"),
                    LedgerError::IdempotencyConflict { key } => {
                        assert!(self.applied_keys.contains(key));
                        self.count("conflicts");
                    }
                    other => panic!("the planners produced a set the ledger refused: {other}"),
                }
            }
        }
        result
    }

    fn check(&self) {
        assert_eq!(self.ledger.check_invariants(), Ok(()));
        let total =
            |f: BalanceField| -> Money { self.ledger.accounts().map(|a| a.balance.get(f)).sum() };
        assert_eq!(
            total(BalanceField::DebitsPosted),
            total(BalanceField::CreditsPosted)
        );
        assert_eq!(
            total(BalanceField::DebitsPending),
            total(BalanceField::CreditsPending)
        );
        for a in self.ledger.accounts() {
            if let Some(limit) = a.policy.lower_limit {
                assert!(a.available() >= limit, "{} below its limit", a.id);
            }
        }
        assert_eq!(self.ledger.applied_count(), self.applied_keys.len());
        for d in 0..2 {
            assert_eq!(
                self.ledger.account(&wallet(d)).unwrap().posted(),
                self.wallet[d]
            );
            let owed = self
                .ledger
                .account(&LedgerAccountId::Receivable(account(d)))
                .unwrap();
            assert_eq!(owed.posted(), self.receivable[d]);
        }
        let clearing = self
            .ledger
            .account(&LedgerAccountId::SessionClearing)
            .unwrap();
        assert_eq!(
            clearing.posted(),
            Money::ZERO,
            "session clearing must net to zero"
        );
        let open =
            |h: &Hold| self.ledger.pending(&h.pending).unwrap().status == PendingStatus::Open;
        let held: Money = self
            .holds
            .iter()
            .filter(|(_, h)| open(h))
            .map(|(_, h)| h.amount)
            .sum();
        assert_eq!(clearing.balance.credits_pending, held);
    }
}

fn plan() -> impl Strategy<Value = Plan> {
    let pay = (
        0..2usize,
        0..2usize,
        0..4u8,
        prop_oneof![Just(1_000i64), Just(5_000), 1..20_000i64],
    )
        .prop_map(|(driver, provider, reference, cents)| Pay {
            driver,
            provider,
            reference,
            cents,
        });
    let record = (
        prop::option::weighted(0.8, any::<usize>()),
        0..2usize,
        0..6_000i64,
        0..2_500i64,
        -300..300i64,
    )
        .prop_map(
            |(slot, driver, energy_cents, service_cents, charger_delta)| Record {
                slot,
                driver,
                energy_cents,
                service_cents,
                charger_delta,
            },
        );
    prop_oneof![
        3 => pay.clone().prop_map(Plan::TopUp),
        1 => pay.prop_map(Plan::Refund),
        3 => (0..2usize, prop::option::of(50..8_000i64))
            .prop_map(|(driver, requested)| Plan::Hold { driver, requested }),
        1 => any::<usize>().prop_map(|slot| Plan::Void { slot }),
        1 => (any::<usize>(), 1..=1_000i64).prop_map(|(slot, permille)| Plan::Post { slot, permille }),
        3 => record.prop_map(Plan::Settle),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        7 => plan().prop_map(Step::Now),
        3 => plan().prop_map(Step::Later),
        2 => any::<usize>().prop_map(Step::Commit),
        1 => any::<usize>().prop_map(Step::Replay),
        1 => any::<usize>().prop_map(Step::Conflict),
    ]
}

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_interleavings_keep_every_ledger_invariant(steps in prop::collection::vec(step(), 1..60)) {
        let mut world = World::new();
        for s in &steps {
            world.step(s);
        }
    }
}

/// The generator is not vacuous: over a fixed seed, every outcome the property is about occurs.
#[test]
fn random_operations_reach_every_outcome() {
    let stats = RefCell::new(BTreeMap::<&'static str, u32>::new());
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config(), rng);
    runner
        .run(&prop::collection::vec(step(), 1..60), |steps| {
            let mut world = World::new();
            for s in &steps {
                world.step(s);
            }
            for (what, n) in world.stats {
                *stats.borrow_mut().entry(what).or_default() += n;
            }
            Ok(())
        })
        .unwrap();
    let stats = stats.into_inner();
    println!("{stats:?}");
    for what in [
        "applied",
        "replays",
        "conflicts",
        "insufficient funds at start",
        "stale plans refused",
        "closed holds",
        "stale commits",
        "receivables",
        "mismatches",
    ] {
        assert!(
            stats.get(what).copied().unwrap_or(0) > 0,
            "no {what} in 256 cases: {stats:?}"
        );
    }
}
