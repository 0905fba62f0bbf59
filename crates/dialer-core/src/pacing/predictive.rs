//! The predictive pacer: dials ahead of free agents using what it has learned online.
//!
//! It is told nothing about the campaign. From the engine's [`PacingEvent`]s it estimates the
//! live-answer probability `p`, the time a dial takes to resolve, talk time and wrap-up time.
//! At each decision it forecasts, for a few possible resolution times of one more dial, how
//! many agents will be free then (free now, minus callers waiting, plus busy agents finishing,
//! minus the live answers of the other dials in flight that resolve first), and from that the
//! probability that this extra dial is a live answer finding nobody: its *marginal
//! abandonment risk*. It keeps adding dials while that risk stays under a threshold λ.
//!
//! λ is the price of an abandon (the Lagrange multiplier of "maximise occupancy subject to
//! abandoned ≤ α × live"). It is learned by stochastic approximation so that the long-run
//! abandonment rate settles at a target just under the cap: every live answer that reaches an
//! agent raises log λ a little, every abandon lowers it a lot, and the two balance exactly at
//! the target rate. No model parameter is given; the same rule works with 3 or 500 agents.
//!
//! The legal cap is not left to the controller: the engine's guard
//! ([`super::abandonment::guard`]) bounds calls at risk by the period's remaining budget
//! (`cap × live − abandoned`), so dialing falls back to progressive when the budget is thin
//! (at campaign start, after a bad patch, at the start of each legal period). The pacer does
//! the same on its own, and does not let λ grow while the guard is what holds it back.

use super::{AgentPhase, Pacer, PacingEvent, PacingSnapshot};
use chrono::{DateTime, Utc};

/// Exponentially weighted mean with a prior that counts as `prior_weight` observations.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    mean: f64,
    weight: f64,
}

impl Estimate {
    fn new(prior: f64, prior_weight: f64) -> Estimate {
        Estimate {
            mean: prior,
            weight: prior_weight,
        }
    }

    fn add(&mut self, x: f64, max_weight: f64) {
        self.weight = (self.weight + 1.0).min(max_weight);
        self.mean += (x - self.mean) / self.weight;
    }
}

/// Settings of the predictive pacer.
#[derive(Debug, Clone, Copy)]
pub struct PredictiveConfig {
    /// Long-run abandonment rate aimed at, as a fraction of the campaign cap.
    pub target_fraction_of_cap: f64,
    /// Memory of the estimators, in observations.
    pub memory: f64,
    /// Step of the controller on log λ.
    pub gain: f64,
    /// λ at start: the marginal abandonment risk one more dial may carry.
    pub initial_risk: f64,
}

impl Default for PredictiveConfig {
    fn default() -> Self {
        PredictiveConfig {
            target_fraction_of_cap: 0.97,
            memory: 2000.0,
            gain: 0.25,
            initial_risk: 0.15,
        }
    }
}

/// Gauss–Laguerre nodes and weights (5 points): E[f(τ)] for τ ~ Exp(1).
const NODES: [(f64, f64); 5] = [
    (0.263_560_319_718_14, 0.521_755_610_582_81),
    (1.413_403_059_106_5, 0.398_666_811_083_18),
    (3.596_425_771_040_7, 0.075_942_449_681_708),
    (7.085_810_005_858_8, 0.003_611_758_679_922),
    (12.640_800_844_276, 0.000_023_369_972_385_8),
];

/// `1 − e^{−x}` at each node: the chance that another dial (same resolution-time law,
/// memoryless) resolves before this one does, if this one resolves at node `x`.
const BEFORE: [f64; 5] = [
    0.231_688_723_3,
    0.756_686_138_8,
    0.972_578_441_6,
    0.999_163_103_4,
    0.999_996_762_8,
];

