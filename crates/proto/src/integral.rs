//! Integers as JSON writes them. JSON has one number type, and JSON Schema counts `224.0`
//! as an integer, so a client whose JSON library writes every number with a fraction
//! (JavaScript's cannot tell `224` from `224.0`, others print floats that way) sends a
//! valid `seq`. These read such a number as the integer it is, and still refuse one
//! with a fractional part (`224.5`) or out of range.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use uuid::Uuid;

/// The largest magnitude an `f64` holds exactly with every integer below it (2^53).
const EXACT: f64 = 9_007_199_254_740_992.0;

struct Integral;

impl Visitor<'_> for Integral {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() <= EXACT {
            // Exact: an integral value within ±2^53.
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

/// An `i64` field that also takes an integral number written with a fraction.
pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Integral)
}

/// A `u64` field (a count or a duration) that also takes an integral number written with
/// a fraction; a negative one is refused.
pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = i64(d)?;
    u64::try_from(v)
        .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(v), &"a non-negative integer"))
}

/// A `seq` as a map value.
struct Seq(i64);

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64(d).map(Seq)
    }
}

/// Sync cursors whose seqs may be written as `7.0`.
pub(crate) fn cursors<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Uuid, i64>, D::Error> {
    let raw = BTreeMap::<Uuid, Seq>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(room, Seq(seq))| (room, seq))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::ReceiptRequest;

    #[test]
    fn a_mute_takes_its_duration_written_with_a_fraction() {
        let read = |json: &str| serde_json::from_str::<crate::MuteRequest>(json);
        assert_eq!(
            read(r#"{"durationSecs": 3942.0}"#)
                .expect("integral")
                .duration_secs,
            3942
        );
        assert_eq!(
            read(r#"{"durationSecs": 60}"#)
                .expect("integer")
                .duration_secs,
            60
        );
        assert!(read(r#"{"durationSecs": 1.5}"#).is_err());
        assert!(read(r#"{"durationSecs": -1}"#).is_err());
    }

    #[test]
    fn integral_numbers_with_a_fraction_are_integers() {
        let ok = |json: &str| serde_json::from_str::<ReceiptRequest>(json).map(|r| r.seq);
        assert_eq!(ok(r#"{"seq": 224, "status": "read"}"#).ok(), Some(224));
        assert_eq!(ok(r#"{"seq": 224.0, "status": "read"}"#).ok(), Some(224));
        assert_eq!(ok(r#"{"seq": 2.24e2, "status": "read"}"#).ok(), Some(224));
        assert_eq!(ok(r#"{"seq": -3.0, "status": "read"}"#).ok(), Some(-3));
        for refused in [
            r#"{"seq": 224.5, "status": "read"}"#,
            r#"{"seq": 1e300, "status": "read"}"#,
            r#"{"seq": 18446744073709551615, "status": "read"}"#,
            r#"{"seq": "224", "status": "read"}"#,
            r#"{"seq": null, "status": "read"}"#,
        ] {
            assert!(ok(refused).is_err(), "{refused}");
        }
    }
}
