//! The transfer sets of a credit session, as pure functions (see the module doc of
//! [`super`] for the accounts). Keys are derived from the provider and the order (or refund
//! number), never from a clock, so every set applies once however often it is retried.
//!
//! | set | key | legs |
//! |---|---|---|
//! | authorisation | `credit:{p}:{order}` | `p-authorised` → wallet; wallet ⇒ session clearing (pending, the hold) |
//! | void | `credit-void:{p}:{order}` | void the hold; wallet → `p-authorised` |
//! | release at settlement | (inside `settle:…`) | wallet → `p-authorised`, the unused part |
//! | capture | `outcome:{p}:{order}` | `provider:p` ← `p-authorised` |
//! | decline | `outcome:{p}:{order}` | receivable ← `p-authorised` |
//! | late collection | `collect:{p}:{order}` | `provider:p` ← receivable |
//! | refund | `credit-refund:{p}:{refund no}` | operator payable → `provider:p` |
//!
//! A capture and a decline share one key on purpose: the ledger applies whichever comes first
//! and refuses the other as an idempotency conflict, so a session can never be both collected
//! and owed, whatever races between a callback, a capture answer and a query.
//!
//! The wallet legs that return credit may draw on the wallet's credit line
//! (`credit_allowed`): they only ever give back what the authorisation put in, and must not
//! fail because the driver's prepaid balance moved meanwhile.

use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, OperatorId, OrderId};
use voltline_protocol::Money;

use crate::ledger::{
    IdempotencyKey, LedgerAccountId, LedgerError, Memo, ProviderId, Reason, Transfer, TransferId,
    TransferKind, TransferSet,
};

/// The account of credit `provider` authorised and not yet collected: `provider:{p}-authorised`.
pub fn authorised_account(provider: &ProviderId) -> LedgerAccountId {
    LedgerAccountId::ProviderClearing(
        ProviderId::new(format!("{provider}-authorised"))
            .expect("credit provider names are short enough for the suffix"),
    )
}

/// The account of what `provider` collected for the platform: `provider:{p}`.
pub fn collected_account(provider: &ProviderId) -> LedgerAccountId {
    LedgerAccountId::ProviderClearing(provider.clone())
}

fn key(op: &str, provider: &ProviderId, id: &str) -> IdempotencyKey {
    IdempotencyKey::new(format!("{op}:{provider}:{id}"))
        .expect("provider names and order ids are key-safe and short enough")
}

/// The key of a session's outcome at the provider: its capture or its decline, never both.
pub fn outcome_key(provider: &ProviderId, order: &OrderId) -> IdempotencyKey {
    key("outcome", provider, order.as_str())
}

/// Whether a stored outcome set is a capture (else a decline).
pub fn is_capture(set: &TransferSet, provider: &ProviderId) -> bool {
    set.legs
        .first()
        .is_some_and(|l| l.debit == collected_account(provider))
}

/// The authorisation set's key.
pub fn credit_key(provider: &ProviderId, order: &OrderId) -> IdempotencyKey {
    key("credit", provider, order.as_str())
}

/// The id of the hold inside the authorisation set (stored as the order's `hold_id`).
pub fn credit_hold_id(provider: &ProviderId, order: &OrderId) -> TransferId {
    TransferId::new(credit_key(provider, order), 1)
}

/// The provider and order of a credit hold id, or `None` for any other hold.
pub fn parse_credit_hold(hold: &TransferId) -> Option<(ProviderId, OrderId)> {
    if hold.leg != 1 {
        return None;
    }
    let rest = hold.key.as_str().strip_prefix("credit:")?;
    let (provider, order) = rest.split_once(':')?;
    Some((ProviderId::new(provider).ok()?, order.parse().ok()?))
}

fn memo(reason: Reason, order: &OrderId, external: Option<&str>) -> Memo {
    Memo {
        order: Some(order.clone()),
        external_ref: external.map(str::to_owned),
        ..Memo::new(reason)
    }
}

