//! Distributions of durations, in seconds.
//!
//! Sampling uses inverse transforms of uniform draws, so every sample consumes a fixed number of
//! draws: two runs that differ only in the pacer see the same callees (common random numbers).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A distribution of a duration in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Exponential with the given mean (memoryless: the reference model's choice).
    Exponential { mean_s: f64 },
    /// Lognormal with the given mean and standard deviation (real talk times look like this).
    Lognormal { mean_s: f64, sd_s: f64 },
    /// Always the same value.
    Deterministic { value_s: f64 },
    /// A histogram: `[low_s, high_s, weight]` rows, uniform within a row.
    Empirical { bins: Vec<[f64; 3]> },
}

impl Dist {
    pub fn exp(mean_s: f64) -> Dist {
        Dist::Exponential { mean_s }
    }

    pub fn fixed(value_s: f64) -> Dist {
        Dist::Deterministic { value_s }
    }

    /// Draws one value. Always consumes exactly two uniforms, whatever the kind.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.at(Dist::draw(rng))
    }

    /// The two uniforms a sample consumes, drawn now, for a value computed later (or never)
    /// with [`Dist::at`]: `d.at(Dist::draw(r))` is `d.sample(r)`, bit for bit, and a value
    /// never needed costs no `ln`/`exp`.
    pub fn draw<R: Rng + ?Sized>(rng: &mut R) -> [f64; 2] {
        let u1: f64 = rng.gen();
        let u2: f64 = rng.gen();
        [u1, u2]
    }

    /// The value the uniforms `u` (from [`Dist::draw`]) give.
    pub fn at(&self, u: [f64; 2]) -> f64 {
        self.quantile(u[0], u[1])
    }

    fn quantile(&self, u1: f64, u2: f64) -> f64 {
        match self {
            Dist::Exponential { mean_s } => -mean_s * (1.0 - u1).ln(),
            Dist::Lognormal { mean_s, sd_s } => {
                let (mu, sigma) = lognormal_params(*mean_s, *sd_s);
                (mu + sigma * inverse_normal_cdf(u1.clamp(1e-12, 1.0 - 1e-12))).exp()
            }
            Dist::Deterministic { value_s } => *value_s,
            Dist::Empirical { bins } => {
                let total: f64 = bins.iter().map(|b| b[2]).sum();
                let mut target = u1 * total;
                for b in bins {
                    if target < b[2] {
                        return b[0] + u2 * (b[1] - b[0]);
                    }
                    target -= b[2];
                }
                // Rounding left `target` past the last row: the last row's top.
                bins.last().map_or(0.0, |b| b[1])
            }
        }
    }

    /// The mean of the distribution.
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Exponential { mean_s } | Dist::Lognormal { mean_s, .. } => *mean_s,
            Dist::Deterministic { value_s } => *value_s,
            Dist::Empirical { bins } => {
                let total: f64 = bins.iter().map(|b| b[2]).sum();
                bins.iter().map(|b| b[2] * (b[0] + b[1]) / 2.0).sum::<f64>() / total
            }
        }
    }

    /// Checks the parameters; the error says what is wrong (the caller adds the field).
    pub fn validate(&self) -> Result<(), String> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        match self {
            Dist::Exponential { mean_s } if !(ok(*mean_s) && *mean_s > 0.0) => {
                Err(format!("exponential mean_s must be positive, got {mean_s}"))
            }
            Dist::Lognormal { mean_s, sd_s } if !(ok(*mean_s) && *mean_s > 0.0 && ok(*sd_s)) => {
                Err(format!(
                    "lognormal needs mean_s > 0 and sd_s >= 0, got mean_s {mean_s}, sd_s {sd_s}"
                ))
            }
            Dist::Deterministic { value_s } if !ok(*value_s) => {
                Err(format!("deterministic value_s must be >= 0, got {value_s}"))
            }
            Dist::Empirical { bins } => {
                if bins.is_empty() {
                    return Err("empirical distribution needs at least one bin".into());
                }
                for (i, b) in bins.iter().enumerate() {
                    if !(ok(b[0]) && ok(b[1]) && b[0] <= b[1] && ok(b[2])) {
                        return Err(format!(
                            "empirical bin {i} [{}, {}, {}] must be [low_s, high_s, weight] with 0 <= low_s <= high_s and weight >= 0",
                            b[0], b[1], b[2]
                        ));
                    }
                }
                if bins.iter().map(|b| b[2]).sum::<f64>() <= 0.0 {
                    return Err("empirical bins have zero total weight".into());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// (mu, sigma) of the underlying normal for a lognormal of mean `m` and sd `s`.
fn lognormal_params(m: f64, s: f64) -> (f64, f64) {
    let sigma2 = (1.0 + (s * s) / (m * m)).ln();
    (m.ln() - sigma2 / 2.0, sigma2.sqrt())
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9
/// after one Halley step is not needed at simulation precision: raw error < 1.15e-9 relative).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.02425;
    if p < LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -inverse_normal_cdf(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn sample_mean(d: &Dist, n: usize, seed: u64) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n as f64 - 1.0);
        (m, v.sqrt())
    }

    #[test]
    fn sample_means_match_declared_means() {
        // 40k samples: the standard error of each mean is sd/200, so 4% covers > 5 sigma.
        let seed = 7;
        for d in [
            Dist::exp(120.0),
            Dist::Lognormal {
                mean_s: 150.0,
                sd_s: 90.0,
            },
            Dist::fixed(3.0),
            Dist::Empirical {
                bins: vec![[0.0, 10.0, 1.0], [10.0, 30.0, 3.0]],
            },
        ] {
            let (m, _) = sample_mean(&d, 40_000, seed);
            assert!(
                (m - d.mean()).abs() <= 0.04 * d.mean(),
                "seed {seed}: {d:?} sample mean {m}"
            );
        }
        let (_, sd) = sample_mean(
            &Dist::Lognormal {
                mean_s: 150.0,
                sd_s: 90.0,
            },
            40_000,
            seed,
        );
        assert!((sd - 90.0).abs() < 9.0, "seed {seed}: lognormal sd {sd}");
    }

    #[test]
    fn a_value_drawn_now_and_computed_later_is_the_sample_bit_for_bit() {
        // The simulator draws a fate's uniforms up front and computes only the durations its
        // outcome uses: the stream must advance alike and the values must be the same bits.
        for seed in 0..20u64 {
            for d in [
                Dist::exp(20.0),
                Dist::Lognormal {
                    mean_s: 150.0,
                    sd_s: 90.0,
                },
                Dist::fixed(2.5),
                Dist::Empirical {
                    bins: vec![[0.0, 10.0, 1.0], [10.0, 30.0, 3.0]],
                },
            ] {
                let mut a = ChaCha8Rng::seed_from_u64(seed);
                let mut b = ChaCha8Rng::seed_from_u64(seed);
                for i in 0..50 {
                    let sampled = d.sample(&mut a);
                    let later = d.at(Dist::draw(&mut b));
                    assert_eq!(
                        sampled.to_bits(),
                        later.to_bits(),
                        "seed {seed}, draw {i}: {d:?}"
                    );
                }
                assert_eq!(a.gen::<u64>(), b.gen::<u64>(), "seed {seed}: {d:?}");
            }
        }
    }

    #[test]
    fn inverse_normal_is_symmetric_and_accurate() {
        assert!(inverse_normal_cdf(0.5).abs() < 1e-9);
        assert!((inverse_normal_cdf(0.975) - 1.959_964).abs() < 1e-5);
        assert!((inverse_normal_cdf(0.01) + 2.326_348).abs() < 1e-5);
    }

    #[test]
    fn bad_parameters_are_explained() {
        assert!(Dist::exp(0.0).validate().unwrap_err().contains("mean_s"));
        assert!(Dist::Empirical {
            bins: vec![[5.0, 1.0, 1.0]]
        }
        .validate()
        .unwrap_err()
        .contains("bin 0"));
    }
}
