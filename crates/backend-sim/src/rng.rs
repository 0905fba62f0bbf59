//! Seeded random streams. Every random quantity comes from a ChaCha stream named by the run's
//! seed and what it is about, so the fate of attempt `k` on record `r` is the same whatever
//! pacer runs (common random numbers), and a seed reproduces a run byte for byte.
//!
//! The generator is ChaCha with 8 rounds, seeded and laid out exactly as `rand_chacha`'s
//! `ChaCha8Rng::seed_from_u64` (PCG32 key expansion, 64-bit block counter in words 12–13,
//! stream 0), so it yields the same numbers; it computes one 64-byte block at a time where
//! `rand_chacha` computes four up front. Most streams here (one per dial attempt, per number,
//! per record) read less than one block, so three quarters of that work was thrown away. A
//! test compares the two generators over several blocks of many streams.

use rand::SeedableRng;
use rand_core::block::{BlockRng, BlockRngCore};

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

/// A seeded stream: ChaCha8, one block computed at a time.
pub type Stream = BlockRng<ChaCha8Block>;

/// The stream named (seed, topic, a, b).
pub fn stream(seed: u64, topic: Topic, a: u64, b: u64) -> Stream {
    let s = mix(mix(mix(mix(seed) ^ topic as u64) ^ a) ^ b);
    Stream::seed_from_u64(s)
}

/// The ChaCha8 block function over a 256-bit key, with a 64-bit block counter and a zero
/// stream id (words 14–15): one 16-word block per call.
#[derive(Debug, Clone)]
pub struct ChaCha8Block {
    key: [u32; 8],
    counter: u64,
}

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

impl BlockRngCore for ChaCha8Block {
    type Item = u32;
    type Results = [u32; 16];

    fn generate(&mut self, out: &mut [u32; 16]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of every x86_64 processor (the target's baseline), and the
        // block only loads from and stores to `self.key` and `out`, whose sizes it is given.
        unsafe {
            sse2::block(&self.key, self.counter, out)
        };
        #[cfg(not(target_arch = "x86_64"))]
        portable::block(&self.key, self.counter, out);
        self.counter = self.counter.wrapping_add(1);
    }
}

/// The block function word by word, for processors without SSE2 (and the reference the SSE2
/// version is tested against).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod portable {
    use super::SIGMA;

    #[inline(always)]
    fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(16);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(12);
        x[a] = x[a].wrapping_add(x[b]);
        x[d] = (x[d] ^ x[a]).rotate_left(8);
        x[c] = x[c].wrapping_add(x[d]);
        x[b] = (x[b] ^ x[c]).rotate_left(7);
    }

    pub(super) fn block(k: &[u32; 8], counter: u64, out: &mut [u32; 16]) {
        let input = [
            SIGMA[0],
            SIGMA[1],
            SIGMA[2],
            SIGMA[3],
            k[0],
            k[1],
            k[2],
            k[3],
            k[4],
            k[5],
            k[6],
            k[7],
            counter as u32,
            (counter >> 32) as u32,
            0,
            0,
        ];
        let mut x = input;
        for _ in 0..4 {
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 1, 5, 9, 13);
            quarter(&mut x, 2, 6, 10, 14);
            quarter(&mut x, 3, 7, 11, 15);
            quarter(&mut x, 0, 5, 10, 15);
            quarter(&mut x, 1, 6, 11, 12);
            quarter(&mut x, 2, 7, 8, 13);
            quarter(&mut x, 3, 4, 9, 14);
        }
        for ((o, x), i) in out.iter_mut().zip(x).zip(input) {
            *o = x.wrapping_add(i);
        }
    }
}

