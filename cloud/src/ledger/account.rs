//! Ledger accounts: whose money an account holds, which side is its normal side, how low its
//! available balance may go, and its balance kept as four sums of postings (TigerBeetle's
//! `debits_pending`, `debits_posted`, `credits_pending`, `credits_posted`).
//!
//! The four sums only grow through postings (a pending sum shrinks when its pending transfer
//! is posted or voided), and each equals the sum of that account's postings to it. Balances
//! are derived, never stored on their own:
//! - `posted` = normal-side posted sum − other-side posted sum;
//! - `available` = `posted` − pending amounts on the *other* side (holds against the account).
//!   Pending amounts in the account's favour are not available until posted.
//!
//! A lower limit bounds `available`. A driver wallet's limit is minus its credit line; a
//! clearing account of a payment provider is unbounded (`None`), since the provider's money
//! moves outside the ledger.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, OperatorId};
use voltline_protocol::Money;

use super::error::LedgerError;
use super::limits;

/// A payment provider's name (e.g. `alipay`, `wechat`): 1-32 characters from `a-z 0-9 - _`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    /// Validates a provider name.
    pub fn new(name: impl Into<String>) -> Result<ProviderId, LedgerError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
        if ok {
            Ok(ProviderId(name))
        } else {
            Err(LedgerError::BadName {
                text: name,
                what: "payment provider",
                rule: "1-32 characters from a-z 0-9 - _",
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderId {
    type Error = LedgerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ProviderId::new(s)
    }
}

impl From<ProviderId> for String {
    fn from(p: ProviderId) -> String {
        p.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which side of an account its balance grows on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Assets and expenses: a debit raises the balance.
    Debit,
    /// Liabilities and revenue: a credit raises the balance.
    Credit,
}

/// The kinds of account, without their owner (the stored `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    DriverWallet,
    Receivable,
    OperatorPayable,
    ProviderClearing,
    SessionClearing,
    PlatformRevenue,
    V2gPayout,
}

impl AccountKind {
    /// The stored text, also the prefix of [`LedgerAccountId`]'s text form.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::DriverWallet => "wallet",
            AccountKind::Receivable => "receivable",
            AccountKind::OperatorPayable => "operator",
            AccountKind::ProviderClearing => "provider",
            AccountKind::SessionClearing => "session_clearing",
            AccountKind::PlatformRevenue => "platform_revenue",
            AccountKind::V2gPayout => "v2g_payout",
        }
    }
}

/// One ledger account: a kind and, where there is one, its owner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "owner", rename_all = "snake_case")]
pub enum LedgerAccountId {
    /// A driver's prepaid balance (credit-normal: the platform owes it to the driver).
    DriverWallet(AccountId),
    /// What a driver owes beyond the wallet's credit line (debit-normal).
    Receivable(AccountId),
    /// What the platform owes an operator (credit-normal).
    OperatorPayable(OperatorId),
    /// Money in flight at a payment provider (debit-normal, unbounded).
    ProviderClearing(ProviderId),
    /// Where holds are credited and settlements split from; nets to zero per settlement.
    SessionClearing,
    /// The platform's fees (credit-normal).
    PlatformRevenue,
    /// What the platform pays drivers for discharged energy (debit-normal, unbounded).
    V2gPayout,
}

impl LedgerAccountId {
    /// The account's kind.
    pub fn kind(&self) -> AccountKind {
        match self {
            LedgerAccountId::DriverWallet(_) => AccountKind::DriverWallet,
            LedgerAccountId::Receivable(_) => AccountKind::Receivable,
            LedgerAccountId::OperatorPayable(_) => AccountKind::OperatorPayable,
            LedgerAccountId::ProviderClearing(_) => AccountKind::ProviderClearing,
            LedgerAccountId::SessionClearing => AccountKind::SessionClearing,
            LedgerAccountId::PlatformRevenue => AccountKind::PlatformRevenue,
            LedgerAccountId::V2gPayout => AccountKind::V2gPayout,
        }
    }
}

impl fmt::Display for LedgerAccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind().as_str();
        match self {
            LedgerAccountId::DriverWallet(a) | LedgerAccountId::Receivable(a) => {
                write!(f, "{kind}:{a}")
            }
            LedgerAccountId::OperatorPayable(o) => write!(f, "{kind}:{o}"),
            LedgerAccountId::ProviderClearing(p) => write!(f, "{kind}:{p}"),
            _ => f.write_str(kind),
        }
    }
}

impl FromStr for LedgerAccountId {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LedgerError::BadName {
            text: s.to_owned(),
            what: "ledger account",
            rule:
                "kind[:owner], e.g. wallet:acc-1, operator:op-1, provider:alipay, platform_revenue",
        };
        let (kind, owner) = match s.split_once(':') {
            Some((k, o)) => (k, Some(o)),
            None => (s, None),
        };
        let id = match (kind, owner) {
            ("wallet", Some(o)) => LedgerAccountId::DriverWallet(o.parse().map_err(|_| bad())?),
            ("receivable", Some(o)) => LedgerAccountId::Receivable(o.parse().map_err(|_| bad())?),
            ("operator", Some(o)) => {
                LedgerAccountId::OperatorPayable(o.parse().map_err(|_| bad())?)
            }
            ("provider", Some(o)) => {
                LedgerAccountId::ProviderClearing(ProviderId::new(o).map_err(|_| bad())?)
            }
            ("session_clearing", None) => LedgerAccountId::SessionClearing,
            ("platform_revenue", None) => LedgerAccountId::PlatformRevenue,
            ("v2g_payout", None) => LedgerAccountId::V2gPayout,
            _ => return Err(bad()),
        };
        Ok(id)
    }
}

