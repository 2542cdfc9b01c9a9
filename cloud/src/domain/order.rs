//! The order state machine: what a charging or discharging order may become, and why.
//!
//! An order is created `pending` (funds held, start command queued — the API reports this as
//! `dispatching`). The start command's outcome moves it to `charging`/`discharging` or
//! `failed`; the pile's transaction record makes it `completed`; settlement (the ledger issue)
//! makes it `settled`. Every change is an [`OrderEvent`] checked by [`OrderState::apply`], so the
//! store never writes a transition the domain did not allow.
//!
//! One deliberate edge: `failed → completed`. A start command can expire in the cloud while the
//! edge had in fact delivered it; the pile's transaction record is the truth and must still be
//! billed exactly once (DESIGN.md, invariants), so the record wins over the earlier failure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Charge (energy into the vehicle) or discharge (V2G, energy out of the vehicle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Charge,
    Discharge,
}

impl OrderKind {
    /// Every kind.
    pub const ALL: [OrderKind; 2] = [OrderKind::Charge, OrderKind::Discharge];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderKind::Charge => "charge",
            OrderKind::Discharge => "discharge",
        }
    }
}

/// Where an order's lifecycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Funds held, start command queued or on its way ("dispatching").
    Pending,
    /// The pile accepted the start and is charging.
    Charging,
    /// The pile accepted the start and is discharging (V2G).
    Discharging,
    /// A stop was requested; waiting for the transaction record.
    Stopping,
    /// The pile's transaction record arrived; waiting for settlement.
    Completed,
    /// Settled in the ledger. Final.
    Settled,
    /// The start never took effect (rejected, failed, expired). Final unless the pile's
    /// transaction record proves otherwise (see the module doc).
    Failed,
}

/// Something that happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// The pile accepted the start command.
    StartAccepted,
    /// The start command was rejected, failed or expired.
    StartFailed,
    /// Someone asked to stop the session.
    StopRequested,
    /// The pile's transaction (or discharge) record arrived.
    RecordReceived,
    /// The ledger settled the session.
    Settled,
}

impl OrderEvent {
    /// Every event.
    pub const ALL: [OrderEvent; 5] = [
        OrderEvent::StartAccepted,
        OrderEvent::StartFailed,
        OrderEvent::StopRequested,
        OrderEvent::RecordReceived,
        OrderEvent::Settled,
    ];
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order in state '{from}' cannot take the event {event:?}; read the order again and act on its current state")]
pub struct BadOrderTransition {
    pub from: OrderState,
    pub event: OrderEvent,
}

impl OrderState {
    /// Every state.
    pub const ALL: [OrderState; 7] = [
        OrderState::Pending,
        OrderState::Charging,
        OrderState::Discharging,
        OrderState::Stopping,
        OrderState::Completed,
        OrderState::Settled,
        OrderState::Failed,
    ];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Charging => "charging",
            OrderState::Discharging => "discharging",
            OrderState::Stopping => "stopping",
            OrderState::Completed => "completed",
            OrderState::Settled => "settled",
            OrderState::Failed => "failed",
        }
    }

    /// True when no event can change the state any more.
    pub const fn is_final(self) -> bool {
        matches!(self, OrderState::Settled)
    }

    /// True while the session may be running at the pile (a stop makes sense).
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            OrderState::Pending | OrderState::Charging | OrderState::Discharging
        )
    }

    /// The state after `event` for an order of `kind`, or why not.
    pub fn apply(
        self,
        kind: OrderKind,
        event: OrderEvent,
    ) -> Result<OrderState, BadOrderTransition> {
        use OrderEvent as E;
        use OrderState as S;
        let next = match (self, event) {
            (S::Pending, E::StartAccepted) => match kind {
                OrderKind::Charge => Some(S::Charging),
                OrderKind::Discharge => Some(S::Discharging),
            },
            (S::Pending, E::StartFailed) => Some(S::Failed),
            (S::Pending | S::Charging | S::Discharging, E::StopRequested) => Some(S::Stopping),
            (
                S::Pending | S::Charging | S::Discharging | S::Stopping | S::Failed,
                E::RecordReceived,
            ) => Some(S::Completed),
            (S::Completed, E::Settled) => Some(S::Settled),
            _ => None,
        };
        next.ok_or(BadOrderTransition { from: self, event })
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for OrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no known state or kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid {what}")]
pub struct UnknownName {
    pub text: String,
    pub what: &'static str,
}

impl FromStr for OrderState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                text: s.to_owned(),
                what: "order state",
            })
    }
}

