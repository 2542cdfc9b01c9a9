//! Serde for fixed arrays longer than serde supports (e.g. the 48 half-hour slots):
//! `#[serde(with = "crate::wire::fixed_array")]`. Deserialising checks the length.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises as a sequence.
pub fn serialize<S: Serializer, T: Serialize, const N: usize>(
    v: &[T; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter())
}

/// Deserialises a sequence of exactly `N` items.
pub fn deserialize<'de, D, T, const N: usize>(d: D) -> Result<[T; N], D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v = Vec::<T>::deserialize(d)?;
    let len = v.len();
    v.try_into()
        .map_err(|_| serde::de::Error::custom(format!("expected exactly {N} items, found {len}")))
}
