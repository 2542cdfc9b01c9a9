//! The Alipay fund-authorisation connector: [`client::AlipayCredit`] freezes the spending limit
//! at session start (`alipay.fund.auth.order.freeze`), pays the final amount with the
//! authorisation (`alipay.trade.pay`, `auth_confirm_mode=COMPLETE` unfreezes the rest), cancels
//! (`alipay.fund.auth.operation.cancel`), refunds (`alipay.trade.refund`) and queries
//! (`alipay.trade.query`, `alipay.fund.auth.operation.detail.query`); [`sign`] does RSA2.

pub mod client;
pub mod sign;

pub use client::AlipayCredit;
