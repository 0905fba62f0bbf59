//! Campaign settings: how, when and how often a campaign may dial.

use super::ids::CampaignId;
use super::phone::PhoneNumber;
use chrono::{NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// How lines are opened for agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DialMode {
    /// The agent sees the record first and asks for the dial.
    Preview,
    /// One call per free agent, the agent reserved before dialing: never abandons.
    Progressive,
    /// A fixed number of lines per free agent.
    Power {
        /// Lines per free agent (above 0; 1.0 behaves like progressive without reservation).
        ratio: f64,
    },
    /// Dial ahead of free agents, bounded by the abandonment budget.
    Predictive,
}

/// A local time-of-day interval `[start, end)`, interpreted in the callee's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// The first local time a call may start.
    pub start: NaiveTime,
    /// The local time calls stop (excluded), after `start`.
    pub end: NaiveTime,
}

impl TimeRange {
    /// `start` must be before `end`; windows never wrap past midnight (split them instead).
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<TimeRange, ConfigError> {
        if start >= end {
            return Err(ConfigError::new(
                "calling_hours",
                format!("interval {start}-{end} must start before it ends"),
            ));
        }
        Ok(TimeRange { start, end })
    }

    fn hm(sh: u32, sm: u32, eh: u32, em: u32) -> TimeRange {
        // Only used with literal constants below, all valid.
        TimeRange {
            start: NaiveTime::from_hms_opt(sh, sm, 0).expect("valid literal time"),
            end: NaiveTime::from_hms_opt(eh, em, 0).expect("valid literal time"),
        }
    }
}

/// Calling hours per weekday (Monday first), several intervals a day allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallingHours {
    /// The intervals of each weekday, Monday first; an empty day is never dialed.
    pub days: [Vec<TimeRange>; 7],
}

impl CallingHours {
    /// Same hours every day of the week.
    pub fn every_day(ranges: Vec<TimeRange>) -> CallingHours {
        CallingHours {
            days: std::array::from_fn(|_| ranges.clone()),
        }
    }

    /// US Telemarketing Sales Rule: 08:00–21:00 callee local time, every day.
    pub fn us_tsr() -> CallingHours {
        CallingHours::every_day(vec![TimeRange::hm(8, 0, 21, 0)])
    }

    /// Canada CRTC: 09:00–21:30 on weekdays, 10:00–18:00 on weekends.
    pub fn canada_crtc() -> CallingHours {
        let mut h = CallingHours::every_day(vec![TimeRange::hm(9, 0, 21, 30)]);
        h.days[5] = vec![TimeRange::hm(10, 0, 18, 0)];
        h.days[6] = vec![TimeRange::hm(10, 0, 18, 0)];
        h
    }

    /// France (Décret 2022-1313): Mon–Fri 10:00–13:00 and 14:00–20:00, never on weekends.
    pub fn france() -> CallingHours {
        let mut h = CallingHours::every_day(vec![
            TimeRange::hm(10, 0, 13, 0),
            TimeRange::hm(14, 0, 20, 0),
        ]);
        h.days[5].clear();
        h.days[6].clear();
        h
    }

    /// Around the clock (simulations and tests).
    pub fn always() -> CallingHours {
        CallingHours::every_day(vec![TimeRange {
            start: NaiveTime::MIN,
            end: NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).expect("valid literal time"),
        }])
    }

    /// The intervals of `day`.
    pub fn on(&self, day: Weekday) -> &[TimeRange] {
        &self.days[day.num_days_from_monday() as usize]
    }
}

/// Delay before retrying the same number, per classified outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryDelays {
    /// Seconds after a busy signal.
    pub busy_s: u32,
    /// Seconds after nobody answered.
    pub no_answer_s: u32,
    /// Seconds after network congestion (and after a local refusal, which is held back by
    /// this delay so it cannot loop).
    pub congestion_s: u32,
    /// Seconds after an answering machine.
    pub machine_s: u32,
    /// Seconds after an abandoned call.
    pub abandoned_s: u32,
    /// Seconds after a conversation shorter than the campaign's short-call threshold.
    pub short_call_s: u32,
    /// After a call whose fate is unknown (backend lost it): never redial at once.
    pub unknown_s: u32,
}

