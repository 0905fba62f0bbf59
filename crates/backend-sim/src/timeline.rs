//! A run's timeline: the floor sampled at a fixed step of simulated time, for reports.
//!
//! The simulator fills it when asked ([`crate::Simulator::with_timeline`]); sampling reads the
//! simulator's state and the engine's abandonment ledger and changes neither, so a run with a
//! timeline reports exactly what the same run without one reports.

use serde::{Deserialize, Serialize};

/// The floor at one instant. Counts are the state just before any event of that instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the start of the run.
    pub t_s: f64,
    pub agents_offline: u32,
    pub agents_idle: u32,
    /// Held for a call placed for them (preview, progressive with a reservation).
    pub agents_reserved: u32,
    pub agents_talking: u32,
    pub agents_wrap_up: u32,
    pub agents_paused: u32,
    /// Dials not yet answered (ringing, or AMD still listening).
    pub lines_dialing: u32,
    /// Live answers waiting for an agent.
    pub lines_waiting: u32,
    /// Calls linked to an agent.
    pub lines_talking: u32,
    /// Staffed and busy agent-milliseconds since the start (for occupancy over an interval).
    pub staffed_ms: f64,
    pub busy_ms: f64,
    /// The engine's current legal period: its first day (days since 1970-01-01), its live
    /// answers and its abandons so far.
    pub period_day: i64,
    pub period_live: u64,
    pub period_abandoned: u64,
}

impl Sample {
    pub fn agents_staffed(&self) -> u32 {
        self.agents_idle + self.agents_reserved + self.agents_talking + self.agents_wrap_up
    }

    pub fn lines_in_flight(&self) -> u32 {
        self.lines_dialing + self.lines_waiting + self.lines_talking
    }

    /// Abandons over live answers in the current period so far (0 before any answer).
    pub fn period_rate(&self) -> f64 {
        if self.period_live == 0 {
            0.0
        } else {
            self.period_abandoned as f64 / self.period_live as f64
        }
    }

    /// Abandons the period can still take and end at or under `cap`: `cap × live − abandoned`.
    pub fn budget(&self, cap: f64) -> f64 {
        cap * self.period_live as f64 - self.period_abandoned as f64
    }
}

/// Samples every `step_s` seconds of simulated time, from the start to the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub step_s: f64,
    pub samples: Vec<Sample>,
}

impl Timeline {
    /// A step giving about `points` samples over `hours`, never under a minute.
    pub fn step_for(hours: f64, points: u32) -> f64 {
        (hours * 3600.0 / f64::from(points.max(1))).max(60.0)
    }

    /// Occupancy over each step: busy over staffed agent-time between two samples (`None`
    /// where nobody was staffed). One value per sample after the first.
    pub fn occupancy(&self) -> Vec<Option<f64>> {
        self.samples
            .windows(2)
            .map(|w| {
                let staffed = w[1].staffed_ms - w[0].staffed_ms;
                (staffed > 0.0).then(|| (w[1].busy_ms - w[0].busy_ms) / staffed)
            })
            .collect()
    }

    /// Indices of the samples where a new legal period begins (not the first).
    pub fn period_starts(&self) -> Vec<usize> {
        self.samples
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[1].period_day != w[0].period_day)
            .map(|(i, _)| i + 1)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, staffed_ms: f64, busy_ms: f64, day: i64) -> Sample {
        Sample {
            t_s,
            agents_offline: 0,
            agents_idle: 1,
            agents_reserved: 0,
            agents_talking: 1,
            agents_wrap_up: 0,
            agents_paused: 0,
            lines_dialing: 2,
            lines_waiting: 0,
            lines_talking: 1,
            staffed_ms,
            busy_ms,
            period_day: day,
            period_live: 100,
            period_abandoned: 2,
        }
    }

    #[test]
    fn occupancy_is_taken_over_each_step_and_a_step_with_nobody_staffed_has_none() {
        let tl = Timeline {
            step_s: 60.0,
            samples: vec![
                sample(0.0, 0.0, 0.0, 1),
                sample(60.0, 120_000.0, 60_000.0, 1),
                sample(120.0, 120_000.0, 60_000.0, 2),
            ],
        };
        assert_eq!(tl.occupancy(), vec![Some(0.5), None]);
        assert_eq!(tl.period_starts(), vec![2]);
        let s = tl.samples[0];
        assert_eq!(s.period_rate(), 0.02);
        assert!((s.budget(0.03) - 1.0).abs() < 1e-12);
        assert_eq!(s.lines_in_flight(), 3);
        assert_eq!(s.agents_staffed(), 2);
    }
}
