//! Seeded random streams. Every random quantity comes from a ChaCha stream named by the run's
//! seed and what it is about, so the fate of attempt `k` on record `r` is the same whatever
//! pacer runs (common random numbers), and a seed reproduces a run byte for byte.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is about; part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Topic {
    /// The fate of one dial attempt: (record, attempt).
    Attempt = 1,
    /// Whether a number exists: (record, number index).
    Number = 2,
    /// How a record was made: (record, 0).
    Record = 3,
    /// An agent's wrap-ups, breaks and shift jitter: (agent, 0).
    Agent = 4,
    /// A pacer's own randomness (open-loop arrivals): (0, 0).
    Pacer = 5,
    /// The carrier's latencies: (0, 0).
    Carrier = 6,
}

/// SplitMix64 finaliser: a bijective mix, so distinct names give unrelated seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream named (seed, topic, a, b).
pub fn stream(seed: u64, topic: Topic, a: u64, b: u64) -> ChaCha8Rng {
    let s = mix(mix(mix(mix(seed) ^ topic as u64) ^ a) ^ b);
    ChaCha8Rng::seed_from_u64(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(1, Topic::Attempt, 5, 1).gen();
        assert_eq!(a, stream(1, Topic::Attempt, 5, 1).gen::<u64>());
        assert_ne!(a, stream(1, Topic::Attempt, 5, 2).gen::<u64>());
        assert_ne!(a, stream(1, Topic::Attempt, 1, 5).gen::<u64>());
        assert_ne!(a, stream(2, Topic::Attempt, 5, 1).gen::<u64>());
    }
}
