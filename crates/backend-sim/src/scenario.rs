//! Scenarios: who is called, who answers, who takes the calls, for how long. Read from TOML
//! (unknown fields are refused) and checked by [`Scenario::validate`], whose errors name the
//! field and the problem.

use crate::dist::Dist;
use chrono::{DateTime, Utc};
use dialer_core::{
    AbandonPolicy, AbandonWindow, CallingHours, Campaign, DialMode, MachinePolicy, RetryDelays,
};
use serde::{Deserialize, Serialize};

/// A scenario file could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// TOML syntax, an unknown field, a wrong type (the message names the field and line).
    #[error("scenario {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("scenario {source_name}: field `{field}`: {problem}")]
    Invalid {
        source_name: String,
        field: String,
        problem: String,
    },
    #[error("unknown built-in scenario {0:?}; built-ins: {1}")]
    UnknownBuiltin(String, String),
}

/// A whole simulation set-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed of every random stream (overridable from the command line).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated duration.
    pub hours: f64,
    /// Simulated start instant (UTC).
    #[serde(default = "default_start")]
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub campaign: CampaignSpec,
    pub callees: CalleeSpec,
    pub agents: AgentSpec,
    #[serde(default)]
    pub carrier: CarrierSpec,
    #[serde(default)]
    pub list: ListSpec,
}

fn default_seed() -> u64 {
    1
}

fn default_start() -> DateTime<Utc> {
    // A Monday, 12:00 UTC = 08:00 in New York (summer time): US calling hours are open.
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Named calling-hour rules of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoursSpec {
    Always,
    UsTsr,
    CanadaCrtc,
    France,
}

/// The margin on the true false-positive share a campaign states as its estimate when a
/// scenario counts AMD false positives (1.2 = 20% above): the count of people hung up on
/// varies by chance around the share (about ±8% at 150 of them), and the estimate is what
/// keeps the real count under the cap.
pub const AMD_ESTIMATE_MARGIN: f64 = 1.2;

/// Window the abandonment cap is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSpec {
    /// Successive 30-day periods (FTC).
    ThirtyDays,
    /// Each calendar day (Ofcom).
    CalendarDay,
}

/// Campaign settings the simulation varies; everything else is the core's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSpec {
    pub time_zone: String,
    pub calling_hours: HoursSpec,
    /// `None` = 4 lines per agent + 10.
    pub max_lines: Option<u32>,
    pub ring_timeout_s: u32,
    pub last_dial_before_close_s: u32,
    pub abandon_cap: f64,
    pub abandon_threshold_s: f64,
    pub abandon_window: WindowSpec,
    pub machine: MachinePolicy,
    pub max_attempts_per_number: u32,
    pub max_attempts_per_record: u32,
    pub retry_busy_s: u32,
    pub retry_no_answer_s: u32,
    pub retry_congestion_s: u32,
    pub retry_machine_s: u32,
    /// Count AMD false positives as abandoned calls (Ofcom): the report's rates and verdicts
    /// add every person AMD hung up on (a live answer, abandoned), and the campaign states a
    /// reasoned estimate of them: the callees' true share of people among machine verdicts
    /// ([`CalleeSpec::amd_false_positive_share`]) with a margin of
    /// [`AMD_ESTIMATE_MARGIN`], so chance alone rarely lifts the real count above the estimate.
    pub count_amd_false_positives: bool,
}

impl Default for CampaignSpec {
    fn default() -> Self {
        let r = RetryDelays::default();
        CampaignSpec {
            time_zone: "America/New_York".into(),
            calling_hours: HoursSpec::UsTsr,
            max_lines: None,
            ring_timeout_s: 25,
            last_dial_before_close_s: 120,
            abandon_cap: 0.03,
            abandon_threshold_s: 2.0,
            abandon_window: WindowSpec::ThirtyDays,
            machine: MachinePolicy::HangUp,
            max_attempts_per_number: 3,
            max_attempts_per_record: 6,
            retry_busy_s: r.busy_s,
            retry_no_answer_s: r.no_answer_s,
            retry_congestion_s: r.congestion_s,
            retry_machine_s: r.machine_s,
            count_amd_false_positives: false,
        }
    }
}

