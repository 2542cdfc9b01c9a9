//! Card starts at the pile (0x31): the edge answers from the cached authorisation list, with
//! the cloud reachable or not, so a site charges the same way through an outage.
//!
//! Pure: the caller passes the cached config, the site's local time and a counter; nothing
//! here reads a clock or the store. The session's spending limit is the smaller of the card's
//! own offline limit and the site's offline session limit ([`SiteConfig::offline_limit`]); the
//! connector machine stops the session when its priced cost reaches it.

use jiff::civil::DateTime;
use voltline_protocol::domain::SerialTime;
use voltline_protocol::message::transaction::{AuthFailure, PhysicalCardNo};
use voltline_protocol::sync::{Authorisation, SessionLimit, TransactionUp};
use voltline_protocol::TransactionSerial;

use crate::connector::{CardDecision, ConnectorId};
use crate::store::SiteConfig;

/// Transaction serials the edge composes carry a counter of four BCD digits.
pub const MAX_SERIAL_COUNTER: u16 = 9_999;

/// The edge's answer to `card` presented at connector `id` at local time `local`, with
/// `counter` (0..=9999) as the serial's counter.
pub fn decide(
    config: Option<&SiteConfig>,
    id: ConnectorId,
    card: &PhysicalCardNo,
    local: DateTime,
    counter: u16,
) -> CardDecision {
    assert!(counter <= MAX_SERIAL_COUNTER);
    let Some(config) = config else {
        // No authorisation list yet (a new edge that never reached the cloud): nobody may
        // start, the pile shows "account not found".
        return CardDecision::Refused(AuthFailure::AccountNotFound);
    };
    let (Some(entry), Some(limit)) = (config.card(card), config.offline_limit(card)) else {
        return CardDecision::Refused(AuthFailure::AccountNotFound);
    };
    if limit.is_zero() || limit.is_negative() {
        return CardDecision::Refused(AuthFailure::InsufficientBalance);
    }
    let Some(serial) = compose_serial(id, local, counter) else {
        // The pile's clock is out of the serial's range (before 2000 or after 2099).
        return CardDecision::Refused(AuthFailure::PileDisabled);
    };
    CardDecision::Authorised {
        account: entry.account.clone(),
        serial,
        limit: SessionLimit {
            amount: Some(limit),
            energy: None,
        },
        balance: limit,
    }
}

/// Attributes a transaction record that came without a known session (`Authorisation::Pile`:
/// the edge never held, or lost, the card start behind it) to the card the record names, when
/// the cached list knows that card: the cloud cannot bill a record without an order or a card
/// account. Returns whether it did. A record with an order or a card already is left alone.
pub fn attribute_to_card(config: Option<&SiteConfig>, up: &mut TransactionUp) -> bool {
    let card = up.record.physical_card;
    if up.authorisation != Authorisation::Pile || card == PhysicalCardNo::NONE {
        return false;
    }
    let Some(entry) = config.and_then(|c| c.card(&card)) else {
        return false;
    };
    up.authorisation = Authorisation::OfflineCard {
        card: card.to_string(),
        account: entry.account.clone(),
    };
    true
}

