//! Property tests over every frame type the registry knows:
//!
//! - random valid messages round-trip: starting from a valid body of each type, random field
//!   bytes are mutated; whenever the result still decodes, encoding it gives back exactly the
//!   same bytes, and its JSON form gives back the same message;
//! - arbitrary bytes never panic the decoder (bounded: a few thousand cases per run).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use voltline_protocol::frame::{self, fix_checksum, MAX_BODY_LEN};
use voltline_protocol::message::{type_name, ALL_TYPES};
use voltline_protocol::{Frame, Message};

fn frame_bytes(frame_type: u8, seq: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x68, (body.len() + 4) as u8];
    f.extend_from_slice(&seq.to_le_bytes());
    f.push(0x00);
    f.push(frame_type);
    f.extend_from_slice(body);
    f.extend_from_slice(&[0, 0]);
    fix_checksum(&mut f);
    f
}

/// Fill patterns tried to find a valid body of each length: most fields accept zeros, code
/// tables often start at 1, counts must match lengths.
const FILLS: [u8; 6] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05];

/// One valid body per frame type (the shortest found), searched by brute force so that the
/// test needs no knowledge of any layout. Computed once.
fn templates() -> &'static [(u8, Vec<u8>)] {
    static T: std::sync::OnceLock<Vec<(u8, Vec<u8>)>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let decodes = |t: u8, body: &[u8]| frame::decode(&frame_bytes(t, 0, body)).is_ok();
        let mut found = Vec::new();
        for &t in ALL_TYPES {
            'search: for len in 0..=MAX_BODY_LEN {
                for fill in FILLS {
                    let body = vec![fill; len];
                    if decodes(t, &body) {
                        found.push((t, body));
                        break 'search;
                    }
                }
                // Variable-length bodies: a small count somewhere in the first bytes.
                for at in 0..len.min(12) {
                    for count in 1..=4u8 {
                        let mut body = vec![0u8; len];
                        body[at] = count;
                        if decodes(t, &body) {
                            found.push((t, body));
                            break 'search;
                        }
                    }
                }
            }
        }
        found
    })
}

#[test]
fn templates_cover_nearly_every_frame_type() {
    let t = templates();
    let missing: Vec<String> = ALL_TYPES
        .iter()
        .filter(|code| !t.iter().any(|(c, _)| c == *code))
        .map(|code| format!("0x{code:02X} {}", type_name(*code).unwrap_or("?")))
        .collect();
    // Every type must be covered here or by its own sample tests; the search is a cheap way
    // to reach all of them at once, and must reach the large majority.
    assert!(
        missing.len() * 10 <= ALL_TYPES.len(),
        "no template found for {} types: {missing:?}",
        missing.len()
    );
}

fn check_round_trip(bytes: &[u8]) -> Result<bool, TestCaseError> {
    match frame::decode(bytes) {
        Err(_) => Ok(false),
        Ok(f) => {
            let again = f
                .to_bytes()
                .map_err(|e| TestCaseError::fail(format!("decoded frame does not encode: {e}")))?;
            prop_assert_eq!(hex::encode(&again), hex::encode(bytes));
            let json = serde_json::to_string(&f)
                .map_err(|e| TestCaseError::fail(format!("no JSON: {e}")))?;
            let back: Frame = serde_json::from_str(&json).map_err(|e| {
                TestCaseError::fail(format!("JSON does not parse back: {e}\n{json}"))
            })?;
            prop_assert_eq!(&back, &f);
            let msg_json = serde_json::to_value(&f.message).unwrap();
            let msg_back: Message = serde_json::from_value(msg_json).unwrap();
            prop_assert_eq!(msg_back, f.message);
            Ok(true)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    #[test]
    fn mutated_valid_bodies_round_trip_whenever_they_decode(
        pick in any::<prop::sample::Index>(),
        seq in any::<u16>(),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![0u8..=9, 0u8..=0x99, any::<u8>()]),
            1..12),
    ) {
        let t = templates();
        let (frame_type, template) = &t[pick.index(t.len())];
        let mut body = template.clone();
        if !body.is_empty() {
            for (at, value) in &edits {
                let i = at.index(body.len());
                body[i] = *value;
            }
        }
        check_round_trip(&frame_bytes(*frame_type, seq, &body))?;
    }

    #[test]
    fn arbitrary_bodies_of_known_types_never_panic(
        pick in any::<prop::sample::Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..=MAX_BODY_LEN),
    ) {
        let frame_type = ALL_TYPES[pick.index(ALL_TYPES.len())];
        check_round_trip(&frame_bytes(frame_type, 7, &body))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame::decode(&bytes);
    }
}

/// The mutation property above must not be vacuous: a good share of mutated bodies decode.
#[test]
fn mutation_property_exercises_real_decodes() {
    use proptest::test_runner::{Config, TestRunner};
    let t = templates();
    let mut runner = TestRunner::new(Config::default());
    let mut decoded = 0;
    let total = 1_000;
    for _ in 0..total {
        let (idx, edits) = (
            any::<prop::sample::Index>(),
            proptest::collection::vec((any::<prop::sample::Index>(), 0u8..=9), 1..4),
        )
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let (frame_type, template) = &t[idx.index(t.len())];
        let mut body = template.clone();
        if !body.is_empty() {
            for (at, v) in edits {
                let i = at.index(body.len());
                body[i] = v;
            }
        }
        if check_round_trip(&frame_bytes(*frame_type, 1, &body)).unwrap() {
            decoded += 1;
        }
    }
    assert!(
        decoded * 4 >= total,
        "only {decoded} of {total} mutated bodies decoded"
    );
}