/// The authorisation of `amount` for `order`: credit from `p-authorised` into the wallet and,
/// in the same set, the hold of exactly that amount (its first leg's amount is the session's
/// spending limit, as for a prepaid hold).
pub fn authorisation(
    provider: &ProviderId,
    order: &OrderId,
    account: &AccountId,
    amount: Money,
    expires_at: Timestamp,
) -> TransferSet {
    let wallet = LedgerAccountId::DriverWallet(account.clone());
    TransferSet {
        key: credit_key(provider, order),
        legs: vec![
            Transfer::single(authorised_account(provider), wallet.clone(), amount),
            Transfer {
                kind: TransferKind::Pending {
                    expires_at: Some(expires_at),
                },
                ..Transfer::single(wallet, LedgerAccountId::SessionClearing, amount)
            },
        ],
        memo: memo(Reason::Hold, order, None),
    }
}

fn give_back(provider: &ProviderId, account: &AccountId, amount: Money) -> Transfer {
    Transfer {
        credit_allowed: true,
        ..Transfer::single(
            LedgerAccountId::DriverWallet(account.clone()),
            authorised_account(provider),
            amount,
        )
    }
}

/// The release of a credit hold whose session never started: void it and give the credit back.
pub fn void(
    provider: &ProviderId,
    order: &OrderId,
    account: &AccountId,
    amount: Money,
) -> TransferSet {
    TransferSet {
        key: key("credit-void", provider, order.as_str()),
        legs: vec![
            Transfer {
                kind: TransferKind::Void {
                    pending: credit_hold_id(provider, order),
                },
                ..Transfer::single(
                    LedgerAccountId::DriverWallet(account.clone()),
                    LedgerAccountId::SessionClearing,
                    amount,
                )
            },
            give_back(provider, account, amount),
        ],
        memo: memo(Reason::Release, order, None),
    }
}

/// Settlement's hook: when `set` posts (or voids) a credit hold, the part of it released back
/// to the wallet goes on to `p-authorised` in the same set, right after the hold's leg, so the
/// driver never holds spendable credit. Any other set comes back unchanged.
pub fn with_credit_release(
    mut set: TransferSet,
    hold: Option<&TransferId>,
    account: &AccountId,
    released: Money,
) -> TransferSet {
    let Some((provider, _)) = hold.and_then(parse_credit_hold) else {
        return set;
    };
    let first_closes_it = set.legs.first().is_some_and(|l| {
        matches!(&l.kind, TransferKind::Post { pending } | TransferKind::Void { pending } if Some(pending) == hold)
    });
    if first_closes_it && released > Money::ZERO {
        set.legs.insert(1, give_back(&provider, account, released));
    }
    set
}

/// The capture of `amount`: collected from `p-authorised` to `provider:p`.
pub fn capture(
    provider: &ProviderId,
    order: &OrderId,
    amount: Money,
    transaction_ref: &str,
) -> TransferSet {
    TransferSet {
        key: outcome_key(provider, order),
        legs: vec![Transfer::single(
            collected_account(provider),
            authorised_account(provider),
            amount,
        )],
        memo: memo(Reason::Settlement, order, external(transaction_ref)),
    }
}

fn external(text: &str) -> Option<&str> {
    (!text.is_empty() && text.len() <= crate::ledger::limits::MAX_EXTERNAL_REF_BYTES)
        .then_some(text)
}

/// A refused capture: the amount becomes what the driver owes (their receivable).
pub fn decline(
    provider: &ProviderId,
    order: &OrderId,
    account: &AccountId,
    amount: Money,
) -> TransferSet {
    TransferSet {
        key: outcome_key(provider, order),
        legs: vec![Transfer::single(
            LedgerAccountId::Receivable(account.clone()),
            authorised_account(provider),
            amount,
        )],
        memo: memo(Reason::Adjustment, order, None),
    }
}

