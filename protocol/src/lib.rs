//! `voltline-protocol`: the contract every other Voltline part is built on.
//!
//! It owns:
//! - the charger wire protocol (YKC v1.6 plus Voltline's V2G extension, see
//!   `shared/PROTOCOL.md`): typed messages for every frame ([`message`]), the envelope
//!   ([`frame`]), typed errors ([`error`]) and a streaming `tokio-util` codec ([`codec`]);
//! - the value types both edge and cloud must compute identically ([`domain`]): `Money`,
//!   `Energy`, `Power`, ids, the time-of-use [`tariff`] with its cost function, and how a
//!   bidirectional meter's registers are counted ([`metering`]);
//! - MQTT topic names ([`topics`]) and the serde messages between edge and cloud ([`sync`]).
//!
//! It must never do I/O: no sockets, files, clocks or threads. Everything here is pure and
//! deterministic so that both sides of a link, and the tests, agree byte for byte and cent
//! for cent. Decoding never panics on any input; encoding refuses values a field cannot carry
//! instead of truncating them.

pub mod codec;
pub mod domain;
pub mod error;
pub mod frame;
pub mod message;
pub mod metering;
pub mod sync;
pub mod tariff;
pub mod topics;
pub mod wire;

pub use codec::FrameCodec;
pub use domain::{Energy, Money, PileCode, Power, TransactionSerial};
pub use error::FrameError;
pub use frame::{Encryption, Frame};
pub use message::Message;
pub use wire::write::EncodeError;