impl FromStr for OrderKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                text: s.to_owned(),
                what: "order kind",
            })
    }
}

/// How a driver pays for an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PaymentMethod {
    /// A hold on the driver's prepaid wallet balance.
    Wallet,
    /// A credit authorisation at a payment provider (e.g. `"unionpay"`).
    Provider { provider: String },
}

const PROVIDER_PREFIX: &str = "provider:";

impl PaymentMethod {
    /// The stored text: `wallet` or `provider:<name>`.
    pub fn to_text(&self) -> String {
        match self {
            PaymentMethod::Wallet => "wallet".to_owned(),
            PaymentMethod::Provider { provider } => format!("{PROVIDER_PREFIX}{provider}"),
        }
    }
}

impl FromStr for PaymentMethod {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "wallet" {
            return Ok(PaymentMethod::Wallet);
        }
        match s.strip_prefix(PROVIDER_PREFIX) {
            Some(p)
                if !p.is_empty()
                    && p.len() <= 32
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Ok(PaymentMethod::Provider {
                    provider: p.to_owned(),
                })
            }
            _ => Err(UnknownName {
                text: s.to_owned(),
                what:
                    "payment method (use 'wallet' or 'provider:<name>' with 1-32 of A-Z a-z 0-9 _)",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderEvent as E;
    use OrderState as S;

    /// The whole transition table, written out: (from, event, kind) → to. Anything not listed
    /// must be refused.
    fn expected(from: S, event: E, kind: OrderKind) -> Option<S> {
        const TABLE: &[(S, E, Option<OrderKind>, S)] = &[
            (
                S::Pending,
                E::StartAccepted,
                Some(OrderKind::Charge),
                S::Charging,
            ),
            (
                S::Pending,
                E::StartAccepted,
                Some(OrderKind::Discharge),
                S::Discharging,
            ),
            (S::Pending, E::StartFailed, None, S::Failed),
            (S::Pending, E::StopRequested, None, S::Stopping),
            (S::Charging, E::StopRequested, None, S::Stopping),
            (S::Discharging, E::StopRequested, None, S::Stopping),
            (S::Pending, E::RecordReceived, None, S::Completed),
            (S::Charging, E::RecordReceived, None, S::Completed),
            (S::Discharging, E::RecordReceived, None, S::Completed),
            (S::Stopping, E::RecordReceived, None, S::Completed),
            (S::Failed, E::RecordReceived, None, S::Completed),
            (S::Completed, E::Settled, None, S::Settled),
        ];
        TABLE
            .iter()
            .find(|(f, e, k, _)| *f == from && *e == event && k.is_none_or(|k| k == kind))
            .map(|row| row.3)
    }

    #[test]
    fn every_state_event_and_kind_follows_the_table() {
        for from in S::ALL {
            for event in E::ALL {
                for kind in OrderKind::ALL {
                    let got = from.apply(kind, event).ok();
                    assert_eq!(
                        got,
                        expected(from, event, kind),
                        "{from} + {event:?} ({kind})"
                    );
                }
            }
        }
    }

    #[test]
    fn settled_is_final() {
        for event in E::ALL {
            for kind in OrderKind::ALL {
                assert!(S::Settled.apply(kind, event).is_err());
            }
        }
        assert!(S::Settled.is_final());
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>(), Ok(s));
        }
        for k in OrderKind::ALL {
            assert_eq!(k.as_str().parse::<OrderKind>(), Ok(k));
        }
        assert!("charging!".parse::<S>().is_err());
    }

    #[test]
    fn payment_methods_round_trip_and_refuse_junk() {
        for m in [
            PaymentMethod::Wallet,
            PaymentMethod::Provider {
                provider: "unionpay".into(),
            },
        ] {
            assert_eq!(m.to_text().parse::<PaymentMethod>(), Ok(m));
        }
        assert!("provider:".parse::<PaymentMethod>().is_err());
        assert!("provider:a b".parse::<PaymentMethod>().is_err());
        assert!("cash".parse::<PaymentMethod>().is_err());
    }
}