/// How an account behaves: its normal side and the lowest its available balance may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPolicy {
    pub normal: Side,
    /// The floor of `available` (zero or below), or `None` for an unbounded account.
    pub lower_limit: Option<Money>,
}

impl AccountPolicy {
    /// The policy an account of this kind gets unless told otherwise: wallets without a
    /// credit line; provider clearing and V2G payouts unbounded; everything else not below 0.
    pub fn default_for(id: &LedgerAccountId) -> AccountPolicy {
        let (normal, lower_limit) = match id.kind() {
            AccountKind::DriverWallet => (Side::Credit, Some(Money::ZERO)),
            AccountKind::Receivable => (Side::Debit, Some(Money::ZERO)),
            AccountKind::OperatorPayable => (Side::Credit, Some(Money::ZERO)),
            AccountKind::ProviderClearing => (Side::Debit, None),
            AccountKind::SessionClearing => (Side::Credit, Some(Money::ZERO)),
            AccountKind::PlatformRevenue => (Side::Credit, Some(Money::ZERO)),
            AccountKind::V2gPayout => (Side::Debit, None),
        };
        AccountPolicy {
            normal,
            lower_limit,
        }
    }

    /// A driver wallet that may go down to `-credit_limit` (whole fen, 0 to 1 million yuan).
    pub fn wallet(credit_limit: Money) -> Result<AccountPolicy, LedgerError> {
        check_credit_limit(credit_limit)?;
        Ok(AccountPolicy {
            normal: Side::Credit,
            lower_limit: Some(-credit_limit),
        })
    }

    /// The floor a debit must respect. A debit that may draw on credit (a settlement overrun)
    /// respects the lower limit; every other debit (a hold, a refund) must keep the available
    /// balance at zero or above, so that holds only ever reserve prepaid money.
    pub fn floor(&self, credit_allowed: bool) -> Option<Money> {
        match self.lower_limit {
            Some(limit) if !credit_allowed => Some(limit.max(Money::ZERO)),
            other => other,
        }
    }

    /// The credit line: how far below zero the available balance may go (zero if bounded at
    /// zero or above; `None` when unbounded).
    pub fn credit_limit(&self) -> Option<Money> {
        self.lower_limit.map(|l| (-l).max(Money::ZERO))
    }
}

/// Checks that a credit limit is whole fen and within 0..=1 million yuan.
pub fn check_credit_limit(credit_limit: Money) -> Result<(), LedgerError> {
    let max = Money::from_cents(limits::MAX_CREDIT_LIMIT_CENTS);
    if credit_limit.is_negative()
        || credit_limit > max
        || credit_limit.round_cents() != credit_limit
    {
        return Err(LedgerError::BadCreditLimit { credit_limit, max });
    }
    Ok(())
}

/// Which of an account's four sums a posting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceField {
    DebitsPending,
    DebitsPosted,
    CreditsPending,
    CreditsPosted,
}

impl BalanceField {
    /// All four, in a fixed order.
    pub const ALL: [BalanceField; 4] = [
        BalanceField::DebitsPending,
        BalanceField::DebitsPosted,
        BalanceField::CreditsPending,
        BalanceField::CreditsPosted,
    ];
}

/// An account's four sums of postings. Each is zero or more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub debits_pending: Money,
    pub debits_posted: Money,
    pub credits_pending: Money,
    pub credits_posted: Money,
}

impl Balance {
    /// One of the four sums.
    pub fn get(&self, field: BalanceField) -> Money {
        match field {
            BalanceField::DebitsPending => self.debits_pending,
            BalanceField::DebitsPosted => self.debits_posted,
            BalanceField::CreditsPending => self.credits_pending,
            BalanceField::CreditsPosted => self.credits_posted,
        }
    }

    /// Adds `delta` (which may be negative) to one of the four sums.
    pub fn add(&mut self, field: BalanceField, delta: Money) {
        let slot = match field {
            BalanceField::DebitsPending => &mut self.debits_pending,
            BalanceField::DebitsPosted => &mut self.debits_posted,
            BalanceField::CreditsPending => &mut self.credits_pending,
            BalanceField::CreditsPosted => &mut self.credits_posted,
        };
        *slot += delta;
    }

    /// The posted balance on the account's normal side.
    pub fn posted(&self, normal: Side) -> Money {
        match normal {
            Side::Credit => self.credits_posted - self.debits_posted,
            Side::Debit => self.debits_posted - self.credits_posted,
        }
    }

    /// The posted balance less the holds against it (pending amounts on the other side).
    pub fn available(&self, normal: Side) -> Money {
        match normal {
            Side::Credit => self.posted(normal) - self.debits_pending,
            Side::Debit => self.posted(normal) - self.credits_pending,
        }
    }

    /// The amount held against the account (pending amounts on the side opposite to normal).
    pub fn held(&self, normal: Side) -> Money {
        match normal {
            Side::Credit => self.debits_pending,
            Side::Debit => self.credits_pending,
        }
    }
}

/// One account: its id, its policy and its balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: LedgerAccountId,
    pub policy: AccountPolicy,
    pub balance: Balance,
}

impl Account {
    /// A new account with a zero balance.
    pub fn open(id: LedgerAccountId, policy: AccountPolicy) -> Account {
        Account {
            id,
            policy,
            balance: Balance::default(),
        }
    }

    /// The posted balance on the normal side.
    pub fn posted(&self) -> Money {
        self.balance.posted(self.policy.normal)
    }

    /// The posted balance less holds against it.
    pub fn available(&self) -> Money {
        self.balance.available(self.policy.normal)
    }

    /// Holds against the account.
    pub fn held(&self) -> Money {
        self.balance.held(self.policy.normal)
    }
}

#[cfg(test)]
#[path = "account_tests.rs"]
mod tests;
