//! Voltline's V2G commands (PROTOCOL.md): discharge start (0xC2 → 0xC1, with its reasons),
//! setpoint (0xC4 → 0xC3, with a dead-man: after `valid_for_s` without a new setpoint the
//! pile holds zero power), and stop (0xC6 → 0xC5, then the 0xC9 record).

use voltline_protocol::domain::PileCode;
use voltline_protocol::message::v2g::{
    DischargeReason, DischargeSetpoint, DischargeSetpointReply, DischargeStart,
    DischargeStartReply, DischargeStop, DischargeStopReply, Outcome as V2gResult,
};

use super::connector::{Activity, DISCHARGE_REMOTE_STOP};
use super::{Charger, Output};
use crate::clock::SimTime;

fn result(ok: bool) -> V2gResult {
    if ok {
        V2gResult::Succeeded
    } else {
        V2gResult::Failed
    }
}

impl Charger {
    pub(super) fn on_discharge_start(
        &mut self,
        now: SimTime,
        seq: u16,
        d: &DischargeStart,
        out: &mut Vec<Output>,
    ) {
        let i = self.connector_index(d.connector.get());
        let reason = self.discharge_start_check(&d.pile_code, i, d.soc_floor.percent());
        let ok = reason == DischargeReason::None;
        let reply = DischargeStartReply {
            serial: d.serial,
            pile_code: self.spec.pile,
            connector: d.connector,
            result: result(ok),
            reason,
        };
        self.reply(seq, reply, out);
        self.answered(0xC2, 0xC1, ok, out);
        if let (true, Some(i)) = (ok, i) {
            self.start_discharge(i, now, d, out);
        }
    }

    pub(super) fn on_discharge_setpoint(
        &mut self,
        now: SimTime,
        seq: u16,
        s: &DischargeSetpoint,
        out: &mut Vec<Output>,
    ) {
        let pile = self.spec.pile;
        let i = self
            .connector_index(s.connector.get())
            .filter(|_| s.pile_code == pile);
        let ok = match i.map(|i| &mut self.connectors[i].activity) {
            Some(Activity::Discharging(d)) => {
                d.setpoint = s.discharge_power;
                d.setpoint_until = Some(now.plus_secs(s.valid_for_s as u64));
                true
            }
            _ => false,
        };
        let reply = DischargeSetpointReply {
            pile_code: pile,
            connector: s.connector,
            result: result(ok),
        };
        self.reply(seq, reply, out);
        self.answered(0xC4, 0xC3, ok, out);
    }

    pub(super) fn on_discharge_stop(
        &mut self,
        now: SimTime,
        seq: u16,
        s: &DischargeStop,
        out: &mut Vec<Output>,
    ) {
        let pile = self.spec.pile;
        let i = self
            .connector_index(s.connector.get())
            .filter(|_| s.pile_code == pile);
        let (ok, reason) = match i {
            Some(i) if matches!(self.connectors[i].activity, Activity::Discharging(_)) => {
                (true, DischargeReason::None)
            }
            Some(i) if self.connectors[i].vehicle.is_none() => (false, DischargeReason::NotPlugged),
            Some(i) if self.connectors[i].faulted => (false, DischargeReason::Faulted),
            _ => (false, DischargeReason::None),
        };
        let reply = DischargeStopReply {
            pile_code: pile,
            connector: s.connector,
            result: result(ok),
            reason,
        };
        self.reply(seq, reply, out);
        self.answered(0xC6, 0xC5, ok, out);
        if let (true, Some(i)) = (ok, i) {
            self.end_discharge(i, now, DISCHARGE_REMOTE_STOP, out);
        }
    }

    /// Why a discharge cannot start (PROTOCOL.md reasons), `None` if it can.
    fn discharge_start_check(
        &self,
        pile: &PileCode,
        i: Option<usize>,
        floor_pct: u8,
    ) -> DischargeReason {
        let Some(i) = i.filter(|_| *pile == self.spec.pile) else {
            return DischargeReason::Busy;
        };
        let c = &self.connectors[i];
        if !self.spec.v2g {
            return DischargeReason::NotV2gCapable;
        }
        if c.faulted {
            return DischargeReason::Faulted;
        }
        if c.is_busy() || !self.can_start() {
            return DischargeReason::Busy;
        }
        let Some(v) = &c.vehicle else {
            return DischargeReason::NotPlugged;
        };
        if !v.spec.v2g {
            return DischargeReason::NotV2gCapable;
        }
        if v.energy_above_floor(floor_pct).mwh() <= 0 {
            return DischargeReason::SocAtOrBelowFloor;
        }
        DischargeReason::None
    }
}
