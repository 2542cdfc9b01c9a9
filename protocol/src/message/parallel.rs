//! Parallel charging (reference chapter 12).

crate::message::placeholder_bodies! {
    ParallelStartRequest = 0xA1, "parallel_start_request";
    ParallelStartReply = 0xA2, "parallel_start_reply";
    ParallelRemoteStartReply = 0xA3, "parallel_remote_start_reply";
    ParallelRemoteStart = 0xA4, "parallel_remote_start";
}