/// A platform-side serial: pile, connector, local start time, counter.
pub fn compose_serial(id: ConnectorId, local: DateTime, counter: u16) -> Option<TransactionSerial> {
    let year = local.year().checked_sub(2000)?;
    let at = SerialTime {
        year: u8::try_from(year).ok()?,
        month: local.month() as u8,
        day: local.day() as u8,
        hour: local.hour() as u8,
        minute: local.minute() as u8,
        second: local.second() as u8,
    };
    TransactionSerial::compose(id.pile, id.connector, at, counter)
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use voltline_protocol::domain::{AccountId, ConnectorNo, Money, PileCode};

    use super::*;
    use crate::store::{CardAuthorisation, SiteLimits};

    fn id() -> ConnectorId {
        ConnectorId {
            pile: "32010600019236".parse::<PileCode>().unwrap(),
            connector: ConnectorNo::new(1).unwrap(),
        }
    }

    fn card(n: u64) -> PhysicalCardNo {
        PhysicalCardNo::from_bytes(n.to_be_bytes())
    }

    fn config(card_limit: Money, site_limit: Money) -> SiteConfig {
        SiteConfig::new(
            3,
            None,
            vec![CardAuthorisation {
                card: card(1001),
                account: AccountId::new("driver-1").unwrap(),
                offline_limit: card_limit,
            }],
            SiteLimits {
                offline_session_limit: site_limit,
                max_site_power: None,
            },
        )
        .unwrap()
    }

    fn noon() -> DateTime {
        jiff::civil::date(2026, 12, 1).at(12, 30, 5, 0)
    }

    #[test]
    fn known_card_gets_the_smaller_of_its_and_the_site_limit() {
        let c = config(Money::from_yuan(dec!(80)), Money::from_yuan(dec!(50)));
        let CardDecision::Authorised {
            account,
            serial,
            limit,
            balance,
        } = decide(Some(&c), id(), &card(1001), noon(), 7)
        else {
            panic!("refused")
        };
        assert_eq!(account.as_str(), "driver-1");
        assert_eq!(limit.amount, Some(Money::from_yuan(dec!(50))));
        assert_eq!(balance, Money::from_yuan(dec!(50)));
        assert_eq!(serial.pile_code(), id().pile);
        assert_eq!(serial.connector(), id().connector);
        assert_eq!(serial.counter(), 7);
        let c = config(Money::from_yuan(dec!(20)), Money::from_yuan(dec!(50)));
        let CardDecision::Authorised { limit, .. } = decide(Some(&c), id(), &card(1001), noon(), 0)
        else {
            panic!("refused")
        };
        assert_eq!(limit.amount, Some(Money::from_yuan(dec!(20))));
    }

    #[test]
    fn unknown_card_or_missing_list_is_refused() {
        let c = config(Money::from_yuan(dec!(80)), Money::from_yuan(dec!(50)));
        assert_eq!(
            decide(Some(&c), id(), &card(2002), noon(), 0),
            CardDecision::Refused(AuthFailure::AccountNotFound)
        );
        assert_eq!(
            decide(None, id(), &card(1001), noon(), 0),
            CardDecision::Refused(AuthFailure::AccountNotFound)
        );
    }

    #[test]
    fn card_with_nothing_to_spend_is_refused_for_balance() {
        let c = config(Money::ZERO, Money::from_yuan(dec!(50)));
        assert_eq!(
            decide(Some(&c), id(), &card(1001), noon(), 0),
            CardDecision::Refused(AuthFailure::InsufficientBalance)
        );
    }

    #[test]
    fn a_record_without_a_session_is_attributed_to_the_card_it_names_if_known() {
        let c = config(Money::from_yuan(dec!(80)), Money::from_yuan(dec!(50)));
        let up = |card_no: PhysicalCardNo, authorisation: Authorisation| {
            let mut record = crate::connector::tests_support::tx_record(1);
            record.physical_card = card_no;
            TransactionUp {
                pile: id().pile,
                authorisation,
                edge_cost: None,
                record,
            }
        };
        let mut known = up(card(1001), Authorisation::Pile);
        assert!(attribute_to_card(Some(&c), &mut known));
        assert_eq!(
            known.authorisation,
            Authorisation::OfflineCard {
                card: card(1001).to_string(),
                account: AccountId::new("driver-1").unwrap(),
            }
        );
        // Unknown card, no card, no list, or already attributed: unchanged.
        for (mut u, list) in [
            (up(card(2002), Authorisation::Pile), Some(&c)),
            (up(PhysicalCardNo::NONE, Authorisation::Pile), Some(&c)),
            (up(card(1001), Authorisation::Pile), None),
            (up(card(2002), known.authorisation.clone()), Some(&c)),
        ] {
            let before = u.authorisation.clone();
            assert!(!attribute_to_card(list, &mut u));
            assert_eq!(u.authorisation, before);
        }
    }

    #[test]
    fn serials_differ_by_counter_and_time_and_reject_out_of_range_clocks() {
        let a = compose_serial(id(), noon(), 1).unwrap();
        let b = compose_serial(id(), noon(), 2).unwrap();
        let later = compose_serial(id(), noon() + jiff::SignedDuration::from_secs(1), 1).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, later);
        let old = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        assert!(compose_serial(id(), old, 1).is_none());
        let c = config(Money::from_yuan(dec!(80)), Money::from_yuan(dec!(50)));
        assert_eq!(
            decide(Some(&c), id(), &card(1001), old, 0),
            CardDecision::Refused(AuthFailure::PileDisabled)
        );
    }
}
