//! Starts, stops, transaction records and balance updates (reference chapter 8).

crate::message::placeholder_bodies! {
    PileStartRequest = 0x31, "pile_start_request";
    PileStartReply = 0x32, "pile_start_reply";
    RemoteStartReply = 0x33, "remote_start_reply";
    RemoteStart = 0x34, "remote_start";
    RemoteStopReply = 0x35, "remote_stop_reply";
    RemoteStop = 0x36, "remote_stop";
    TransactionRecord = 0x3B, "transaction_record";
    TransactionRecordAck = 0x40, "transaction_record_ack";
    BalanceUpdateReply = 0x41, "balance_update_reply";
    BalanceUpdate = 0x42, "balance_update";
}