impl Default for RetryDelays {
    fn default() -> Self {
        RetryDelays {
            busy_s: 600,
            no_answer_s: 3600,
            congestion_s: 300,
            machine_s: 4 * 3600,
            abandoned_s: 72 * 3600,
            short_call_s: 3600,
            unknown_s: 3600,
        }
    }
}

/// Which window the abandonment cap is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AbandonWindow {
    /// Rolling window of whole days (US: 30), in the campaign's zone.
    RollingDays {
        /// The length of each period, in days.
        days: u32,
    },
    /// Each calendar day on its own (UK Ofcom), in the campaign's zone.
    CalendarDay,
}

/// The abandonment rule: what counts as abandoned, and the cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AbandonPolicy {
    /// A live answer not connected to an agent within this many seconds is abandoned.
    pub threshold_s: f64,
    /// Maximum abandoned / live answers over the window (0.03 = 3%).
    pub cap: f64,
    /// The period the rate is computed over.
    pub window: AbandonWindow,
    /// Estimated share of answering-machine verdicts that were live people hung up on (AMD
    /// false positives), within 0..1. Each machine verdict adds this much to the abandoned
    /// count of its period, in the ledger and in the guard.
    ///
    /// Ofcom (UK, calendar-day periods) requires it: its 2010 statement on persistent misuse
    /// counts a live person hung up on by AMD as an abandoned call and asks for "a reasoned
    /// estimate" of them in the abandoned rate. In the US the FCC's rule (47 CFR
    /// 64.1200(a)(7)) and the FTC's (16 CFR 310.4(b)(4)) call abandoned any call "not
    /// connected to a live sales representative within two seconds of the called person's
    /// completed greeting", which such a call is: set the estimate there too to count them.
    /// 0 (the default) counts none, right only without AMD.
    #[serde(default)]
    pub amd_false_positive_rate: f64,
}

impl Default for AbandonPolicy {
    fn default() -> Self {
        AbandonPolicy {
            threshold_s: 2.0,
            cap: 0.03,
            window: AbandonWindow::RollingDays { days: 30 },
            amd_false_positive_rate: 0.0,
        }
    }
}

/// Frequency caps beyond attempt counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FrequencyCaps {
    /// At most `max_attempts` per record within `days` days (Reg F: 7 in 7).
    pub per_record: Option<AttemptsInDays>,
    /// No redial of a record within this many hours after an abandoned call (Ofcom: 72).
    pub no_redial_after_abandon_h: Option<u32>,
    /// No redial the same local day after an answering machine (Ofcom).
    pub no_redial_same_day_after_machine: bool,
    /// No redial within this many hours after a conversation (Reg F: 7 days = 168).
    pub no_redial_after_conversation_h: Option<u32>,
}

/// A frequency cap: at most `max_attempts` attempts within any `days` consecutive days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptsInDays {
    /// Attempts allowed in the span.
    pub max_attempts: u32,
    /// The span, in days.
    pub days: u32,
}

/// What to do with a call the backend classified as an answering machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachinePolicy {
    /// Hang up and retry later (the machine delay).
    #[default]
    HangUp,
    /// Pass it to an agent like a live answer.
    ToAgent,
}

/// How an agent becomes ready again after a call.
///
/// In every mode a `Ready` that arrives while the agent is still on the call means "ready
/// when this call ends" (Asterisk reports the queue member "not in use" before the caller's
/// hang-up), so no order of Ready, agent-complete and hang-up can leave an agent in wrap-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AfterCall {
    /// The agent's desktop ends wrap-up with an explicit Ready.
    #[default]
    Desktop,
    /// Ready on its own this long after the call (Asterisk `wrapuptime`, VICIdial wrap-up
    /// seconds), or earlier on an explicit Ready.
    WrapUp {
        /// Wrap-up length.
        seconds: u32,
    },
    /// The telephone system's queue member state decides: the backend turns the member's
    /// "not in use" into Ready. The engine treats it like `Desktop`; the setting tells the
    /// runtime whose Ready counts.
    PbxMember,
}

/// The shape of the number in a dial string, whatever the base file's punctuation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialFormat {
    /// `+` and the E.164 digits: `+12125550123`.
    E164,
    /// The E.164 digits without `+`: `12125550123`.
    E164NoPlus,
    /// The number as dialed inside its country, with its trunk prefix: `2125550123`,
    /// `02079460000`.
    #[default]
    National,
}

