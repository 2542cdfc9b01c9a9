//! Conversion between a [`Tariff`] and the YKC [`BillingModel`] (four rates, 48 half-hour
//! slots, prices at 0.00001 yuan) that piles understand.
//!
//! A billing model always converts to a tariff (four periods named `sharp`, `peak`, `flat`,
//! `valley` in that order, so period index = [`RateKind`] number), unless it carries a loss
//! ratio, which a tariff cannot express. A tariff converts to a billing model only when it
//! fits: at most four periods, every boundary on a half hour, every price a whole number of
//! 0.00001 yuan within the 4-byte field. Nothing is ever rounded or truncated to make it fit.
//!
//! Periods map to rates by name when every period is named after a YKC rate (`sharp`,
//! `peak`, `flat`, `valley`), otherwise by position (first period → sharp, second → peak, …).
//! Rates no period maps to are sent with zero prices; no slot refers to them.
//!
//! The billing model has no time zone: the pile reads its slots on its own wall clock, which
//! must be set to the tariff's zone.

use jiff::tz::TimeZone;

use super::model::{ScheduleEntry, Tariff, TariffError, TariffPeriod, TariffVersion};
use super::time_of_day::TimeOfDay;
use crate::domain::money::scale;
use crate::domain::{Money, MoneyError};
use crate::message::register::{BillingModel, BillingModelNo, Rate, RateKind};

/// Half-hour slots in a YKC billing model.
const SLOTS: usize = 48;
/// Minutes per slot.
const SLOT_MINUTES: u16 = 30;
/// YKC rate names, in `RateKind` order.
const RATE_NAMES: [&str; 4] = ["sharp", "peak", "flat", "valley"];
const RATE_KINDS: [RateKind; 4] = [
    RateKind::Sharp,
    RateKind::Peak,
    RateKind::Flat,
    RateKind::Valley,
];

/// Why a tariff cannot be sent to a pile as a YKC billing model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRepresentable {
    #[error(
        "the tariff has {count} periods but a YKC billing model carries at most 4; merge periods"
    )]
    TooManyPeriods { count: usize },
    #[error("schedule entry {index} starts at {start}, but YKC slots are half hours; move it to :00 or :30")]
    BoundaryNotOnHalfHour { index: usize, start: TimeOfDay },
    #[error("period \"{period}\"'s {which} does not fit the YKC field (0.00001 yuan, 4 bytes): {source}")]
    Price {
        period: String,
        which: &'static str,
        source: MoneyError,
    },
}

impl Tariff {
    /// The tariff a YKC billing model describes, read in `time_zone`.
    pub fn from_billing_model(
        model: &BillingModel,
        time_zone: TimeZone,
        version: TariffVersion,
    ) -> Result<Tariff, TariffError> {
        if model.loss_ratio_pct != 0 {
            return Err(TariffError::LossRatioUnsupported {
                pct: model.loss_ratio_pct,
            });
        }
        let periods = RATE_KINDS
            .iter()
            .map(|&kind| {
                let rate = model.rate(kind);
                TariffPeriod::new(
                    RATE_NAMES[kind as usize],
                    rate.energy_price,
                    rate.service_fee,
                )
            })
            .collect();
        let mut schedule = Vec::new();
        for (i, &kind) in model.slots.iter().enumerate() {
            if i == 0 || model.slots[i - 1] != kind {
                // i < 48, so the start is below 1440 minutes.
                let start = TimeOfDay::from_minutes(i as u16 * SLOT_MINUTES)?;
                schedule.push(ScheduleEntry::new(start, kind as usize));
            }
        }
        Tariff::new(version, time_zone, periods, schedule)
    }

    /// This tariff as a YKC billing model numbered `model_no`, if it fits (see the module doc).
    pub fn to_billing_model(
        &self,
        model_no: BillingModelNo,
    ) -> Result<BillingModel, NotRepresentable> {
        if self.periods.len() > RATE_KINDS.len() {
            return Err(NotRepresentable::TooManyPeriods {
                count: self.periods.len(),
            });
        }
        for (index, entry) in self.schedule.iter().enumerate() {
            if entry.start.minutes() % SLOT_MINUTES != 0 {
                return Err(NotRepresentable::BoundaryNotOnHalfHour {
                    index,
                    start: entry.start,
                });
            }
        }
        let kinds = self.rate_kinds();
        let mut rates = [Rate {
            energy_price: Money::ZERO,
            service_fee: Money::ZERO,
        }; 4];
        for (period, &kind) in self.periods.iter().zip(&kinds) {
            rates[kind as usize] = Rate {
                energy_price: unit_price(period, "energy price", period.energy_price)?,
                service_fee: unit_price(period, "service fee", period.service_fee)?,
            };
        }
        let mut slots = [RateKind::Flat; SLOTS];
        let mut entry = 0;
        for (i, slot) in slots.iter_mut().enumerate() {
            let minute = i as u16 * SLOT_MINUTES;
            while entry + 1 < self.schedule.len()
                && self.schedule[entry + 1].start.minutes() <= minute
            {
                entry += 1;
            }
            *slot = kinds[self.schedule[entry].period];
        }
        Ok(BillingModel {
            model_no,
            rates,
            loss_ratio_pct: 0,
            slots,
        })
    }

    /// The rate each period maps to: by name if all are YKC rate names, else by position.
    fn rate_kinds(&self) -> Vec<RateKind> {
        let by_name: Option<Vec<RateKind>> = self
            .periods
            .iter()
            .map(|p| {
                RATE_NAMES
                    .iter()
                    .position(|&n| n == p.name)
                    .map(|i| RATE_KINDS[i])
            })
            .collect();
        by_name.unwrap_or_else(|| RATE_KINDS[..self.periods.len()].to_vec())
    }
}