/// The predictive pacer. See the module doc.
#[derive(Debug, Clone)]
pub struct Predictive {
    cfg: PredictiveConfig,
    live_prob: Estimate,
    dial_s: Estimate,
    talk_s: Estimate,
    wrap_s: Estimate,
    /// λ: the largest marginal abandonment risk accepted for one more dial.
    risk: f64,
    /// The last decision wanted more calls at risk than the period's budget allows.
    held_by_budget: bool,
    /// The campaign's cap, as last seen in a snapshot.
    cap: f64,
    /// The chance that a talking agent is free by each node, and the estimates it was
    /// computed from (the bits of the wrap-up mean, the talk mean and the dial time): five
    /// `exp`s a decision, made again only when one of the three has changed.
    talking_frees: Option<([u64; 3], [f64; 5])>,
}

impl Default for Predictive {
    fn default() -> Self {
        Predictive::new(PredictiveConfig::default())
    }
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 for erf, |error| < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-z * z).exp();
    let erf = if z >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

impl Predictive {
    /// A predictive pacer with `cfg`, starting from weak priors it overrides after a few dozen
    /// observations.
    pub fn new(cfg: PredictiveConfig) -> Predictive {
        Predictive {
            cfg,
            // Weak priors: overridden after a few dozen observations.
            live_prob: Estimate::new(0.3, 10.0),
            dial_s: Estimate::new(20.0, 5.0),
            talk_s: Estimate::new(120.0, 5.0),
            wrap_s: Estimate::new(0.0, 1.0),
            risk: cfg.initial_risk,
            held_by_budget: false,
            cap: 0.03,
            talking_frees: None,
        }
    }

    /// The current λ (for reports and tests).
    pub fn risk_threshold(&self) -> f64 {
        self.risk
    }

    /// Estimated live-answer probability.
    pub fn live_probability(&self) -> f64 {
        self.live_prob.mean
    }

    /// Probability that an agent busy in `phase` for `elapsed` s is free within `tau` s.
    fn frees_within(&self, phase: AgentPhase, elapsed: f64, tau: f64) -> f64 {
        let wrap = self.wrap_s.mean.max(0.0);
        match phase {
            // Remaining talk taken as memoryless (robust to any talk distribution), then wrap-up.
            AgentPhase::Talking => {
                if tau <= wrap {
                    0.0
                } else {
                    1.0 - (-(tau - wrap) / self.talk_s.mean.max(1.0)).exp()
                }
            }
            AgentPhase::WrapUp => {
                let rest = (wrap - elapsed).max(0.25 * wrap).max(0.5);
                1.0 - (-tau / rest).exp()
            }
        }
    }
}

impl Predictive {
    /// Whether one more dial, with `others` dials in flight ahead of it, carries a marginal
    /// abandonment risk above λ: `p × Σ_k w_k Φ((0.5 − mean_k) / sd_k) > λ`, summed over the
    /// nodes in order.
    ///
    /// The sum stops early when it cannot exceed λ any more: Φ ≤ 1 here (the polynomial of
    /// [`phi`] is positive on (0, 1], so its erf is at most 1), each node left adds at most its
    /// weight, and rounding is monotone, so if the sum so far plus the weights left (added in
    /// the same order) keeps `p ×` it at or under λ, the full sum does too. The answer is the
    /// one the full sum gives, bit for bit; most calls skip the last nodes and their `exp`.
    fn risk_exceeds_threshold(
        &self,
        p: f64,
        base: f64,
        freed: &[(f64, f64); 5],
        others: i64,
    ) -> bool {
        let others = others as f64;
        let mut risk = 0.0;
        for (k, (_, w)) in NODES.iter().enumerate() {
            let pr = p * BEFORE[k];
            let mean = base + freed[k].0 - others * pr;
            let var = freed[k].1 + others * pr * (1.0 - pr) + 0.25;
            risk += w * phi((0.5 - mean) / var.sqrt());
            if k + 1 < NODES.len() {
                let mut bound = risk;
                for (_, w) in &NODES[k + 1..] {
                    bound += w;
                }
                if p * bound <= self.risk {
                    return false;
                }
            }
        }
        p * risk > self.risk
    }
}

impl Pacer for Predictive {
    fn name(&self) -> String {
        "predictive".into()
    }

    fn busy_detail(&self) -> super::BusyDetail {
        super::BusyDetail::WrapUpOnly
    }