/// Opaque strings the backend needs to route a call. The core never interprets them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Routing {
    /// e.g. `SIP/trunk/` or `Local/` + `@callees`: the backend builds the channel from these.
    pub channel_prefix: String,
    /// Appended to the channel after the dial string.
    pub channel_suffix: String,
    /// The dialplan context an answered call continues in.
    pub context: String,
    /// The extension an answered call continues at.
    pub exten: String,
    /// Digits prepended to every dial string (trunk access code).
    pub dial_prefix: String,
    /// Asterisk queue whose members are this campaign's agents.
    pub queue: String,
    /// The shape of the number after `dial_prefix`.
    #[serde(default)]
    pub dial_format: DialFormat,
}

impl Routing {
    /// The dial string of a number: `dial_prefix`, then the number in `dial_format`. The one
    /// place a dial string is made.
    pub fn dial_string(&self, number: &PhoneNumber) -> String {
        self.dial_string_with_prefix(number, &self.dial_prefix)
    }

    /// The dial string of a number behind `prefix` instead of the campaign's (a manual
    /// dial's own prefix), in the campaign's `dial_format`.
    pub fn dial_string_with_prefix(&self, number: &PhoneNumber, prefix: &str) -> String {
        let e164 = number.e164();
        let mut out = String::with_capacity(prefix.len() + e164.len());
        out.push_str(prefix);
        match self.dial_format {
            DialFormat::E164 => out.push_str(e164),
            DialFormat::E164NoPlus => out.push_str(e164.trim_start_matches('+')),
            DialFormat::National => out.push_str(&number.national()),
        }
        out
    }
}

/// Splits a caller id, `"Name" <number>`, `Name <number>` or a bare number, into name and
/// number. The name may not carry `"`, `<` or `>` (beyond one pair of quotes around it), the
/// number no `"`, `<` or `>` at all: a telephone system refuses such a caller id, or reads
/// another one.
pub fn split_caller_id(raw: &str) -> Result<(&str, &str), String> {
    const SPECIAL: [char; 3] = ['"', '<', '>'];
    let (name, number) = match raw.split_once('<') {
        Some((name, rest)) => {
            let Some(number) = rest.trim_end().strip_suffix('>') else {
                return Err(format!(
                    "{raw:?} opens `<` without closing it with `>` at the end"
                ));
            };
            (name.trim(), number.trim())
        }
        None => ("", raw.trim()),
    };
    let unquoted = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    if unquoted.contains(SPECIAL) {
        return Err(format!(
            "the name in {raw:?} contains `\"`, `<` or `>`, which the telephone system refuses"
        ));
    }
    if number.contains(SPECIAL) {
        return Err(format!(
            "the number in {raw:?} contains `\"`, `<` or `>`, which the telephone system refuses"
        ));
    }
    Ok((unquoted.trim(), number))
}