/// The price unchanged, if the 4-byte 0.00001-yuan field carries it exactly.
fn unit_price(
    period: &TariffPeriod,
    which: &'static str,
    price: Money,
) -> Result<Money, NotRepresentable> {
    price
        .to_scaled_unsigned(scale::UNIT_PRICE, u64::from(u32::MAX))
        .map(|_| price)
        .map_err(|source| NotRepresentable::Price {
            period: period.name.clone(),
            which,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tariff::model::tests::{hm, shanghai, yuan};
    use rust_decimal_macros::dec;

    fn model() -> BillingModel {
        let rate = |e, s| Rate {
            energy_price: yuan(e),
            service_fee: yuan(s),
        };
        let mut slots = [RateKind::Valley; SLOTS];
        for (i, slot) in slots.iter_mut().enumerate() {
            *slot = match i {
                16..=21 | 34..=43 => RateKind::Peak, // 08:00-11:00, 17:00-22:00
                22..=23 => RateKind::Sharp,          // 11:00-12:00
                24..=33 => RateKind::Flat,           // 12:00-17:00
                _ => RateKind::Valley,
            };
        }
        BillingModel {
            model_no: "0100".parse().unwrap(),
            rates: [
                rate(dec!(1.23456), dec!(0.8)),
                rate(dec!(1.0), dec!(0.8)),
                rate(dec!(0.7), dec!(0.6)),
                rate(dec!(0.3), dec!(0.4)),
            ],
            loss_ratio_pct: 0,
            slots,
        }
    }

    fn zone() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    #[test]
    fn billing_model_becomes_a_four_period_tariff_and_back() {
        let m = model();
        let t = Tariff::from_billing_model(&m, zone(), TariffVersion(9)).unwrap();
        let names: Vec<_> = t.periods().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, RATE_NAMES);
        let starts: Vec<_> = t
            .schedule()
            .iter()
            .map(|e| (e.start.to_string(), e.period))
            .collect();
        assert_eq!(
            starts,
            vec![
                ("00:00".into(), 3),
                ("08:00".into(), 1),
                ("11:00".into(), 0),
                ("12:00".into(), 2),
                ("17:00".into(), 1),
                ("22:00".into(), 3),
            ]
        );
        assert_eq!(t.to_billing_model(m.model_no).unwrap(), m);
    }

    #[test]
    fn loss_ratio_is_refused() {
        let mut m = model();
        m.loss_ratio_pct = 5;
        assert_eq!(
            Tariff::from_billing_model(&m, zone(), TariffVersion(1)),
            Err(TariffError::LossRatioUnsupported { pct: 5 })
        );
    }

    #[test]
    fn named_periods_map_by_name_and_unused_rates_are_zero() {
        let m = shanghai()
            .to_billing_model("0001".parse().unwrap())
            .unwrap();
        assert_eq!(m.rate(RateKind::Peak).energy_price, yuan(dec!(1.0)));
        assert_eq!(m.rate(RateKind::Valley).service_fee, yuan(dec!(0.4)));
        assert_eq!(m.rate(RateKind::Sharp).energy_price, Money::ZERO);
        assert_eq!(m.slots[15], RateKind::Valley); // 07:30
        assert_eq!(m.slots[16], RateKind::Peak); // 08:00
        assert_eq!(m.slots[47], RateKind::Valley); // 23:30
    }

    #[test]
    fn other_names_map_by_position() {
        let t = Tariff::new(
            TariffVersion(1),
            zone(),
            vec![
                TariffPeriod::new("day", yuan(dec!(1)), yuan(dec!(0))),
                TariffPeriod::new("night", yuan(dec!(0.5)), yuan(dec!(0))),
            ],
            vec![
                ScheduleEntry::new(hm(0, 0), 1),
                ScheduleEntry::new(hm(6, 30), 0),
            ],
        )
        .unwrap();
        let m = t.to_billing_model("0002".parse().unwrap()).unwrap();
        assert_eq!(m.slots[12], RateKind::Peak); // 06:00, night = second period
        assert_eq!(m.slots[13], RateKind::Sharp); // 06:30, day = first period
        assert_eq!(m.rate(RateKind::Sharp).energy_price, yuan(dec!(1)));
    }

    #[test]
    fn tariffs_that_do_not_fit_are_refused() {
        let no = || "0003".parse().unwrap();
        let p = |n: &str, price| TariffPeriod::new(n, yuan(price), yuan(dec!(0)));
        let five: Vec<_> = (0..5).map(|i| p(&format!("p{i}"), dec!(1))).collect();
        let t = Tariff::new(
            TariffVersion(1),
            zone(),
            five,
            vec![ScheduleEntry::new(hm(0, 0), 0)],
        )
        .unwrap();
        assert_eq!(
            t.to_billing_model(no()),
            Err(NotRepresentable::TooManyPeriods { count: 5 })
        );

        let t = Tariff::new(
            TariffVersion(1),
            zone(),
            vec![p("a", dec!(1)), p("b", dec!(2))],
            vec![
                ScheduleEntry::new(hm(0, 0), 0),
                ScheduleEntry::new(hm(7, 15), 1),
            ],
        )
        .unwrap();
        assert!(matches!(
            t.to_billing_model(no()),
            Err(NotRepresentable::BoundaryNotOnHalfHour { index: 1, .. })
        ));

        let t = Tariff::new(
            TariffVersion(1),
            zone(),
            vec![p("a", dec!(0.123456))],
            vec![ScheduleEntry::new(hm(0, 0), 0)],
        )
        .unwrap();
        let err = t.to_billing_model(no()).unwrap_err();
        assert!(matches!(err, NotRepresentable::Price { .. }));
        assert!(
            err.to_string().contains("more than 5 decimal places"),
            "{err}"
        );
    }
}