    fn observe(&mut self, _now: DateTime<Utc>, event: &PacingEvent) {
        let m = self.cfg.memory;
        match *event {
            PacingEvent::DialResolved { dial_s, live } => {
                self.live_prob.add(if live { 1.0 } else { 0.0 }, m);
                self.dial_s.add(dial_s, m);
            }
            PacingEvent::TalkEnded { talk_s } => self.talk_s.add(talk_s, m),
            PacingEvent::WrapUpEnded { wrap_s } => self.wrap_s.add(wrap_s, m),
            PacingEvent::Abandoned { .. } => {
                // log λ falls by gain × (1 − target) per abandon ...
                let target = self.cap * self.cfg.target_fraction_of_cap;
                self.risk = (self.risk * (-self.cfg.gain * (1.0 - target)).exp()).max(1e-4);
            }
            PacingEvent::Linked { .. } => {
                // ... and rises by gain × target per live answer served: stationary at the target.
                // While the budget holds the pacer back, success says nothing about λ.
                if !self.held_by_budget {
                    let target = self.cap * self.cfg.target_fraction_of_cap;
                    self.risk = (self.risk * (self.cfg.gain * target).exp()).min(0.9);
                }
            }
            PacingEvent::DialPlaced => {}
        }
    }

    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        self.cap = s.abandon.cap;
        let free = i64::from(s.agents_free);
        let waiting = i64::from(s.calls_waiting);
        let in_flight = i64::from(s.dials_in_flight);
        // Progressive part: one dial per free agent not yet covered. Never at risk.
        let progressive = (free - waiting - in_flight).max(0);
        let limit = i64::from(s.lines_free.min(s.records_ready));
        if limit == 0
            || s.agents_logged_in == 0
            || (free == 0 && s.agents_talking + s.agents_wrap_up == 0)
        {
            return 0;
        }
        let budget = s.abandon.budget.max(0.0).floor() as i64;
        let at_risk_now = (in_flight + waiting - free).max(0);
        if budget <= at_risk_now {
            // No budget left for more risk: progressive until live answers rebuild it.
            self.held_by_budget = true;
            return progressive.min(limit) as u32;
        }

        let p = self.live_prob.mean.clamp(0.01, 1.0);
        let d = self.dial_s.mean.max(0.5);
        // Freed agents at each quadrature node: mean and variance.
        let mut freed = [(0.0f64, 0.0f64); NODES.len()];
        // Agents talking are counted (their elapsed time is not read: remaining talk is taken
        // as memoryless); agents in wrap-up each by how long they have been at it.
        let talking = s.agents_talking;
        for a in &s.agents_busy {
            if a.phase == AgentPhase::WrapUp {
                for (k, (x, _)) in NODES.iter().enumerate() {
                    let q = self.frees_within(AgentPhase::WrapUp, a.elapsed_s, x * d);
                    freed[k].0 += q;
                    freed[k].1 += q * (1.0 - q);
                }
            }
        }
        let key = [
            self.wrap_s.mean.to_bits(),
            self.talk_s.mean.to_bits(),
            d.to_bits(),
        ];
        let qs = match self.talking_frees {
            Some((k, qs)) if k == key => qs,
            _ => {
                let qs = NODES.map(|(x, _)| self.frees_within(AgentPhase::Talking, 0.0, x * d));
                self.talking_frees = Some((key, qs));
                qs
            }
        };
        for (k, &q) in qs.iter().enumerate() {
            freed[k].0 += f64::from(talking) * q;
            freed[k].1 += f64::from(talking) * q * (1.0 - q);
        }
        let base = (free - waiting) as f64;
        // Beyond this many dials the calls at risk would exceed the budget; the guard would cut
        // them, and knowing that one more is wanted is enough to say the budget binds.
        let budget_bound = (free + budget - in_flight - waiting).max(0) + 1;
        let stop = limit.min(budget_bound);
        // Below `progressive` every dial is covered by a free agent: no risk to evaluate.
        let mut n = progressive.min(stop);
        while n < stop {
            if n >= progressive && self.risk_exceeds_threshold(p, base, &freed, in_flight + n) {
                break;
            }
            n += 1;
        }
        // Would the guard cut this? Then the budget, not λ, is what binds.
        let at_risk = (in_flight + waiting + n - free).max(0);
        self.held_by_budget = at_risk > budget;
        n.min(limit) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacing::{AbandonStatus, AgentLoad};
    use chrono::TimeZone;

