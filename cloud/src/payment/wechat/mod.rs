//! The WeChat Pay Score connector (API v3 service orders): [`client::WechatPayScore`] creates a
//! service order at session start (the risk fund is the spending limit), completes it with the
//! final amount, cancels it, refunds its collection and queries it; [`sign`] signs requests and
//! verifies answers; [`callback`] verifies and decrypts notifications.

pub mod callback;
pub mod client;
pub mod sign;

pub use client::WechatPayScore;
