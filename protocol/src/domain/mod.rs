//! Value types shared by edge and cloud. Both sides must compute money and energy
//! identically, so these types live here and nowhere else.

pub mod electrical;
pub mod energy;
pub mod ids;
pub mod money;

pub use electrical::{Current, Soc, Temperature, Voltage};
pub use energy::{Energy, Power, QuantityError};
pub use ids::{
    AccountId, BadId, CommandId, ConnectorNo, OperatorId, OrderId, PileCode, SerialTime, SiteId,
    TransactionSerial,
};
pub use money::{Money, MoneyError, RoundingRule};