/// Per-attempt outcome probabilities (summing to 1) and the callee's timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalleeSpec {
    pub live: f64,
    #[serde(default)]
    pub machine: f64,
    #[serde(default)]
    pub busy: f64,
    #[serde(default)]
    pub no_answer: f64,
    #[serde(default)]
    pub congestion: f64,
    /// Probability that a number does not exist (drawn once per number, not per attempt).
    #[serde(default)]
    pub invalid: f64,
    /// Dial to answer (live or machine). Past the ring timeout the attempt is a no-answer.
    pub time_to_answer: Dist,
    /// Dial to a busy, congestion or invalid-number signal.
    #[serde(default = "default_fail_time")]
    pub time_to_failure: Dist,
    /// `true`: an unanswered call rings until the campaign's ring timeout. `false`: it gives
    /// up after `time_to_failure` (the reference model: every non-live dial resolves alike).
    #[serde(default = "yes")]
    pub no_answer_rings_out: bool,
    pub talk: Dist,
    /// How long a live callee waits for an agent before hanging up (0 = at once).
    pub patience: Dist,
    /// Time an agent spends on a machine that reached it (AMD missed it).
    #[serde(default = "default_machine_talk")]
    pub machine_talk: Dist,
    #[serde(default)]
    pub amd: AmdSpec,
}

impl CalleeSpec {
    /// P(a person | AMD said machine): the share of machine verdicts that hang up on a live
    /// person, from the answer mix and the detector's accuracies (0 without AMD).
    pub fn amd_false_positive_share(&self) -> f64 {
        if !self.amd.enabled {
            return 0.0;
        }
        let people = self.live * (1.0 - self.amd.human_accuracy);
        let machines = self.machine * self.amd.machine_accuracy;
        if people + machines > 0.0 {
            people / (people + machines)
        } else {
            0.0
        }
    }
}

fn yes() -> bool {
    true
}

fn default_fail_time() -> Dist {
    Dist::Lognormal {
        mean_s: 6.0,
        sd_s: 3.0,
    }
}

fn default_machine_talk() -> Dist {
    Dist::fixed(8.0)
}

/// Answering-machine detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmdSpec {
    /// Without AMD every answer is reported as unknown (a live answer) and reaches an agent.
    pub enabled: bool,
    /// P(a human is classified human); the rest are false positives, hung up as machines.
    pub human_accuracy: f64,
    /// P(a machine is classified machine); the rest reach agents.
    pub machine_accuracy: f64,
    /// Time from answer to the verdict; the call is reported answered after it.
    pub delay: Dist,
}

impl Default for AmdSpec {
    fn default() -> Self {
        AmdSpec {
            enabled: false,
            human_accuracy: 0.97,
            machine_accuracy: 0.85,
            delay: Dist::fixed(2.5),
        }
    }
}

/// The agent floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub count: u32,
    pub wrap_up: Dist,
    /// Shift start, hours after the simulation start, repeated every 24 h.
    #[serde(default)]
    pub shift_start_h: f64,
    /// Shift length; `None` = logged in for the whole run.
    #[serde(default)]
    pub shift_hours: Option<f64>,
    /// Logins (and logouts) are spread uniformly over this many seconds.
    #[serde(default)]
    pub stagger_s: f64,
    /// A break every this many hours of shift (`None` = no breaks).
    #[serde(default)]
    pub break_every_h: Option<f64>,
    #[serde(default = "default_break")]
    pub break_length: Dist,
}

fn default_break() -> Dist {
    Dist::Lognormal {
        mean_s: 600.0,
        sd_s: 180.0,
    }
}

/// Trunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CarrierSpec {
    /// Time from Originate to the network accepting it.
    pub originate_latency: Dist,
}

impl Default for CarrierSpec {
    fn default() -> Self {
        CarrierSpec {
            originate_latency: Dist::fixed(0.0),
        }
    }
}

/// A callee time zone and its share of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneShare {
    pub zone: String,
    pub weight: f64,
}

/// The list (base) being dialed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListSpec {
    /// Records; 0 = unlimited (fresh records are made as needed, the reference model).
    pub size: u64,
    /// Callee zones; empty = the campaign's.
    pub time_zones: Vec<ZoneShare>,
    /// Probability that a record has alternative numbers, and how many at most.
    pub alternatives_prob: f64,
    pub max_alternatives: u32,
}

impl Default for ListSpec {
    fn default() -> Self {
        ListSpec {
            size: 0,
            time_zones: Vec::new(),
            alternatives_prob: 0.0,
            max_alternatives: 0,
        }
    }
}

/// Built-in scenarios, selectable by name. The TOML files are also shipped in
/// `examples/scenarios/`.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "reference-markov",
        include_str!("../scenarios/reference-markov.toml"),
    ),
    ("small-team", include_str!("../scenarios/small-team.toml")),
    ("large-floor", include_str!("../scenarios/large-floor.toml")),
    ("low-answer", include_str!("../scenarios/low-answer.toml")),
    ("machines", include_str!("../scenarios/machines.toml")),
    ("multi-tz", include_str!("../scenarios/multi-tz.toml")),
    ("realistic", include_str!("../scenarios/realistic.toml")),
];

