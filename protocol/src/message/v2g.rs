//! Voltline's V2G extension, frame types 0xC1..0xCA (PROTOCOL.md).

crate::message::placeholder_bodies! {
    DischargeStartReply = 0xC1, "discharge_start_reply";
    DischargeStart = 0xC2, "discharge_start";
    DischargeSetpointReply = 0xC3, "discharge_setpoint_reply";
    DischargeSetpoint = 0xC4, "discharge_setpoint";
    DischargeStopReply = 0xC5, "discharge_stop_reply";
    DischargeStop = 0xC6, "discharge_stop";
    BidirectionalMeter = 0xC7, "bidirectional_meter";
    DischargeRecord = 0xC9, "discharge_record";
    DischargeRecordAck = 0xCA, "discharge_record_ack";
}
