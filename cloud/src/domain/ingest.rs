//! The cumulative acknowledgement, as pure arithmetic.
//!
//! For each site the store keeps `acked` — every sequence `1..=acked` is committed — and the
//! set of committed sequences above it (`pending`: they arrived before a gap was filled).
//! The invariant is `acked + 1 ∉ pending`. When a batch arrives:
//!
//! 1. records at or below `acked` are duplicates;
//! 2. records whose sequence is already in `pending` are duplicates;
//! 3. the rest are fresh and get stored;
//! 4. the new ack is the end of the contiguous run starting at `acked + 1` through fresh and
//!    pending sequences.
//!
//! [`plan`] does steps 1–4 for the part of `pending` that overlaps the batch's range. Only when
//! the run reaches the batch's last sequence can it continue into `pending` beyond the batch;
//! [`IngestPlan::continues_past_batch`] tells the store to look there (one indexed query).

/// What to do with one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestPlan {
    /// Indexes (into the batch) of the records to store.
    pub fresh: Vec<usize>,
    /// The contiguous ack reached using the batch and the overlapping pending sequences.
    pub ack: u64,
    /// True when the run reached the batch's last sequence, so pending sequences right after
    /// it may extend the ack.
    pub continues_past_batch: bool,
}

/// Plans a batch. `seqs` are the batch's sequences, strictly increasing (a validated batch);
/// `pending_in_range` are the site's pending sequences between the batch's first and last,
/// sorted ascending.
pub fn plan(acked: u64, seqs: &[u64], pending_in_range: &[u64]) -> IngestPlan {
    debug_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "batch not validated");
    debug_assert!(pending_in_range.windows(2).all(|w| w[0] < w[1]));
    let mut fresh = Vec::new();
    let mut ack = acked;
    let mut p = 0usize;
    for (index, &seq) in seqs.iter().enumerate() {
        if seq <= acked {
            continue;
        }
        // Pending sequences below this one may extend the run first.
        while p < pending_in_range.len() && pending_in_range[p] < seq {
            if pending_in_range[p] == ack + 1 {
                ack += 1;
            }
            p += 1;
        }
        let already = p < pending_in_range.len() && pending_in_range[p] == seq;
        if !already {
            fresh.push(index);
        }
        if seq == ack + 1 {
            ack = seq;
        }
    }
    // Pending sequences between the last record and the batch's end cannot exist (the range
    // ends at the last record), so the run's reach is decided.
    let continues_past_batch = seqs.last().is_some_and(|&last| last > acked && ack == last);
    IngestPlan {
        fresh,
        ack,
        continues_past_batch,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn in_order_batches_ack_their_last_sequence() {
        let p = plan(0, &[1, 2, 3], &[]);
        assert_eq!(
            p,
            IngestPlan {
                fresh: vec![0, 1, 2],
                ack: 3,
                continues_past_batch: true
            }
        );
        let p = plan(3, &[4, 5], &[]);
        assert_eq!(p.ack, 5);
    }

    #[test]
    fn duplicates_below_the_ack_are_skipped() {
        let p = plan(5, &[3, 4, 5, 6], &[]);
        assert_eq!(p.fresh, vec![3]);
        assert_eq!(p.ack, 6);
        let p = plan(5, &[1, 2], &[]);
        assert_eq!(
            p,
            IngestPlan {
                fresh: vec![],
                ack: 5,
                continues_past_batch: false
            }
        );
    }

    #[test]
    fn a_gap_holds_the_ack_back() {
        let p = plan(0, &[2, 3], &[]);
        assert_eq!(
            p,
            IngestPlan {
                fresh: vec![0, 1],
                ack: 0,
                continues_past_batch: false
            }
        );
    }

    #[test]
    fn pending_sequences_are_duplicates_and_extend_the_run() {
        // 3 and 4 arrived earlier; now 1..=5 arrives.
        let p = plan(0, &[1, 2, 3, 4, 5], &[3, 4]);
        assert_eq!(p.fresh, vec![0, 1, 4]);
        assert_eq!(p.ack, 5);
        // 2 arrived earlier; now 1 and 3 arrive (sparse batch).
        let p = plan(0, &[1, 3], &[2]);
        assert_eq!(p.fresh, vec![0, 1]);
        assert_eq!(p.ack, 3);
        assert!(p.continues_past_batch);
    }

    proptest! {
        /// Deliver random batches — contiguous runs and sparse subsets of 1..=n — in random
        /// order, possibly repeated, then everything; after each the ack is the true
        /// contiguous maximum, and nothing is stored twice.
        #[test]
        fn ack_matches_a_set_model(
            n in 1u64..60,
            cuts in prop::collection::vec((1u64..60, 1u64..60, any::<u64>(), any::<bool>()), 1..25),
        ) {
            let mut acked = 0u64;
            let mut pending = BTreeSet::new();
            let mut stored = BTreeSet::new();
            let mut batches: Vec<Vec<u64>> = cuts
                .iter()
                .map(|&(a, b, mask, sparse)| {
                    let (lo, hi) = (a.min(b).min(n), a.max(b).min(n));
                    let run = (lo..=hi).filter(|s| !sparse || mask & (1 << (s % 64)) != 0);
                    let v: Vec<u64> = run.collect();
                    if v.is_empty() { vec![lo] } else { v }
                })
                .collect();
            batches.push((1..=n).collect());
            for seqs in &batches {
                let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
                let in_range: Vec<u64> = pending.range(first..=last).copied().collect();
                let p = plan(acked, seqs, &in_range);
                for &i in &p.fresh {
                    prop_assert!(stored.insert(seqs[i]), "stored {} twice", seqs[i]);
                    if seqs[i] > p.ack { pending.insert(seqs[i]); }
                }
                let mut ack = p.ack;
                if p.continues_past_batch {
                    while pending.contains(&(ack + 1)) { ack += 1; }
                }
                pending.retain(|&s| s > ack);
                acked = ack;
                let truth = (1..).take_while(|s| stored.contains(s)).count() as u64;
                prop_assert_eq!(acked, truth);
                prop_assert!(!pending.contains(&(acked + 1)));
            }
            prop_assert_eq!(acked, n);
        }
    }
}
