//! Column types that mean the same in both dialects, so one query text serves both.
//!
//! - [`DbTime`]: an instant. PostgreSQL `TIMESTAMPTZ` (binary: microseconds since 2000-01-01
//!   UTC); SQLite `INTEGER` microseconds since 1970-01-01 UTC. Both exact to the microsecond,
//!   both sort as time does.
//! - [`DbMoney`]: an exact amount. PostgreSQL `NUMERIC` (through `rust_decimal`); SQLite
//!   `TEXT` holding the decimal string. Never a float on either side.
//!
//! Instants are truncated to whole microseconds on the way in (`DbTime::from`), which is the
//! one place precision is lost; callers that compare stored instants use [`truncate_us`].

use jiff::Timestamp;
use rust_decimal::Decimal;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Type};
use voltline_protocol::Money;

/// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// PostgreSQL's type oid of `timestamptz`.
const TIMESTAMPTZ_OID: u32 = 1184;
/// PostgreSQL's type oid of `timestamptz[]`.
const TIMESTAMPTZ_ARRAY_OID: u32 = 1185;

/// `t` truncated to whole microseconds: what a stored instant reads back as.
pub fn truncate_us(t: Timestamp) -> Timestamp {
    let us = t.as_microsecond();
    Timestamp::from_microsecond(us).unwrap_or(t)
}

/// An instant as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTime(pub Timestamp);

impl DbTime {
    fn unix_us(self) -> i64 {
        self.0.as_microsecond()
    }

    fn from_unix_us(us: i64) -> Result<DbTime, BoxDynError> {
        Timestamp::from_microsecond(us)
            .map(DbTime)
            .map_err(|e| format!("stored instant {us} µs is out of range: {e}").into())
    }
}

impl From<Timestamp> for DbTime {
    fn from(t: Timestamp) -> DbTime {
        DbTime(truncate_us(t))
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode_by_ref(&self.unix_us(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        DbTime::from_unix_us(<i64 as Decode<Sqlite>>::decode(value)?)
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(TIMESTAMPTZ_OID))
    }
}

impl PgHasArrayType for DbTime {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(TIMESTAMPTZ_ARRAY_OID))
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let pg_us = self
            .unix_us()
            .checked_sub(PG_EPOCH_OFFSET_US)
            .ok_or("instant out of PostgreSQL's range")?;
        <i64 as Encode<Postgres>>::encode_by_ref(&pg_us, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let pg_us = <i64 as Decode<Postgres>>::decode(value)?;
        let unix_us = pg_us
            .checked_add(PG_EPOCH_OFFSET_US)
            .ok_or("stored instant out of range")?;
        DbTime::from_unix_us(unix_us)
    }
}

/// An exact amount of money as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbMoney(pub Money);

impl Type<Sqlite> for DbMoney {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for DbMoney {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(self.0.yuan().to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbMoney {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(DbMoney(text.parse::<Money>()?))
    }
}

impl Type<Postgres> for DbMoney {
    fn type_info() -> PgTypeInfo {
        <Decimal as Type<Postgres>>::type_info()
    }
}

impl PgHasArrayType for DbMoney {
    fn array_type_info() -> PgTypeInfo {
        <Decimal as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for DbMoney {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Decimal as Encode<Postgres>>::encode_by_ref(&self.0.yuan(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbMoney {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DbMoney(Money::from_yuan(
            <Decimal as Decode<Postgres>>::decode(value)?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_truncate_to_microseconds() {
        let t = Timestamp::new(1_700_000_000, 123_456_789).unwrap();
        let d = DbTime::from(t);
        assert_eq!(d.0.subsec_nanosecond(), 123_456_000);
        assert_eq!(truncate_us(t), d.0);
    }
}
