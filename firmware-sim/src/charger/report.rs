//! Real-time data: 0x13 for every connector (every `report_interval_s` while active, every
//! `idle_report_interval_s` idle, at once on a status or plug change, and in answer to 0x12),
//! plus 0xC7 bidirectional meter data with every 0x13 while a V2G-capable pile is plugged.
//!
//! A report while a session runs is also the session's checkpoint in flash (see `durable`).

use voltline_protocol::domain::{
    Current, Energy, Money, Power, Soc, Temperature, TransactionSerial, Voltage,
};
use voltline_protocol::message::realtime::{
    ConnectorStatus, GunPlugged, GunReturned, HardwareFault, HardwareFaults, RealTimeData,
};
use voltline_protocol::message::v2g::BidirectionalMeter;

use super::connector::{Activity, Connector};
use super::{Charger, ChargerKind, Output};
use crate::clock::SimTime;

impl Charger {
    pub(super) fn status_of(&self, c: &Connector) -> ConnectorStatus {
        if c.faulted {
            ConnectorStatus::Fault
        } else if matches!(c.activity, Activity::Charging(_) | Activity::Discharging(_)) {
            // YKC has no "discharging" status: a pile moving energy either way is working.
            ConnectorStatus::Charging
        } else {
            ConnectorStatus::Idle
        }
    }

    pub(super) fn report_key(&self, c: &Connector) -> (u8, bool) {
        (self.status_of(c) as u8, c.vehicle.is_some())
    }

    /// Sends connector `i`'s real-time data (as a reply to 0x12 when `reply_to` is set).
    pub(super) fn report(
        &mut self,
        i: usize,
        now: SimTime,
        reply_to: Option<u16>,
        out: &mut Vec<Output>,
    ) {
        let rtd = self.real_time_data(i, now);
        let c = &self.connectors[i];
        let active = matches!(c.activity, Activity::Charging(_) | Activity::Discharging(_));
        let interval = if active {
            self.spec.report_interval_s
        } else {
            self.spec.idle_report_interval_s
        };
        let key = self.report_key(c);
        let meter = (self.spec.v2g && c.vehicle.is_some()).then(|| BidirectionalMeter {
            serial: rtd.serial,
            pile_code: self.spec.pile,
            connector: c.no,
            import_register: c.meter.import_wire(),
            export_register: c.meter.export_wire(),
            active_power: Power::from_watts(c.power.watts() / 100 * 100),
            soc: c.vehicle.as_ref().map_or(Soc::EMPTY, |v| v.soc()),
        });
        let c = &mut self.connectors[i];
        c.reported = Some(key);
        c.next_report = now.plus_secs(interval as u64);
        match reply_to {
            Some(seq) => self.reply(seq, rtd, out),
            None => self.send(rtd, out),
        }
        if let Some(m) = meter {
            self.send(m, out);
        }
        if active {
            self.dirty = true;
        }
    }

    fn real_time_data(&self, i: usize, now: SimTime) -> RealTimeData {
        let c = &self.connectors[i];
        let mut rtd = RealTimeData::idle(self.spec.pile, c.no);
        rtd.status = self.status_of(c);
        if c.faulted {
            rtd.hardware_faults = HardwareFaults::NONE.with(HardwareFault::HvContactorFault);
        }
        let plugged = c.vehicle.is_some();
        rtd.gun_plugged = if plugged {
            GunPlugged::Yes
        } else {
            GunPlugged::No
        };
        rtd.gun_returned = if plugged {
            GunReturned::No
        } else {
            GunReturned::Yes
        };
        let (serial, started, energy, amount) = match &c.activity {
            Activity::Charging(s) => {
                let (e, a) = self.session_energy_amount(c, s);
                (s.serial, Some(s.started), e, a)
            }
            Activity::Discharging(s) => (s.serial, Some(s.started), Energy::ZERO, Money::ZERO),
            _ => (TransactionSerial::NONE, None, Energy::ZERO, Money::ZERO),
        };
        let Some(started) = started else {
            return rtd;
        };
        rtd.serial = serial;
        let dc = self.spec.kind == ChargerKind::Dc;
        let soc = c.vehicle.as_ref().map_or(Soc::EMPTY, |v| v.soc());
        let volts: i64 = if dc {
            300 + soc.percent() as i64 * 12 / 10
        } else {
            220
        };
        let amps_tenths = c.power.watts().abs() * 10 / volts;
        rtd.output_voltage = Voltage::from_tenths(volts as u32 * 10);
        rtd.output_current = Current::from_tenths(amps_tenths.min(u16::MAX as i64) as i32);
        rtd.gun_temperature = Temperature::from_celsius(35);
        if dc {
            rtd.soc = soc;
            rtd.battery_max_temperature = Temperature::from_celsius(30);
            rtd.remaining_time_min = c
                .vehicle
                .as_ref()
                .map_or(0, |v| v.minutes_to_target(c.power));
        }
        rtd.charging_time_min = (now.since(started) / 60_000).min(u16::MAX as u64) as u16;
        rtd.energy = energy;
        rtd.billed_energy = match &c.activity {
            Activity::Charging(s) => crate::pricing::loss_adjusted(&s.model, energy),
            _ => energy,
        };
        rtd.amount = amount;
        rtd
    }
}
