//! Baseline pacers, re-implemented from the published behaviour of peer dialers
//! (domain.md §3), and the name → pacer table of the command line.
//!
//! Peers have no abandonment guard: they run with the engine's guard off, so the simulator
//! measures them as they really behave, and a run that ends above the cap is "violating".

use crate::rng::{self, Topic};
use crate::scenario::Scenario;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use dialer_core::pacing::{
    AgentPhase, Pacer, PacingEvent, PacingSnapshot, Power, Predictive, Progressive,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// Pacer names understood by [`pacer_by_name`].
pub const PACER_NAMES: &str =
    "predictive, progressive, power:<ratio>, vicidial, issabel, poisson, poisson:<dials per hour>";

/// A pacer by name, and whether the engine's abandonment guard runs with it (ours: yes;
/// re-implemented peers: no). `poisson` alone takes its rate from Erlang B with the
/// scenario's mean parameters (exact on the reference model); `crate::runs` tunes it by
/// simulation instead when it runs one.
pub fn pacer_by_name(
    spec: &str,
    scenario: &Scenario,
    seed: u64,
) -> Result<(Box<dyn Pacer>, bool), String> {
    let cap = scenario.campaign.abandon_cap;
    let (name, arg) = match spec.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (spec, None),
    };
    let number = |what: &str| -> Result<f64, String> {
        let a = arg.ok_or_else(|| format!("pacer {spec:?} needs a {what}, e.g. {name}:2"))?;
        a.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| format!("pacer {spec:?}: {a:?} is not a positive number"))
    };
    Ok(match name {
        "predictive" if arg.is_none() => (Box::new(Predictive::default()), true),
        "progressive" if arg.is_none() => (Box::new(Progressive), true),
        "power" => {
            let ratio = number("ratio")?;
            if !(1.0..=10.0).contains(&ratio) {
                return Err(format!("pacer {spec:?}: ratio must be within 1..=10"));
            }
            (Box::new(Power { ratio }), true)
        }
        "vicidial" if arg.is_none() => (Box::new(Vicidial::new(cap)), false),
        "issabel" if arg.is_none() => (Box::new(Issabel::default()), false),
        "poisson" => {
            let per_s = match arg {
                Some(_) => number("rate")? / 3600.0,
                None => erlang_rate(scenario),
            };
            (Box::new(PoissonOpenLoop::new(per_s, seed)), false)
        }
        _ => return Err(format!("unknown pacer {spec:?}; known: {PACER_NAMES}")),
    })
}

/// The open-loop dial rate (per second) Erlang B gives for the scenario's means.
pub fn erlang_rate(sc: &Scenario) -> f64 {
    let handle = sc.callees.talk.mean() + sc.agents.wrap_up.mean();
    let live = if sc.callees.amd.enabled {
        sc.callees.live * sc.callees.amd.human_accuracy
            + sc.callees.machine * (1.0 - sc.callees.amd.machine_accuracy)
    } else {
        sc.callees.live + sc.callees.machine
    };
    crate::erlang::open_loop(
        sc.agents.count,
        sc.campaign.abandon_cap,
        live.max(1e-3),
        handle,
    )
    .dial_rate_per_s
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds(ms)
}

/// The first multiple of `period` strictly after `t` (all in ms).
fn next_grid(t: i64, period: i64) -> i64 {
    (t.div_euclid(period) + 1) * period
}

/// VICIdial's ADAPT modes: a dial level adapted every 15 s and a 2.5 s dialing loop.
///
/// - Every second it samples `m = (ready agents − waiting calls + T) / active agents`; every
///   15 samples, `level ← level × (1 + mean(m) × intensity)`, within 1.0 ..= 3.0.
/// - Drop rules (AVERAGE): the drop rate since midnight above the limit halves the level;
///   more than half the answers of the last minute dropped (over 20 calls) halves it too.
/// - Every 2.5 s it places `round(level × active agents)` minus the calls already ringing,
///   queued or talking, at most 5 calls a second.
#[derive(Debug, Clone)]
pub struct Vicidial {
    pub level: f64,
    pub max_level: f64,
    pub intensity: f64,
    pub diff_target: f64,
    pub drop_limit: f64,
    pub calls_per_second: f64,
    samples: Vec<f64>,
    next_sample: Option<i64>,
    next_dial: Option<i64>,
    day: Option<NaiveDate>,
    day_live: u64,
    day_drops: u64,
    last_minute: VecDeque<(i64, bool)>,
}

