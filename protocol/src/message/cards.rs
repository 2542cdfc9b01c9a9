//! The offline card list: sync, clear, query (reference chapter 8).

crate::message::placeholder_bodies! {
    CardSyncReply = 0x43, "card_sync_reply";
    CardSync = 0x44, "card_sync";
    CardClearReply = 0x45, "card_clear_reply";
    CardClear = 0x46, "card_clear";
    CardQueryReply = 0x47, "card_query_reply";
    CardQuery = 0x48, "card_query";
}
