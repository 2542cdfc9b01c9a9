//! Real-time data and the GB/T 27930 charging stages (reference chapter 7).

crate::message::placeholder_bodies! {
    ReadRealTimeData = 0x12, "read_real_time_data";
    RealTimeData = 0x13, "real_time_data";
    ChargingHandshake = 0x15, "charging_handshake";
    ParameterConfig = 0x17, "parameter_config";
    ChargingFinished = 0x19, "charging_finished";
    ErrorReport = 0x1B, "error_report";
    BmsStop = 0x1D, "bms_stop";
    ChargerStop = 0x21, "charger_stop";
    BmsDemand = 0x23, "bms_demand";
    BmsInfo = 0x25, "bms_info";
}