/// A campaign's complete settings. Build with [`Campaign::new`] and adjust fields, then
/// [`Campaign::validate`] (the engine refuses an invalid campaign).
///
/// Stored settings must survive new fields: every field whose type has a fitting `Default`
/// is `#[serde(default)]`, and the store fills the others from `Campaign::new` when it reads
/// settings written before they existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// The campaign's id, unique in the engine.
    pub id: CampaignId,
    /// How lines are opened for agents (preview, progressive, power, predictive).
    pub dial_mode: DialMode,
    /// IANA zone of the campaign (date range, abandonment days, records without a zone).
    pub time_zone: String,
    /// ISO alpha-2 country for numbers written in national format.
    pub default_country: String,
    /// When a callee may be called, in the callee's own zone.
    pub calling_hours: CallingHours,
    /// No dial starts later than this before a window closes, so a call never rings past it.
    pub last_dial_before_close_s: u32,
    /// First and last day the campaign may dial, in the campaign's zone.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    #[serde(default)]
    /// Last day the campaign may dial (included), in the campaign's zone.
    pub end_date: Option<NaiveDate>,
    /// Days never dialed, as the callee's local date.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Maximum simultaneous channels (maxchan).
    pub max_lines: u32,
    /// Ring time before giving up; at least 15 s (FTC, Ofcom).
    pub ring_timeout_s: u32,
    #[serde(default)]
    /// The caller id presented (`"Name" <number>` or a number); checked by `validate`.
    pub caller_id: String,
    #[serde(default)]
    /// Delays before a retry, per outcome.
    pub retry: RetryDelays,
    /// Attempts allowed on one number of a record; a number that reaches it is spent.
    pub max_attempts_per_number: u32,
    /// Attempts allowed on a record over all its numbers; a record that reaches it is
    /// finished.
    pub max_attempts_per_record: u32,
    #[serde(default)]
    /// The abandonment rule and cap.
    pub abandon: AbandonPolicy,
    #[serde(default)]
    /// Frequency caps beyond attempt counts.
    pub frequency: FrequencyCaps,
    /// A connected call shorter than this is a short call (ECCP ShortCall), retried.
    pub short_call_s: u32,
    #[serde(default)]
    /// What to do with an answering machine.
    pub machine: MachinePolicy,
    #[serde(default)]
    /// What the backend needs to route the campaign's calls.
    pub routing: Routing,
    /// How agents become ready after a call.
    #[serde(default)]
    pub after_call: AfterCall,
    /// What happens to a same-agent callback whose agent does not come back.
    #[serde(default, skip_serializing_if = "SameAgentCallbacks::is_default")]
    pub same_agent_callbacks: SameAgentCallbacks,
}

/// What happens to a callback reserved for one agent (ECCP `sameagent`, VICIdial USERONLY)
/// when that agent is not free when it is due: it is never stranded without the campaign
/// saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SameAgentCallbacks {
    /// Anyone may take it once it has waited `after_s` seconds past its due moment (an
    /// exact callback's time, a range's first moment) for its agent.
    AnyoneAfter {
        /// How long the callback waits for its agent.
        after_s: u32,
    },
    /// It waits for its agent however long it takes.
    WaitForAgent,
}

impl Default for SameAgentCallbacks {
    /// Anyone after an hour.
    fn default() -> Self {
        SameAgentCallbacks::AnyoneAfter { after_s: 3600 }
    }
}

impl SameAgentCallbacks {
    fn is_default(&self) -> bool {
        *self == SameAgentCallbacks::default()
    }
}

/// A setting that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("campaign setting `{field}`: {problem}")]
pub struct ConfigError {
    /// The setting's name, as in the configuration file.
    pub field: &'static str,
    /// What is wrong with it, as a sentence fragment.
    pub problem: String,
}

impl ConfigError {
    /// A problem with `field`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            field,
            problem: problem.into(),
        }
    }
}

impl Campaign {
    /// A campaign with conservative defaults: progressive, US calling hours, 3% over 30 days.
    pub fn new(id: impl Into<String>, time_zone: impl Into<String>) -> Campaign {
        Campaign {
            id: CampaignId::from(id.into()),
            dial_mode: DialMode::Progressive,
            time_zone: time_zone.into(),
            default_country: "US".into(),
            calling_hours: CallingHours::us_tsr(),
            last_dial_before_close_s: 120,
            start_date: None,
            end_date: None,
            holidays: Vec::new(),
            max_lines: 30,
            ring_timeout_s: 25,
            caller_id: String::new(),
            retry: RetryDelays::default(),
            max_attempts_per_number: 3,
            max_attempts_per_record: 6,
            abandon: AbandonPolicy::default(),
            frequency: FrequencyCaps::default(),
            short_call_s: 10,
            machine: MachinePolicy::default(),
            routing: Routing::default(),
            after_call: AfterCall::default(),
            same_agent_callbacks: SameAgentCallbacks::default(),
        }
    }

