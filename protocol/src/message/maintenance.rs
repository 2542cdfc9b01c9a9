//! Remote reboot and remote update (reference chapter 11).

crate::message::placeholder_bodies! {
    RebootReply = 0x91, "reboot_reply";
    Reboot = 0x92, "reboot";
    UpdateReply = 0x93, "update_reply";
    Update = 0x94, "update";
}
