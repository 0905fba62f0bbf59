//! Statistics over seeds: the mean of a measure and its 95% confidence interval (Student t),
//! and paired comparisons of two pacers run on the same callees.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided confidence level of every interval here.
pub const CONFIDENCE: f64 = 0.95;

/// The mean of `n` values and the half-width of its 95% interval, `t(0.975, n−1) · s / √n`.
/// With one value the interval is unknown (`half_width` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator).
    pub sd: f64,
    pub half_width: Option<f64>,
}

impl MeanCi {
    /// Of `values`; `None` when there are none or one is not finite.
    pub fn of(values: &[f64]) -> Option<MeanCi> {
        let n = values.len();
        if n == 0 || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(MeanCi {
                n,
                mean,
                sd: 0.0,
                half_width: None,
            });
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .ok()
            .map(|d| d.inverse_cdf(0.5 + CONFIDENCE / 2.0))?;
        Some(MeanCi {
            n,
            mean,
            sd,
            half_width: Some(t * sd / (n as f64).sqrt()),
        })
    }

    pub fn lo(&self) -> f64 {
        self.mean - self.half_width.unwrap_or(f64::INFINITY)
    }

    pub fn hi(&self) -> f64 {
        self.mean + self.half_width.unwrap_or(f64::INFINITY)
    }

    /// Every value of this interval is above every value of `other`'s.
    pub fn above(&self, other: &MeanCi) -> bool {
        self.lo() > other.hi()
    }

    /// `mean ± half` with `decimals` digits and the values multiplied by `scale`.
    pub fn show(&self, scale: f64, decimals: usize) -> String {
        match self.half_width {
            Some(h) => format!(
                "{:.d$} ± {:.d$}",
                self.mean * scale,
                h * scale,
                d = decimals
            ),
            None => format!("{:.d$}", self.mean * scale, d = decimals),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_matches_a_hand_computed_student_t_interval() {
        // 1..=5: mean 3, s = √2.5 = 1.581139, t(0.975, 4) = 2.776445 (tables),
        // half-width = 2.776445 × 1.581139 / √5 = 1.963243.
        let ci = MeanCi::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(ci.n, 5);
        assert!((ci.mean - 3.0).abs() < 1e-12);
        assert!((ci.sd - 1.581_139).abs() < 1e-6, "{ci:?}");
        let h = ci.half_width.unwrap();
        assert!((h - 1.963_243).abs() < 1e-5, "{h}");
        assert!((ci.lo() - 1.036_757).abs() < 1e-5);
        assert_eq!(ci.show(1.0, 2), "3.00 ± 1.96");
    }

    #[test]
    fn twenty_seeds_use_nineteen_degrees_of_freedom() {
        // t(0.975, 19) = 2.093024; values 0, 1, 0, 1, …: mean 0.5, s = 0.512989.
        let v: Vec<f64> = (0..20).map(|i| f64::from(i % 2)).collect();
        let ci = MeanCi::of(&v).unwrap();
        let expected = 2.093_024 * 0.512_989_2 / 20f64.sqrt();
        assert!(
            (ci.half_width.unwrap() - expected).abs() < 1e-5,
            "{ci:?} vs {expected}"
        );
    }

    #[test]
    fn one_value_has_no_interval_and_none_or_nan_has_no_mean() {
        let one = MeanCi::of(&[0.7]).unwrap();
        assert_eq!(one.half_width, None);
        assert_eq!(one.show(100.0, 1), "70.0");
        assert!(!one.above(&MeanCi::of(&[0.1, 0.2]).unwrap()));
        assert_eq!(MeanCi::of(&[]), None);
        assert_eq!(MeanCi::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn disjoint_intervals_are_above_and_overlapping_ones_are_not() {
        let hi = MeanCi::of(&[0.80, 0.81, 0.82]).unwrap();
        let lo = MeanCi::of(&[0.70, 0.71, 0.72]).unwrap();
        let mid = MeanCi::of(&[0.75, 0.80, 0.85]).unwrap();
        assert!(hi.above(&lo));
        assert!(!lo.above(&hi));
        assert!(!hi.above(&mid));
    }
}