    /// Checks every setting; the error names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.0.trim().is_empty() {
            return Err(ConfigError::new("id", "must not be empty"));
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::new(
                "time_zone",
                format!("{:?} is not an IANA time zone", self.time_zone),
            ));
        }
        if self.ring_timeout_s < 15 {
            return Err(ConfigError::new(
                "ring_timeout_s",
                format!(
                    "{} s is below the 15 s minimum ring time required by the FTC and Ofcom",
                    self.ring_timeout_s
                ),
            ));
        }
        if self.max_lines == 0 {
            return Err(ConfigError::new("max_lines", "must be at least 1"));
        }
        if self.max_attempts_per_number == 0 || self.max_attempts_per_record == 0 {
            return Err(ConfigError::new(
                "max_attempts_per_number",
                "attempt caps must be at least 1",
            ));
        }
        if let DialMode::Power { ratio } = self.dial_mode {
            if !(ratio.is_finite() && (1.0..=10.0).contains(&ratio)) {
                return Err(ConfigError::new(
                    "dial_mode.ratio",
                    format!("{ratio} must be between 1 and 10"),
                ));
            }
        }
        let a = &self.abandon;
        if !(a.cap.is_finite() && (0.0..=1.0).contains(&a.cap)) {
            return Err(ConfigError::new(
                "abandon.cap",
                format!("{} must be within 0..1", a.cap),
            ));
        }
        if !(a.amd_false_positive_rate.is_finite()
            && (0.0..=1.0).contains(&a.amd_false_positive_rate))
        {
            return Err(ConfigError::new(
                "abandon.amd_false_positive_rate",
                format!("{} must be within 0..1", a.amd_false_positive_rate),
            ));
        }
        if !(a.threshold_s.is_finite() && a.threshold_s > 0.0) {
            return Err(ConfigError::new("abandon.threshold_s", "must be positive"));
        }
        if let AbandonWindow::RollingDays { days } = a.window {
            if days == 0 || days > 366 {
                return Err(ConfigError::new(
                    "abandon.window.days",
                    "must be within 1..=366",
                ));
            }
        }
        if let Some(f) = self.frequency.per_record {
            if f.max_attempts == 0 || f.days == 0 {
                return Err(ConfigError::new(
                    "frequency.per_record",
                    "needs max_attempts and days ≥ 1",
                ));
            }
        }
        if let (Some(s), Some(e)) = (self.start_date, self.end_date) {
            if s > e {
                return Err(ConfigError::new(
                    "end_date",
                    format!("{e} is before start_date {s}"),
                ));
            }
        }
        for day in &self.calling_hours.days {
            for r in day {
                if r.start >= r.end {
                    return Err(ConfigError::new(
                        "calling_hours",
                        format!("interval {}-{} must start before it ends", r.start, r.end),
                    ));
                }
            }
        }
        for (field, value) in [
            ("caller_id", &self.caller_id),
            ("routing.channel_prefix", &self.routing.channel_prefix),
            ("routing.channel_suffix", &self.routing.channel_suffix),
            ("routing.context", &self.routing.context),
            ("routing.exten", &self.routing.exten),
            ("routing.dial_prefix", &self.routing.dial_prefix),
            ("routing.queue", &self.routing.queue),
        ] {
            if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
                return Err(ConfigError::new(field, "must not contain CR, LF or NUL"));
            }
        }
        split_caller_id(&self.caller_id).map_err(|e| ConfigError::new("caller_id", e))?;
        Ok(())
    }

    /// The campaign's zone (UTC if it does not parse, which `validate` refuses).
    pub fn tz(&self) -> chrono_tz::Tz {
        // validate() guarantees it parses; the engine only holds validated campaigns.
        parse_zone(&self.time_zone).unwrap_or(chrono_tz::UTC)
    }
}