impl Vicidial {
    /// With its drop limit set to the campaign's cap.
    pub fn new(drop_limit: f64) -> Vicidial {
        Vicidial {
            level: 1.0,
            max_level: 3.0,
            intensity: 0.5,
            diff_target: 0.0,
            drop_limit,
            calls_per_second: 5.0,
            samples: Vec::with_capacity(15),
            next_sample: None,
            next_dial: None,
            day: None,
            day_live: 0,
            day_drops: 0,
            last_minute: VecDeque::new(),
        }
    }

    fn roll_day(&mut self, now: DateTime<Utc>) {
        let d = now.date_naive();
        if self.day != Some(d) {
            self.day = Some(d);
            self.day_live = 0;
            self.day_drops = 0;
        }
    }

    fn adapt(&mut self, now: i64) {
        let m = self.samples.iter().sum::<f64>() / self.samples.len().max(1) as f64;
        self.samples.clear();
        self.level = (self.level * (1.0 + m * self.intensity)).clamp(1.0, self.max_level);
        if self.day_live > 0 && self.day_drops as f64 / self.day_live as f64 > self.drop_limit {
            self.level = (self.level / 2.0).max(1.0);
        }
        while self
            .last_minute
            .front()
            .is_some_and(|(t, _)| now - t > 60_000)
        {
            self.last_minute.pop_front();
        }
        let n = self.last_minute.len();
        let drops = self.last_minute.iter().filter(|(_, d)| *d).count();
        if n > 20 && drops * 2 > n {
            self.level = (self.level / 2.0).max(1.0);
        }
    }
}

impl Pacer for Vicidial {
    fn name(&self) -> String {
        "vicidial".into()
    }

    fn observe(&mut self, now: DateTime<Utc>, event: &PacingEvent) {
        self.roll_day(now);
        match event {
            PacingEvent::DialResolved { live: true, .. } => self.day_live += 1,
            PacingEvent::Abandoned { .. } => {
                self.day_drops += 1;
                self.last_minute.push_back((ms(now), true));
            }
            PacingEvent::Linked { .. } => self.last_minute.push_back((ms(now), false)),
            _ => {}
        }
    }

    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        let now = ms(s.now);
        let active = f64::from(s.agents_free) + s.agents_busy.len() as f64;
        let next_sample = *self.next_sample.get_or_insert(next_grid(now - 1, 1000));
        if now - next_sample > 15_000 {
            // Asleep (nothing to dial): the old samples say nothing about now.
            self.samples.clear();
            self.next_sample = Some(next_grid(now - 1, 1000));
        }
        while let Some(t) = self.next_sample.filter(|t| *t <= now) {
            let m = if active > 0.0 {
                (f64::from(s.agents_free) - f64::from(s.calls_waiting) + self.diff_target) / active
            } else {
                0.0
            };
            self.samples.push(m);
            if self.samples.len() == 15 {
                self.adapt(t);
            }
            self.next_sample = Some(t + 1000);
        }
        let next_dial = *self.next_dial.get_or_insert(next_grid(now - 1, 2500));
        if now < next_dial {
            return 0;
        }
        self.next_dial = Some(next_grid(now, 2500));
        let talking = s
            .agents_busy
            .iter()
            .filter(|a| a.phase == AgentPhase::Talking)
            .count() as f64;
        let in_progress = f64::from(s.dials_in_flight) + f64::from(s.calls_waiting) + talking;
        let goal = (self.level * active).round();
        let throttle = (self.calls_per_second * 2.5).floor();
        (goal - in_progress).clamp(0.0, throttle) as u32
    }

    fn next_decision_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let n = ms(now);
        let pick = |t: Option<i64>, period: i64| match t {
            Some(t) if t > n => t,
            _ => next_grid(n, period),
        };
        Some(at(
            pick(self.next_sample, 1000).min(pick(self.next_dial, 2500))
        ))
    }
}