/// A late payment of a declined capture: the provider collected, the receivable is cleared.
pub fn collection(
    provider: &ProviderId,
    order: &OrderId,
    account: &AccountId,
    amount: Money,
    transaction_ref: &str,
) -> TransferSet {
    TransferSet {
        key: key("collect", provider, order.as_str()),
        legs: vec![Transfer::single(
            collected_account(provider),
            LedgerAccountId::Receivable(account.clone()),
            amount,
        )],
        memo: memo(Reason::Settlement, order, external(transaction_ref)),
    }
}

/// A refund of a captured credit payment, borne by the operator's payable (the platform fee
/// is kept); refused by the ledger when the payable is below it.
pub fn refund(
    provider: &ProviderId,
    order: &OrderId,
    operator: &OperatorId,
    out_refund_no: &str,
    amount: Money,
) -> Result<TransferSet, LedgerError> {
    crate::ledger::transfer::check_amount(amount).map_err(|why| LedgerError::BadInput {
        what: "refund",
        amount,
        why,
    })?;
    Ok(TransferSet {
        key: key("credit-refund", provider, out_refund_no),
        legs: vec![Transfer::single(
            LedgerAccountId::OperatorPayable(operator.clone()),
            collected_account(provider),
            amount,
        )],
        memo: memo(Reason::Refund, order, Some(out_refund_no)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AccountPolicy, Ledger};

    fn setup() -> (Ledger, ProviderId, OrderId, AccountId, OperatorId) {
        let p = ProviderId::new("wechat").unwrap();
        let acc = AccountId::new("acc-1").unwrap();
        let op = OperatorId::new("op-1").unwrap();
        let mut l = Ledger::new();
        for id in [
            LedgerAccountId::DriverWallet(acc.clone()),
            LedgerAccountId::Receivable(acc.clone()),
            LedgerAccountId::OperatorPayable(op.clone()),
            LedgerAccountId::SessionClearing,
            LedgerAccountId::PlatformRevenue,
            authorised_account(&p),
            collected_account(&p),
        ] {
            let policy = AccountPolicy::default_for(&id);
            l.open_account(id, policy).unwrap();
        }
        (l, p, OrderId::new("ord-1").unwrap(), acc, op)
    }

    fn m(c: i64) -> Money {
        Money::from_cents(c)
    }

    fn bal(l: &Ledger, id: &LedgerAccountId) -> Money {
        l.account(id).unwrap().posted()
    }

    fn post_hold(
        p: &ProviderId,
        o: &OrderId,
        acc: &AccountId,
        cost: i64,
        op: &OperatorId,
    ) -> TransferSet {
        let hold = credit_hold_id(p, o);
        let wallet = LedgerAccountId::DriverWallet(acc.clone());
        let set = TransferSet {
            key: IdempotencyKey::new("settle:x").unwrap(),
            legs: vec![
                Transfer {
                    kind: TransferKind::Post {
                        pending: hold.clone(),
                    },
                    ..Transfer::single(wallet, LedgerAccountId::SessionClearing, m(cost))
                },
                Transfer::single(
                    LedgerAccountId::SessionClearing,
                    LedgerAccountId::OperatorPayable(op.clone()),
                    m(cost),
                ),
            ],
            memo: Memo::new(Reason::Settlement),
        };
        with_credit_release(set, Some(&hold), acc, m(5_000 - cost))
    }

    #[test]
    fn a_captured_session_nets_the_authorised_account_to_zero_and_leaves_the_wallet_as_it_was() {
        let (mut l, p, o, acc, op) = setup();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        l.apply(authorisation(&p, &o, &acc, m(5_000), at)).unwrap();
        let wallet = LedgerAccountId::DriverWallet(acc.clone());
        assert_eq!(l.account(&wallet).unwrap().available(), Money::ZERO);
        assert_eq!(
            parse_credit_hold(&credit_hold_id(&p, &o)),
            Some((p.clone(), o.clone()))
        );
        let set = post_hold(&p, &o, &acc, 1_234, &op);
        assert_eq!(set.legs.len(), 3, "the release rides the settlement");
        l.apply(set).unwrap();
        assert_eq!(bal(&l, &wallet), Money::ZERO);
        assert_eq!(bal(&l, &authorised_account(&p)), m(1_234));
        l.apply(capture(&p, &o, m(1_234), "wx-tx-1")).unwrap();
        assert_eq!(bal(&l, &authorised_account(&p)), Money::ZERO);
        assert_eq!(bal(&l, &collected_account(&p)), m(1_234));
        assert_eq!(
            bal(&l, &LedgerAccountId::OperatorPayable(op.clone())),
            m(1_234)
        );
        // A refund comes out of the operator's payable.
        l.apply(refund(&p, &o, &op, "vr1", m(234)).unwrap())
            .unwrap();
        assert_eq!(bal(&l, &collected_account(&p)), m(1_000));
        assert!(l
            .apply(refund(&p, &o, &op, "vr2", m(5_000)).unwrap())
            .is_err());
    }

    #[test]
    fn a_declined_capture_is_the_drivers_receivable_until_collected() {
        let (mut l, p, o, acc, op) = setup();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        l.apply(authorisation(&p, &o, &acc, m(5_000), at)).unwrap();
        l.apply(post_hold(&p, &o, &acc, 800, &op)).unwrap();
        assert!(l.apply(capture(&p, &o, m(800), "x")).is_ok());
        assert!(
            l.apply(decline(&p, &o, &acc, m(800))).is_err(),
            "a captured session can never also be declined"
        );
        let (mut l, p, o, acc, op) = setup();
        l.apply(authorisation(&p, &o, &acc, m(5_000), at)).unwrap();
        l.apply(post_hold(&p, &o, &acc, 800, &op)).unwrap();
        let declined = decline(&p, &o, &acc, m(800));
        assert!(!is_capture(&declined, &p));
        assert!(is_capture(&capture(&p, &o, m(800), "x"), &p));
        l.apply(declined).unwrap();
        let owed = LedgerAccountId::Receivable(acc.clone());
        assert_eq!(bal(&l, &owed), m(800));
        assert_eq!(bal(&l, &authorised_account(&p)), Money::ZERO);
        l.apply(collection(&p, &o, &acc, m(800), "late")).unwrap();
        assert_eq!(bal(&l, &owed), Money::ZERO);
        assert_eq!(bal(&l, &collected_account(&p)), m(800));
    }

    #[test]
    fn a_void_gives_the_whole_credit_back_and_only_once() {
        let (mut l, p, o, acc, _) = setup();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        l.apply(authorisation(&p, &o, &acc, m(5_000), at)).unwrap();
        l.apply(void(&p, &o, &acc, m(5_000))).unwrap();
        l.apply(void(&p, &o, &acc, m(5_000))).unwrap();
        let wallet = LedgerAccountId::DriverWallet(acc.clone());
        assert_eq!(bal(&l, &wallet), Money::ZERO);
        assert_eq!(l.account(&wallet).unwrap().available(), Money::ZERO);
        assert_eq!(bal(&l, &authorised_account(&p)), Money::ZERO);
    }

    #[test]
    fn other_sets_pass_the_hook_unchanged() {
        let (_, _, o, acc, _) = setup();
        let hold = TransferId::new(IdempotencyKey::hold(&o), 0);
        let set = TransferSet {
            key: IdempotencyKey::new("settle:y").unwrap(),
            legs: vec![],
            memo: Memo::new(Reason::Settlement),
        };
        assert_eq!(
            with_credit_release(set.clone(), Some(&hold), &acc, m(5)),
            set
        );
        assert_eq!(with_credit_release(set.clone(), None, &acc, m(5)), set);
        assert_eq!(parse_credit_hold(&hold), None);
    }
}