/// An IANA zone by name (`None`: not one), as `chrono_tz::Tz`'s `FromStr` reads it. Every
/// eligibility check reads the callee's zone from its text: the last few names parsed on the
/// thread are kept, so a name seen before costs a comparison instead of a parse. A name
/// that is not a zone is never kept, and is refused each time.
pub fn parse_zone(name: &str) -> Option<chrono_tz::Tz> {
    /// Names kept per thread: a list's zones, the campaigns'.
    const KEPT: usize = 8;
    thread_local! {
        static PARSED: std::cell::RefCell<Vec<(Box<str>, chrono_tz::Tz)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    PARSED.with(|parsed| {
        let mut parsed = parsed.borrow_mut();
        if let Some(&(_, tz)) = parsed.iter().find(|(n, _)| **n == *name) {
            return Some(tz);
        }
        let tz = name.parse::<chrono_tz::Tz>().ok()?;
        if parsed.len() == KEPT {
            parsed.remove(0);
        }
        parsed.push((name.into(), tz));
        Some(tz)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_name_reads_as_its_parse_however_many_names_were_read_before() {
        let names = [
            "America/New_York",
            "Europe/Madrid",
            "Mars/Olympus",
            "Asia/Tokyo",
            "america/new_york",
            "America/Montevideo",
            "Australia/Lord_Howe",
            "",
            "UTC",
            "Africa/Cairo",
            "Pacific/Chatham",
            "Europe/London",
            "Etc/GMT+5",
        ];
        // Over and over, more names than are kept, in a changing order.
        for round in 0..5 {
            for k in 0..names.len() {
                let name = names[(k * (round + 1)) % names.len()];
                assert_eq!(
                    parse_zone(name),
                    name.parse::<chrono_tz::Tz>().ok(),
                    "{name:?}, round {round}"
                );
            }
        }
        assert_eq!(parse_zone("Mars/Olympus"), None, "not a zone: never dialed");
    }

    #[test]
    fn ring_timeout_below_fifteen_seconds_is_refused_naming_the_field() {
        let mut c = Campaign::new("c", "America/New_York");
        c.ring_timeout_s = 10;
        assert_eq!(c.validate().unwrap_err().field, "ring_timeout_s");
    }

    #[test]
    fn unknown_campaign_zone_is_refused() {
        let c = Campaign::new("c", "Mars/Olympus");
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "time_zone");
        assert!(e.to_string().contains("Mars/Olympus"));
    }

    #[test]
    fn default_campaign_is_valid_and_serializes() {
        let c = Campaign::new("c", "America/New_York");
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: Campaign = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn caller_id_with_a_quote_in_the_name_is_refused_naming_the_field() {
        for bad in [
            "\"Sales \"East\"\" <2125550100>",
            "Sales <East> <2125550100>",
            "Sales > East <2125550100>",
            "Sales <2125550100",
        ] {
            let mut c = Campaign::new("c", "UTC");
            c.caller_id = bad.into();
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, "caller_id", "{bad}");
        }
        for good in [
            "\"Sales\" <2125550100>",
            "Sales East <2125550100>",
            "2125550100",
            "",
        ] {
            let mut c = Campaign::new("c", "UTC");
            c.caller_id = good.into();
            assert_eq!(c.validate(), Ok(()), "{good}");
        }
        assert_eq!(
            split_caller_id("\"Sales\" <2125550100>"),
            Ok(("Sales", "2125550100"))
        );
    }

    #[test]
    fn dial_string_has_one_shape_whatever_the_base_file_punctuation() {
        let forms = ["+1 212 555 6004", "1 212 555 6004", "(212) 555-6004"];
        let mut r = Routing {
            dial_prefix: "9".into(),
            ..Routing::default()
        };
        for (format, want) in [
            (DialFormat::National, "92125556004"),
            (DialFormat::E164, "9+12125556004"),
            (DialFormat::E164NoPlus, "912125556004"),
        ] {
            r.dial_format = format;
            for raw in forms {
                let n = PhoneNumber::parse(raw, "US").unwrap();
                assert_eq!(r.dial_string(&n), want, "{raw} as {format:?}");
            }
        }
        let uk = PhoneNumber::parse("+44 20 7946 0000", "US").unwrap();
        r.dial_format = DialFormat::National;
        assert_eq!(r.dial_string(&uk), "902079460000");
    }

    #[test]
    fn campaign_json_without_the_new_settings_still_reads() {
        let c = Campaign::new("c", "America/New_York");
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove("after_call");
        v["routing"].as_object_mut().unwrap().remove("dial_format");
        let back: Campaign = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn caller_id_with_line_break_is_refused() {
        let mut c = Campaign::new("c", "UTC");
        c.caller_id = "x\r\nAction: Command".into();
        assert_eq!(c.validate().unwrap_err().field, "caller_id");
    }

    #[test]
    fn amd_false_positive_rate_outside_zero_to_one_is_refused_naming_the_field() {
        let mut c = Campaign::new("c", "UTC");
        c.abandon.amd_false_positive_rate = 1.5;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "abandon.amd_false_positive_rate");
        assert!(e.to_string().contains("1.5"));
        c.abandon.amd_false_positive_rate = 0.04;
        c.validate().unwrap();
    }
}