/// The block function on the state's four rows as SSE2 vectors: the four column
/// quarter-rounds at once, then the four diagonal ones after turning rows b, c and d left by
/// one, two and three words.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::SIGMA;
    use core::arch::x86_64::*;

    macro_rules! rotl {
        ($x:expr, $n:literal) => {
            _mm_or_si128(_mm_slli_epi32::<$n>($x), _mm_srli_epi32::<{ 32 - $n }>($x))
        };
    }

    #[inline(always)]
    unsafe fn rounds(a: &mut __m128i, b: &mut __m128i, c: &mut __m128i, d: &mut __m128i) {
        *a = _mm_add_epi32(*a, *b);
        *d = rotl!(_mm_xor_si128(*d, *a), 16);
        *c = _mm_add_epi32(*c, *d);
        *b = rotl!(_mm_xor_si128(*b, *c), 12);
        *a = _mm_add_epi32(*a, *b);
        *d = rotl!(_mm_xor_si128(*d, *a), 8);
        *c = _mm_add_epi32(*c, *d);
        *b = rotl!(_mm_xor_si128(*b, *c), 7);
    }

    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn block(k: &[u32; 8], counter: u64, out: &mut [u32; 16]) {
        let a0 = _mm_setr_epi32(
            SIGMA[0] as i32,
            SIGMA[1] as i32,
            SIGMA[2] as i32,
            SIGMA[3] as i32,
        );
        let b0 = _mm_loadu_si128(k.as_ptr().cast());
        let c0 = _mm_loadu_si128(k.as_ptr().add(4).cast());
        let d0 = _mm_setr_epi32(counter as i32, (counter >> 32) as i32, 0, 0);
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for _ in 0..4 {
            rounds(&mut a, &mut b, &mut c, &mut d);
            b = _mm_shuffle_epi32::<0b00_11_10_01>(b);
            c = _mm_shuffle_epi32::<0b01_00_11_10>(c);
            d = _mm_shuffle_epi32::<0b10_01_00_11>(d);
            rounds(&mut a, &mut b, &mut c, &mut d);
            b = _mm_shuffle_epi32::<0b10_01_00_11>(b);
            c = _mm_shuffle_epi32::<0b01_00_11_10>(c);
            d = _mm_shuffle_epi32::<0b00_11_10_01>(d);
        }
        let o = out.as_mut_ptr();
        _mm_storeu_si128(o.cast(), _mm_add_epi32(a, a0));
        _mm_storeu_si128(o.add(4).cast(), _mm_add_epi32(b, b0));
        _mm_storeu_si128(o.add(8).cast(), _mm_add_epi32(c, c0));
        _mm_storeu_si128(o.add(12).cast(), _mm_add_epi32(d, d0));
    }
}

impl SeedableRng for ChaCha8Block {
    type Seed = [u8; 32];

    fn from_seed(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (k, b) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        ChaCha8Block { key, counter: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_portable_block_function_is_the_same_as_the_fast_one() {
        let mut rng = stream(7, Topic::Carrier, 0, 0);
        for counter in [0, 1, u64::from(u32::MAX), u64::MAX] {
            let key: [u32; 8] = std::array::from_fn(|_| rng.next_u32());
            let mut core = ChaCha8Block { key, counter };
            let (mut fast, mut slow) = ([0u32; 16], [0u32; 16]);
            core.generate(&mut fast);
            portable::block(&key, counter, &mut slow);
            assert_eq!(fast, slow, "counter {counter}");
        }
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(1, Topic::Attempt, 5, 1).gen();
        assert_eq!(a, stream(1, Topic::Attempt, 5, 1).gen::<u64>());
        assert_ne!(a, stream(1, Topic::Attempt, 5, 2).gen::<u64>());
        assert_ne!(a, stream(1, Topic::Attempt, 1, 5).gen::<u64>());
        assert_ne!(a, stream(2, Topic::Attempt, 5, 1).gen::<u64>());
    }

    /// The one-block generator is `rand_chacha`'s ChaCha8 number for number: across block
    /// boundaries, with reads of 32 and 64 bits interleaved (a 64-bit read that straddles a
    /// block takes its high half from the next block), and through `gen_range` and floats.
    #[test]
    fn the_stream_yields_the_same_numbers_as_rand_chacha() {
        for name in 0..300u64 {
            let s = mix(name.wrapping_mul(0x9e37_79b9));
            let mut ours = Stream::seed_from_u64(s);
            let mut theirs = ChaCha8Rng::seed_from_u64(s);
            for i in 0..200u64 {
                match (name + i) % 5 {
                    0 => assert_eq!(ours.next_u32(), theirs.next_u32(), "name {name}, read {i}"),
                    1 => assert_eq!(ours.next_u64(), theirs.next_u64(), "name {name}, read {i}"),
                    2 => assert_eq!(
                        ours.gen::<f64>().to_bits(),
                        theirs.gen::<f64>().to_bits(),
                        "name {name}, read {i}"
                    ),
                    3 => assert_eq!(
                        ours.gen_range(1..=7u32),
                        theirs.gen_range(1..=7u32),
                        "name {name}, read {i}"
                    ),
                    _ => {
                        let (mut a, mut b) = ([0u8; 13], [0u8; 13]);
                        ours.fill_bytes(&mut a);
                        theirs.fill_bytes(&mut b);
                        assert_eq!(a, b, "name {name}, read {i}");
                    }
                }
            }
        }
    }
}