    fn snapshot(free: u32, busy: u32, in_flight: u32, budget: f64) -> PacingSnapshot {
        PacingSnapshot {
            now: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
            agents_logged_in: free + busy,
            agents_free: free,
            agents_talking: busy,
            agents_wrap_up: 0,
            agents_busy: vec![
                AgentLoad {
                    phase: AgentPhase::Talking,
                    elapsed_s: 30.0
                };
                busy as usize
            ],
            dials_in_flight: in_flight,
            calls_waiting: 0,
            lines_free: 1000,
            records_ready: 1000,
            abandon: AbandonStatus {
                live_answers: 1000,
                abandoned: 0,
                cap: 0.03,
                budget,
                period_start: None,
            },
            abandon_threshold_s: 2.0,
        }
    }

    #[test]
    fn without_budget_it_dials_progressively() {
        let mut p = Predictive::default();
        assert_eq!(p.dials_to_place(&snapshot(3, 10, 0, 0.0)), 3);
        assert_eq!(p.dials_to_place(&snapshot(3, 10, 2, 0.5)), 1);
    }

    #[test]
    fn with_budget_it_dials_ahead_of_free_agents() {
        let mut p = Predictive::default();
        let n = p.dials_to_place(&snapshot(3, 17, 0, 30.0));
        assert!(n > 3, "dials {n}");
        // Fewer when more dials are already in flight.
        let m = p.dials_to_place(&snapshot(3, 17, 6, 30.0));
        assert!(m < n, "{m} vs {n}");
    }

    #[test]
    fn abandons_make_it_more_careful_and_successes_bolder() {
        let mut p = Predictive::default();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let before = p.dials_to_place(&snapshot(3, 17, 0, 30.0));
        for _ in 0..20 {
            p.observe(t, &PacingEvent::Abandoned { wait_s: 2.0 });
        }
        let after = p.dials_to_place(&snapshot(3, 17, 0, 30.0));
        assert!(after < before, "{after} vs {before}");
    }

    #[test]
    fn node_constants_match_their_definition() {
        for (k, (x, _)) in NODES.iter().enumerate() {
            assert!((BEFORE[k] - (1.0 - (-x).exp())).abs() < 1e-9, "node {k}");
        }
    }

    /// The risk summed over every node, as the pacer computed it before the early stop.
    fn full_sum_exceeds(p: f64, base: f64, freed: &[(f64, f64); 5], others: i64, l: f64) -> bool {
        let others = others as f64;
        let mut risk = 0.0;
        for (k, (_, w)) in NODES.iter().enumerate() {
            let pr = p * BEFORE[k];
            let mean = base + freed[k].0 - others * pr;
            let var = freed[k].1 + others * pr * (1.0 - pr) + 0.25;
            risk += w * phi((0.5 - mean) / var.sqrt());
        }
        p * risk > l
    }

    proptest::proptest! {
        #[test]
        fn the_early_stop_of_the_risk_sum_decides_as_the_full_sum(
            p in 0.01f64..1.0,
            base in -50.0f64..50.0,
            freed in proptest::array::uniform5((0.0f64..200.0, 0.0f64..50.0)),
            others in 0i64..400,
            l in 1e-4f64..0.9,
        ) {
            let pacer = Predictive { risk: l, ..Predictive::default() };
            proptest::prop_assert_eq!(
                pacer.risk_exceeds_threshold(p, base, &freed, others),
                full_sum_exceeds(p, base, &freed, others, l)
            );
        }
    }

    #[test]
    fn phi_never_exceeds_one() {
        // The early stop of the risk sum relies on it.
        for i in -4000..=4000 {
            let x = f64::from(i) / 100.0;
            assert!(phi(x) <= 1.0 && phi(x) >= 0.0, "phi({x}) = {}", phi(x));
        }
    }

    #[test]
    fn phi_is_a_cdf() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.96) - 0.975).abs() < 1e-4);
        assert!(phi(-8.0) < 1e-9 && phi(8.0) > 1.0 - 1e-9);
    }
}