/// Issabel dialerd's predictor: free agents plus busy agents "about to finish" minus callers
/// waiting, where a talking agent counts once `1 − exp(−(t_on_call + avg_answer)/avg_call)`
/// reaches 0.97. Averages are learned from the campaign's history.
#[derive(Debug, Clone)]
pub struct Issabel {
    pub threshold: f64,
    answer_sum: f64,
    answers: u64,
    call_sum: f64,
    calls: u64,
}

impl Default for Issabel {
    fn default() -> Self {
        Issabel {
            threshold: 0.97,
            answer_sum: 0.0,
            answers: 0,
            call_sum: 0.0,
            calls: 0,
        }
    }
}

impl Pacer for Issabel {
    fn name(&self) -> String {
        "issabel".into()
    }

    fn observe(&mut self, _now: DateTime<Utc>, event: &PacingEvent) {
        match *event {
            PacingEvent::DialResolved { dial_s, live: true } => {
                self.answer_sum += dial_s;
                self.answers += 1;
            }
            PacingEvent::TalkEnded { talk_s } => {
                self.call_sum += talk_s;
                self.calls += 1;
            }
            _ => {}
        }
    }

    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        let about_to_finish = if self.calls == 0 {
            0
        } else {
            let avg_call = (self.call_sum / self.calls as f64).max(1.0);
            let avg_answer = if self.answers == 0 {
                0.0
            } else {
                self.answer_sum / self.answers as f64
            };
            s.agents_busy
                .iter()
                .filter(|a| a.phase == AgentPhase::Talking)
                .filter(|a| 1.0 - (-(a.elapsed_s + avg_answer) / avg_call).exp() >= self.threshold)
                .count() as u32
        };
        (s.agents_free + about_to_finish).saturating_sub(s.calls_waiting + s.dials_in_flight)
    }
}

/// Open-loop dialing: a Poisson stream of dials at a constant rate, whatever the agents are
/// doing (only paused while nobody is logged in). Inter-dial times come from a seeded stream.
#[derive(Debug, Clone)]
pub struct PoissonOpenLoop {
    pub rate_per_s: f64,
    rng: ChaCha8Rng,
    next: Option<i64>,
}

impl PoissonOpenLoop {
    pub fn new(rate_per_s: f64, seed: u64) -> PoissonOpenLoop {
        PoissonOpenLoop {
            rate_per_s,
            rng: rng::stream(seed, Topic::Pacer, 0, 0),
            next: None,
        }
    }

    fn gap_ms(&mut self) -> i64 {
        let u: f64 = self.rng.gen();
        ((-(1.0 - u).ln() / self.rate_per_s) * 1000.0)
            .round()
            .max(1.0) as i64
    }
}

impl Pacer for PoissonOpenLoop {
    fn name(&self) -> String {
        format!("poisson:{:.0}", self.rate_per_s * 3600.0)
    }

    fn observe(&mut self, _now: DateTime<Utc>, _event: &PacingEvent) {}

    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        let now = ms(s.now);
        if self.next.is_none() {
            let g = self.gap_ms();
            self.next = Some(now + g);
        }
        let mut n = 0u32;
        while let Some(t) = self.next.filter(|t| *t <= now) {
            n += 1;
            let g = self.gap_ms();
            self.next = Some(t + g);
        }
        if s.agents_logged_in == 0 {
            0
        } else {
            n
        }
    }

    fn next_decision_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let n = ms(now);
        Some(at(match self.next {
            Some(t) if t > n => t,
            _ => n + 1000,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_explained() {
        let sc = Scenario::reference(5, 1.0);
        for n in [
            "predictive",
            "progressive",
            "power:2",
            "vicidial",
            "issabel",
            "poisson",
            "poisson:900",
        ] {
            let (p, _) = pacer_by_name(n, &sc, 1).unwrap();
            assert!(
                p.name().starts_with(n.split(':').next().unwrap()),
                "{n} -> {}",
                p.name()
            );
        }
        let err = |n: &str| pacer_by_name(n, &sc, 1).err().unwrap_or_default();
        assert!(err("power:abc").contains("abc"));
        assert!(err("power:0.5").contains("1..=10"));
        assert!(err("magic").contains("known:"));
        assert!(
            !pacer_by_name("vicidial", &sc, 1).unwrap().1,
            "peers run without the guard"
        );
        assert!(pacer_by_name("predictive", &sc, 1).unwrap().1);
    }
}
