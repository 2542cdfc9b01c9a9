//! Working parameters, time sync, billing model set and parking locks (reference chapters 9-10).

crate::message::placeholder_bodies! {
    WorkingParamsReply = 0x51, "working_params_reply";
    WorkingParams = 0x52, "working_params";
    TimeSyncReply = 0x55, "time_sync_reply";
    TimeSync = 0x56, "time_sync";
    BillingModelSetReply = 0x57, "billing_model_set_reply";
    BillingModelSet = 0x58, "billing_model_set";
    ParkingLockStatus = 0x61, "parking_lock_status";
    ParkingLockCommand = 0x62, "parking_lock_command";
    ParkingLockReply = 0x63, "parking_lock_reply";
}