/// The scenario `dialer simulate` runs when given no arguments.
pub const DEFAULT_SCENARIO: &str = "small-team";

impl Scenario {
    /// Parses and validates TOML; `source_name` (a path or a name) goes into errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        s.validate()
            .map_err(|(field, problem)| ScenarioError::Invalid {
                source_name: source_name.to_owned(),
                field,
                problem,
            })?;
        Ok(s)
    }

    /// A built-in scenario by name.
    pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            ScenarioError::UnknownBuiltin(
                name.to_owned(),
                BUILTINS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
        Scenario::from_toml(text, name)
    }

    /// The reference Markov model of `pacing-reference.md` with `agents` agents.
    pub fn reference(agents: u32, hours: f64) -> Scenario {
        let mut s = Scenario::builtin("reference-markov")
            .expect("the built-in reference scenario is valid");
        s.agents.count = agents;
        s.hours = hours;
        s
    }

    /// Checks every value; on error returns (field path, problem).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, p: String| Err((f.to_owned(), p));
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 400.0) {
            return bad("hours", format!("{} must be within (0, 9600]", self.hours));
        }
        let c = &self.callees;
        for (f, v) in [
            ("callees.live", c.live),
            ("callees.machine", c.machine),
            ("callees.busy", c.busy),
            ("callees.no_answer", c.no_answer),
            ("callees.congestion", c.congestion),
            ("callees.invalid", c.invalid),
            ("callees.amd.human_accuracy", c.amd.human_accuracy),
            ("callees.amd.machine_accuracy", c.amd.machine_accuracy),
            ("list.alternatives_prob", self.list.alternatives_prob),
            ("campaign.abandon_cap", self.campaign.abandon_cap),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(f, format!("{v} is not a probability in [0, 1]"));
            }
        }
        let sum = c.live + c.machine + c.busy + c.no_answer + c.congestion;
        if (sum - 1.0).abs() > 1e-6 {
            return bad(
                "callees",
                format!("live + machine + busy + no_answer + congestion must sum to 1, got {sum}"),
            );
        }
        for (f, d) in [
            ("callees.time_to_answer", &c.time_to_answer),
            ("callees.time_to_failure", &c.time_to_failure),
            ("callees.talk", &c.talk),
            ("callees.patience", &c.patience),
            ("callees.machine_talk", &c.machine_talk),
            ("callees.amd.delay", &c.amd.delay),
            ("agents.wrap_up", &self.agents.wrap_up),
            ("agents.break_length", &self.agents.break_length),
            ("carrier.originate_latency", &self.carrier.originate_latency),
        ] {
            d.validate().or_else(|p| bad(f, p))?;
        }
        let a = &self.agents;
        if a.count == 0 || a.count > 5000 {
            return bad(
                "agents.count",
                format!("{} must be within 1..=5000", a.count),
            );
        }
        if let Some(h) = a.shift_hours {
            if !(h.is_finite() && h > 0.0 && h <= 24.0) {
                return bad("agents.shift_hours", format!("{h} must be within (0, 24]"));
            }
        }
        if !(a.shift_start_h.is_finite() && (0.0..24.0).contains(&a.shift_start_h)) {
            return bad(
                "agents.shift_start_h",
                format!("{} must be within [0, 24)", a.shift_start_h),
            );
        }
        if !(a.stagger_s.is_finite() && a.stagger_s >= 0.0) {
            return bad("agents.stagger_s", format!("{} must be >= 0", a.stagger_s));
        }
        if let Some(b) = a.break_every_h {
            if !(b.is_finite() && b >= 0.25) {
                return bad("agents.break_every_h", format!("{b} must be at least 0.25"));
            }
        }
        for (i, z) in self.list.time_zones.iter().enumerate() {
            if z.zone.parse::<chrono_tz::Tz>().is_err() {
                return bad(
                    &format!("list.time_zones[{i}].zone"),
                    format!("{:?} is not an IANA time zone", z.zone),
                );
            }
            if !(z.weight.is_finite() && z.weight >= 0.0) {
                return bad(
                    &format!("list.time_zones[{i}].weight"),
                    format!("{} must be >= 0", z.weight),
                );
            }
        }
        if !self.list.time_zones.is_empty()
            && self.list.time_zones.iter().map(|z| z.weight).sum::<f64>() <= 0.0
        {
            return bad("list.time_zones", "weights sum to zero".into());
        }
        if self.list.max_alternatives > 5 {
            return bad(
                "list.max_alternatives",
                format!("{} must be at most 5", self.list.max_alternatives),
            );
        }
        // The core validates the rest of the campaign and names the field.
        self.campaign()
            .validate()
            .map_err(|e| (format!("campaign.{}", e.field), e.problem))?;
        if self.campaign.abandon_threshold_s <= 0.0 {
            return bad("campaign.abandon_threshold_s", "must be positive".into());
        }
        Ok(())
    }

    /// Lines of the campaign: the configured limit, or 4 per agent + 10.
    pub fn max_lines(&self) -> u32 {
        self.campaign
            .max_lines
            .unwrap_or(4 * self.agents.count + 10)
    }

    /// The core campaign this scenario dials (predictive mode; the simulator sets the pacer).
    pub fn campaign(&self) -> Campaign {
        let s = &self.campaign;
        let mut c = Campaign::new("sim", s.time_zone.clone());
        c.dial_mode = DialMode::Predictive;
        c.calling_hours = match s.calling_hours {
            HoursSpec::Always => CallingHours::always(),
            HoursSpec::UsTsr => CallingHours::us_tsr(),
            HoursSpec::CanadaCrtc => CallingHours::canada_crtc(),
            HoursSpec::France => CallingHours::france(),
        };
        c.max_lines = self.max_lines();
        c.ring_timeout_s = s.ring_timeout_s;
        c.last_dial_before_close_s = s.last_dial_before_close_s;
        c.abandon = AbandonPolicy {
            threshold_s: s.abandon_threshold_s,
            cap: s.abandon_cap,
            window: match s.abandon_window {
                WindowSpec::ThirtyDays => AbandonWindow::RollingDays { days: 30 },
                WindowSpec::CalendarDay => AbandonWindow::CalendarDay,
            },
            amd_false_positive_rate: if s.count_amd_false_positives {
                (self.callees.amd_false_positive_share() * AMD_ESTIMATE_MARGIN).min(1.0)
            } else {
                0.0
            },
        };
        c.machine = s.machine;
        c.max_attempts_per_number = s.max_attempts_per_number;
        c.max_attempts_per_record = s.max_attempts_per_record;
        c.retry.busy_s = s.retry_busy_s;
        c.retry.no_answer_s = s.retry_no_answer_s;
        c.retry.congestion_s = s.retry_congestion_s;
        c.retry.machine_s = s.retry_machine_s;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_is_valid() {
        for (name, _) in BUILTINS {
            Scenario::builtin(name).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn reference_text() -> &'static str {
        BUILTINS[0].1
    }

    #[test]
    fn unknown_field_is_named() {
        let text = reference_text().replace("[agents]", "[agents]\ncuont = 3");
        let e = Scenario::from_toml(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cuont") && e.contains("x.toml"), "{e}");
    }

    #[test]
    fn probabilities_that_do_not_sum_to_one_are_refused() {
        let text = reference_text().replace("live = 0.25", "live = 0.5");
        let e = Scenario::from_toml(&text, "x.toml").unwrap_err();
        assert!(
            matches!(&e, ScenarioError::Invalid { field, .. } if field == "callees"),
            "{e}"
        );
        assert!(e.to_string().contains("sum to 1"), "{e}");
    }

    #[test]
    fn bad_distribution_names_its_field() {
        let text = reference_text().replace("mean_s = 120.0", "mean_s = -1.0");
        let e = Scenario::from_toml(&text, "x.toml").unwrap_err();
        assert!(
            matches!(&e, ScenarioError::Invalid { field, .. } if field == "callees.talk"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let text = reference_text().replace("count = 20", "count = \"twenty\"");
        let e = Scenario::from_toml(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("count"), "{e}");
    }

    #[test]
    fn unknown_zone_is_named_with_its_index() {
        let mut s = Scenario::builtin("multi-tz").unwrap();
        s.list.time_zones[1].zone = "Mars/Olympus".into();
        let (field, problem) = s.validate().unwrap_err();
        assert_eq!(field, "list.time_zones[1].zone");
        assert!(problem.contains("Mars/Olympus"));
    }

    #[test]
    fn campaign_problems_come_back_with_the_campaign_prefix() {
        let mut s = Scenario::builtin("small-team").unwrap();
        s.campaign.ring_timeout_s = 5;
        assert_eq!(s.validate().unwrap_err().0, "campaign.ring_timeout_s");
    }

    #[test]
    fn unknown_distribution_kind_is_refused() {
        let text = reference_text().replace(
            "kind = \"exponential\", mean_s = 120.0",
            "kind = \"gamma\", mean_s = 120.0",
        );
        let e = Scenario::from_toml(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gamma"), "{e}");
    }
}
