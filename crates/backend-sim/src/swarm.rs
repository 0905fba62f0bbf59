//! Swarm runs: seeded campaigns with faults, through the production driver and the SQLite
//! spool, judged by an independent oracle ([`crate::oracle`]).
//!
//! Every seed draws its whole set-up ([`SwarmSetup::draw`]): the campaign (dial mode, line and
//! attempt caps, calling hours, frequency cap, abandonment window — US successive 30 days or
//! UK calendar day — and AMD with its false-positive estimate), callee zones around DST
//! changes and some unknown zones, alternative numbers, a floor whose agents log in and out
//! and take breaks, callee behaviour, blacklist changes made by an operator during the run,
//! and fault rates: Originates refused by the PBX, calls whose end is lost, PBX outages, and
//! the dialer process killed and restarted from its SQLite file. A **safety phase** with the
//! faults is followed by a **liveness phase** without them, then the campaign is stopped and
//! the calls drain.
//!
//! The run is a sans-IO loop in virtual time, like the simulator: jump to the earliest of the
//! driver's wake-up ([`Driver::next_wake`]), the simulated PBX's next event
//! ([`SimWorld::next_at`]) and the swarm's own schedule; hand the PBX's burst to the driver;
//! carry the driver's actions out on the PBX. The spool is a real SQLite file: a kill drops
//! the driver with its engine, a restart reopens the file (which reconciles the attempt
//! ledger), builds a new engine and announces the agents again. The same seed gives the same
//! trace, byte for byte.
//!
//! This module does I/O (the SQLite file), unlike the rest of the crate.
//!
//! ```
//! use backend_sim::swarm::{run_seed, SwarmOptions};
//!
//! let run = run_seed(7, &SwarmOptions::default()).unwrap();
//! assert!(run.violations.is_empty(), "seed 7: {:?}", run.violations.first());
//! println!("seed 7: {} dials over {:.1} campaign-days", run.stats.dials, run.stats.campaign_days);
//! ```

use crate::dist::Dist;
use crate::oracle::{self, EndState, Violation};
use crate::rng::{self, Topic};
use crate::scenario::{AgentSpec, AmdSpec, CalleeSpec, CarrierSpec};
use crate::world::{FaultSpec, FloorMove, FloorPlan, SimWorld, Truth, WorldSpec};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use dialer_core::{
    AbandonPolicy, AbandonWindow, AgentState, AttemptsInDays, BlacklistEntry, BlacklistScope,
    CallEvent, CallingHours, Campaign, CampaignId, Command, DialMode, Direction, Engine,
    EngineConfig, Event, FrequencyCaps, InputKind, PhoneNumber, RecordId, RefusalCause,
    ScheduleWhen, SpoolRecord, StoreUpdate, TelephonyHealth, TimeRange,
};
use dialer_runtime::driver::{self, Action, Driver, DriverError, Spool};
use dialer_runtime::telephony::{AgentControl, Health, TelephonyCommand, TelephonyEvent};
use rand::Rng;
use serde::{Deserialize, Serialize};
use spool_store::{Callback, NewRecord, SpoolStore, StoreError};
use std::path::{Path, PathBuf};

/// How long dialing pauses after the PBX refuses an Originate for its own reasons (the
/// runtime's refusal pause).
const REFUSAL_PAUSE_S: i64 = 30;
/// How long the calls may take to drain after the campaign stops.
const DRAIN_S: i64 = 4 * 3600;
/// Most loop turns at one instant before the run counts as stalled.
const MAX_TURNS_AT_ONE_INSTANT: u32 = 10_000;
/// Callee zones a record may have: DST in both hemispheres, a half-hour DST, no DST.
const ZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Tokyo",
];
/// Zones no database knows: such a record must never be dialed.
const UNKNOWN_ZONES: &[&str] = &["Mars/Olympus_Mons", "America/Atlantis"];
/// Campaign start days just before DST changes (US spring and autumn, EU spring and
/// autumn, Lord Howe and Santiago in April) and one plain day.
const START_DAYS: &[(i32, u32, u32)] = &[
    (2026, 3, 7),
    (2026, 3, 28),
    (2026, 4, 4),
    (2026, 10, 24),
    (2026, 10, 31),
    (2026, 6, 1),
];

/// Why a swarm run could not be carried out (not a violation: the harness itself failed).
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("seed {seed}: the spool failed: {source}")]
    Store {
        seed: u64,
        #[source]
        source: StoreError,
    },
    #[error("seed {seed}: the driver failed: {message}")]
    Driver { seed: u64, message: String },
    #[error("seed {seed}: cannot create the spool's directory: {source}")]
    Io {
        seed: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("seed {seed}: the drawn set-up is invalid: {problem}")]
    Setup { seed: u64, problem: String },
}

/// Where to put the spool files.
#[derive(Debug, Clone, Default)]
pub struct SwarmOptions {
    /// Directory for the temporary spool files; `None`: `/dev/shm` when it exists, else the
    /// system's temporary directory.
    pub work_dir: Option<PathBuf>,
}

/// A record of the list, as spooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupRecord {
    /// Main number first, then alternatives, as E.164.
    pub numbers: Vec<String>,
    /// Callee zone; `None` = the campaign's.
    pub zone: Option<String>,
}

/// A do-not-call change an operator makes during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BlacklistOp {
    Add(BlacklistEntry),
    Remove {
        number: String,
        scope: BlacklistScope,
    },
}

/// A callback an operator books during the run (ECCP schedulecall, uContact
/// ScheduleDialerCall) for a callee of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleOp {
    /// Index of the callee in [`SwarmSetup::records`].
    pub index: usize,
    pub when: ScheduleWhen,
}

/// Everything a seed draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmSetup {
    pub seed: u64,
    pub start: DateTime<Utc>,
    /// Seconds of the safety phase (faults on), then of the liveness phase (faults off).
    pub safety_s: f64,
    pub liveness_s: f64,
    pub campaign: Campaign,
    pub records: Vec<SetupRecord>,
    pub callees: CalleeSpec,
    pub agents: AgentSpec,
    pub floor: Vec<FloorPlan>,
    pub faults: FaultSpec,
    /// Process kills: (seconds after the start, seconds until the restart).
    pub kills: Vec<(f64, f64)>,
    /// Operator blacklist changes: (seconds after the start, change).
    pub blacklist_ops: Vec<(f64, BlacklistOp)>,
    /// Callbacks booked by an operator: (seconds after the start, callback).
    #[serde(default)]
    pub schedule_ops: Vec<(f64, ScheduleOp)>,
    /// The world's true P(person | machine verdict), from the callee mix and the detector's
    /// accuracies (0 without AMD).
    pub true_fp_rate: f64,
}

fn pick<'a, T, R: Rng>(r: &mut R, xs: &'a [T]) -> &'a T {
    &xs[r.gen_range(0..xs.len())]
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// A valid US number, distinct for distinct `i` (below 8 million).
fn us_number(area: &str, i: u32) -> String {
    format!("+1{area}{:03}{:04}", 200 + i / 10_000, i % 10_000)
}

impl SwarmSetup {
    /// The set-up of a seed.
    pub fn draw(seed: u64) -> SwarmSetup {
        let mut r = rng::stream(seed, Topic::Carrier, 0x0053_5741_524d, 0);
        let day = *pick(&mut r, START_DAYS);
        let start = Utc
            .with_ymd_and_hms(day.0, day.1, day.2, r.gen_range(0..24), 0, 0)
            .single()
            .unwrap_or_default();
        let campaign_zone = *pick(&mut r, &ZONES[..5]);
        let mut c = Campaign::new(format!("swarm{seed}"), campaign_zone);
        c.dial_mode = match r.gen_range(0..4) {
            0 => DialMode::Progressive,
            1 => DialMode::Power {
                ratio: (r.gen_range(1.2..2.5f64) * 10.0).round() / 10.0,
            },
            _ => DialMode::Predictive,
        };
        c.calling_hours = match r.gen_range(0..5) {
            0 => CallingHours::us_tsr(),
            1 => CallingHours::canada_crtc(),
            2 => CallingHours::france(),
            3 => CallingHours::always(),
            _ => {
                let (s, e) = (r.gen_range(7..11), r.gen_range(16..22));
                let mut h = CallingHours::every_day(vec![TimeRange {
                    start: hm(s, 30 * r.gen_range(0..2)),
                    end: hm(e, 30 * r.gen_range(0..2)),
                }]);
                h.days[6].clear(); // no Sundays
                h
            }
        };
        c.last_dial_before_close_s = *pick(&mut r, &[0, 60, 120, 300]);
        c.max_lines = r.gen_range(2..16);
        c.ring_timeout_s = r.gen_range(15..31);
        c.max_attempts_per_number = r.gen_range(1..4);
        c.max_attempts_per_record = r.gen_range(1..7);
        c.retry.busy_s = r.gen_range(60..900);
        c.retry.no_answer_s = r.gen_range(300..3600);
        c.retry.congestion_s = r.gen_range(60..600);
        c.retry.machine_s = r.gen_range(600..7200);
        c.retry.abandoned_s = r.gen_range(3600..14400);
        c.retry.short_call_s = r.gen_range(300..3600);
        c.retry.unknown_s = r.gen_range(300..3600);
        if r.gen_bool(0.5) {
            c.frequency = FrequencyCaps {
                per_record: Some(AttemptsInDays {
                    max_attempts: r.gen_range(1..4),
                    days: r.gen_range(1..3),
                }),
                ..FrequencyCaps::default()
            };
        }
        if r.gen_bool(0.2) {
            c.holidays = vec![start.date_naive() + Duration::days(1)];
        }
        if r.gen_bool(0.2) {
            c.start_date = Some(start.date_naive());
            c.end_date = Some(start.date_naive() + Duration::days(1));
        }

        // Callees.
        let live: f64 = r.gen_range(0.2..0.6);
        let machine = r.gen_range(0.0..0.35);
        let busy = r.gen_range(0.0..0.15);
        let congestion = r.gen_range(0.0..0.05);
        let no_answer = (1.0 - live - machine - busy - congestion).max(0.0);
        let cap = *pick(&mut r, &[0.01, 0.03, 0.05]);
        // Progressive dials (one per free agent) are never stopped by the guard, so the
        // people a detector hangs up on must fit within the cap by themselves: a detector
        // that hangs up on a larger share of people than the cap makes the campaign
        // non-compliant whatever the pacing (a known limit of AMD, not drawn here). Up to 80%
        // of the cap is drawn, so that a campaign ignoring its false positives breaks it.
        let amd = AmdSpec {
            enabled: r.gen_bool(0.5),
            human_accuracy: r.gen_range(1.0 - 0.8 * cap..0.999),
            machine_accuracy: r.gen_range(0.75..0.95),
            delay: Dist::fixed(0.0),
        };
        let callees = CalleeSpec {
            live,
            machine,
            busy,
            no_answer,
            congestion,
            invalid: r.gen_range(0.0..0.05),
            time_to_answer: Dist::Lognormal {
                mean_s: r.gen_range(5.0..15.0),
                sd_s: 4.0,
            },
            time_to_failure: Dist::Lognormal {
                mean_s: 6.0,
                sd_s: 3.0,
            },
            no_answer_rings_out: true,
            talk: Dist::Lognormal {
                mean_s: r.gen_range(40.0..200.0),
                sd_s: 60.0,
            },
            patience: Dist::exp(r.gen_range(2.0..30.0)),
            machine_talk: Dist::fixed(8.0),
            amd,
        };
        let true_fp_rate = callees.amd_false_positive_share();
        c.abandon = AbandonPolicy {
            threshold_s: 2.0,
            cap,
            window: if r.gen_bool(0.5) {
                AbandonWindow::CalendarDay
            } else {
                AbandonWindow::RollingDays { days: 30 }
            },
            // A reasoned estimate at or above the truth.
            amd_false_positive_rate: (true_fp_rate * r.gen_range(1.0..1.5)).min(1.0),
        };

        // The list.
        let area = *pick(&mut r, &["212", "312", "415", "617", "713", "305"]);
        let n_records = r.gen_range(20..80u32);
        let mut next_number = r.gen_range(0..1_000_000u32);
        let records: Vec<SetupRecord> = (0..n_records)
            .map(|_| {
                let alts = if r.gen_bool(0.3) {
                    r.gen_range(1..3)
                } else {
                    0
                };
                let numbers = (0..=alts)
                    .map(|_| {
                        next_number += 1;
                        us_number(area, next_number)
                    })
                    .collect();
                let u: f64 = r.gen();
                let zone = if u < 0.45 {
                    None
                } else if u < 0.95 {
                    Some((*pick(&mut r, ZONES)).to_owned())
                } else {
                    Some((*pick(&mut r, UNKNOWN_ZONES)).to_owned())
                };
                SetupRecord { numbers, zone }
            })
            .collect();

        // Phases: one or two days of faults, then half a day to a day without.
        let safety_s = 3600.0 * f64::from(r.gen_range(20..48u32));
        let liveness_s = 3600.0 * f64::from(r.gen_range(12..24u32));

        // The floor.
        let n_agents = r.gen_range(1..7u32);
        let mut floor = Vec::new();
        for a in 0..n_agents as usize {
            if r.gen_bool(0.3) {
                floor.push(FloorPlan {
                    at_s: r.gen_range(0.0..4.0 * 3600.0),
                    agent: a,
                    mv: FloorMove::LogIn,
                });
            }
            for _ in 0..r.gen_range(0..4) {
                floor.push(FloorPlan {
                    at_s: r.gen_range(0.0..safety_s),
                    agent: a,
                    mv: FloorMove::Break {
                        length_s: r.gen_range(60.0..1800.0),
                    },
                });
            }
            if r.gen_bool(0.2) {
                let out = r.gen_range(3600.0..safety_s);
                floor.push(FloorPlan {
                    at_s: out,
                    agent: a,
                    mv: FloorMove::LogOut,
                });
                floor.push(FloorPlan {
                    at_s: out + r.gen_range(60.0..7200.0),
                    agent: a,
                    mv: FloorMove::LogIn,
                });
            }
        }
        floor.sort_by(|x, y| x.at_s.total_cmp(&y.at_s).then(x.agent.cmp(&y.agent)));
        let agents = AgentSpec {
            count: n_agents,
            wrap_up: Dist::Lognormal {
                mean_s: r.gen_range(5.0..40.0),
                sd_s: 5.0,
            },
            shift_start_h: 0.0,
            shift_hours: None,
            stagger_s: 0.0,
            break_every_h: None,
            break_length: Dist::fixed(600.0),
        };

        // Faults, only in the safety phase.
        let faulty = r.gen_bool(0.8);
        let outages = (0..if faulty { r.gen_range(0..3) } else { 0 })
            .map(|_| {
                (
                    r.gen_range(0.0..safety_s - 3600.0),
                    r.gen_range(30.0..900.0),
                )
            })
            .collect();
        let faults = FaultSpec {
            refuse: if faulty { r.gen_range(0.0..0.05) } else { 0.0 },
            lose: if faulty { r.gen_range(0.0..0.05) } else { 0.0 },
            lost_after_s: r.gen_range(20.0..300.0),
            outages,
        };
        let kills = (0..if faulty { r.gen_range(0..3) } else { 0 })
            .map(|_| {
                (
                    r.gen_range(600.0..safety_s - 3600.0),
                    r.gen_range(5.0..600.0),
                )
            })
            .collect();

        // Operator blacklist changes on numbers of the list.
        let mut blacklist_ops = Vec::new();
        for _ in 0..r.gen_range(0..6) {
            let rec = pick(&mut r, &records);
            let number = pick(&mut r, &rec.numbers).clone();
            let at = r.gen_range(0.0..safety_s);
            let scope = if r.gen_bool(0.5) {
                BlacklistScope::All
            } else {
                BlacklistScope::Campaign(c.id.clone())
            };
            let expires_at = if r.gen_bool(0.3) {
                Some(start + Duration::seconds(r.gen_range(at as i64 + 60..at as i64 + 86_400)))
            } else {
                None
            };
            let direction = *pick(&mut r, &[Direction::Both, Direction::Outbound]);
            blacklist_ops.push((
                at,
                BlacklistOp::Add(BlacklistEntry {
                    number: number.clone(),
                    scope: scope.clone(),
                    expires_at,
                    direction,
                }),
            ));
            if r.gen_bool(0.3) {
                blacklist_ops.push((
                    at + r.gen_range(60.0..20_000.0),
                    BlacklistOp::Remove { number, scope },
                ));
            }
        }
        blacklist_ops.sort_by(|a, b| a.0.total_cmp(&b.0));

        // Callbacks for callees of the list: an exact moment, or a daily time range over a
        // few days in the callee's local time (some zones are unknown: the spool refuses those).
        let mut schedule_ops = Vec::new();
        for _ in 0..r.gen_range(0..4) {
            let index = r.gen_range(0..records.len());
            let at = r.gen_range(0.0..safety_s);
            let booked = start + Duration::milliseconds((at * 1000.0) as i64);
            let when = if r.gen_bool(0.5) {
                ScheduleWhen::At {
                    at: booked + Duration::seconds(r.gen_range(60..2 * 86_400)),
                }
            } else {
                let zone = records[index]
                    .zone
                    .clone()
                    .unwrap_or_else(|| c.time_zone.clone());
                let today = zone.parse::<Tz>().map_or(booked.date_naive(), |tz| {
                    booked.with_timezone(&tz).date_naive()
                });
                let start_date = today + Duration::days(r.gen_range(0..3));
                let start_hour = r.gen_range(8..20);
                ScheduleWhen::Range {
                    start_date,
                    end_date: start_date + Duration::days(r.gen_range(0..3)),
                    start_time: hm(start_hour, *pick(&mut r, &[0, 30])),
                    end_time: hm((start_hour + r.gen_range(1..4)).min(23), 45),
                }
            };
            schedule_ops.push((at, ScheduleOp { index, when }));
        }
        schedule_ops.sort_by(|a, b| a.0.total_cmp(&b.0));

        SwarmSetup {
            seed,
            start,
            safety_s,
            liveness_s,
            campaign: c,
            records,
            callees,
            agents,
            floor,
            faults,
            kills,
            blacklist_ops,
            schedule_ops,
            true_fp_rate,
        }
    }

    /// The simulated PBX of this set-up.
    pub fn world_spec(&self) -> WorldSpec {
        WorldSpec {
            callees: self.callees.clone(),
            agents: self.agents.clone(),
            carrier: CarrierSpec {
                originate_latency: Dist::Lognormal {
                    mean_s: 0.3,
                    sd_s: 0.2,
                },
            },
            faults: self.faults.clone(),
            campaigns: vec![self.campaign.id.clone()],
            agent_prefix: "agent".into(),
            seed: self.seed,
            floor: self.floor.clone(),
        }
    }

    fn at(&self, s: f64) -> DateTime<Utc> {
        self.start + Duration::milliseconds((s * 1000.0).round() as i64)
    }
}

/// One line of a swarm trace: what the PBX really did, and what the swarm did around the
/// dialer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A record went into the spool.
    Spooled {
        at: DateTime<Utc>,
        record: RecordId,
        index: usize,
    },
    /// Ground truth from the simulated PBX.
    World(Truth),
    /// An operator added a do-not-call entry (persisted, then given to the engine).
    BlacklistAdd {
        at: DateTime<Utc>,
        entry: BlacklistEntry,
    },
    /// An operator removed one.
    BlacklistRemove {
        at: DateTime<Utc>,
        number: String,
        scope: BlacklistScope,
    },
    /// An operator booked a callback on a record (persisted, then the engine's hopper
    /// reloaded, as the runtime does).
    Scheduled {
        at: DateTime<Utc>,
        record: RecordId,
        when: ScheduleWhen,
    },
    /// The dialer refused a callback (a call in flight, an unknown zone, a duplicate...).
    ScheduleRefused {
        at: DateTime<Utc>,
        index: usize,
        reason: String,
    },
    /// The dialer process was killed.
    Killed { at: DateTime<Utc> },
    /// It started again from the spool file; the ledger reconciliation closed this many
    /// attempts.
    Restarted {
        at: DateTime<Utc>,
        attempts_reconciled: usize,
    },
    /// Faults end: the liveness phase starts.
    Liveness { at: DateTime<Utc> },
    /// The campaign is stopped; calls drain.
    Stopped { at: DateTime<Utc> },
}

impl TraceEvent {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TraceEvent::Spooled { at, .. }
            | TraceEvent::BlacklistAdd { at, .. }
            | TraceEvent::BlacklistRemove { at, .. }
            | TraceEvent::Scheduled { at, .. }
            | TraceEvent::ScheduleRefused { at, .. }
            | TraceEvent::Killed { at }
            | TraceEvent::Restarted { at, .. }
            | TraceEvent::Liveness { at }
            | TraceEvent::Stopped { at } => *at,
            TraceEvent::World(t) => t.at(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Calls that reached the network.
    pub dials: u64,
    /// Originates the driver handed out (including those the PBX refused).
    pub originates: u64,
    pub restarts: u32,
    /// Simulated days the campaign ran (safety and liveness phases).
    pub campaign_days: f64,
}

/// A finished run: its trace, the oracle's verdict and figures.
#[derive(Debug, Clone)]
pub struct SwarmRun {
    pub setup: SwarmSetup,
    pub trace: Vec<TraceEvent>,
    pub violations: Vec<Violation>,
    pub stats: RunStats,
}

/// The SQLite spool behind the driver's `Spool` trait.
struct Sqlite(SpoolStore);

impl Spool for Sqlite {
    type Error = StoreError;

    fn persist(&mut self, update: StoreUpdate) -> Result<(), StoreError> {
        self.0.apply(&update)
    }

    fn ready_set(
        &mut self,
        campaign: &CampaignId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<std::sync::Arc<SpoolRecord>>, StoreError> {
        self.0
            .ready_set(&campaign.0, now, limit)
            .map(|records| records.into_iter().map(std::sync::Arc::new).collect())
    }

    fn record_event(&mut self, event: &Event) -> Result<(), StoreError> {
        self.0.log_event(event).map(|_| ())
    }
}

/// What the swarm does at a moment of its own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Kill(usize),
    Restart(usize),
    Blacklist(usize),
    Schedule(usize),
    Liveness,
    Stop,
}

struct Harness<'a> {
    setup: &'a SwarmSetup,
    path: PathBuf,
    world: SimWorld,
    driver: Option<Driver<Sqlite>>,
    trace: Vec<TraceEvent>,
    /// When the refusal pause ends.
    resume_at: Option<DateTime<Utc>>,
    stats: RunStats,
    violations: Vec<Violation>,
}

/// Runs one seed in a temporary spool file and judges it.
pub fn run_seed(seed: u64, options: &SwarmOptions) -> Result<SwarmRun, SwarmError> {
    let setup = SwarmSetup::draw(seed);
    run_setup(setup, options)
}

/// Runs a set-up (drawn, or edited by a test) and judges it.
pub fn run_setup(setup: SwarmSetup, options: &SwarmOptions) -> Result<SwarmRun, SwarmError> {
    let seed = setup.seed;
    setup.campaign.validate().map_err(|e| SwarmError::Setup {
        seed,
        problem: e.to_string(),
    })?;
    let base = options.work_dir.clone().unwrap_or_else(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    });
    let dir = tempfile::Builder::new()
        .prefix("dialer-swarm-")
        .tempdir_in(&base)
        .map_err(|source| SwarmError::Io { seed, source })?;
    let mut h = Harness {
        setup: &setup,
        path: dir.path().join("spool.db"),
        world: SimWorld::new(setup.world_spec(), setup.start),
        driver: None,
        trace: Vec::new(),
        resume_at: None,
        stats: RunStats::default(),
        violations: Vec::new(),
    };
    let end = h.run()?;
    let trace = std::mem::take(&mut h.trace);
    let mut stats = h.stats;
    stats.dials = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::World(Truth::Placed { .. })))
        .count() as u64;
    stats.campaign_days = (setup.safety_s + setup.liveness_s) / 86_400.0;
    let mut violations = std::mem::take(&mut h.violations);
    violations.extend(oracle::check(&setup, &trace, &end));
    violations.sort_by_key(|v| v.at);
    Ok(SwarmRun {
        setup,
        trace,
        violations,
        stats,
    })
}

impl Harness<'_> {
    fn store_err(&self, source: StoreError) -> SwarmError {
        SwarmError::Store {
            seed: self.setup.seed,
            source,
        }
    }

    fn driver_err<E: std::error::Error>(&self, e: DriverError<E>) -> SwarmError {
        SwarmError::Driver {
            seed: self.setup.seed,
            message: e.to_string(),
        }
    }

    /// The spool's form of a callee of the list.
    fn new_record(&self, index: usize) -> Result<NewRecord, SwarmError> {
        let rec = &self.setup.records[index];
        let numbers = rec
            .numbers
            .iter()
            .map(|n| PhoneNumber::parse(n, "US"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SwarmError::Setup {
                seed: self.setup.seed,
                problem: e.to_string(),
            })?;
        let mut new = NewRecord::new(self.setup.campaign.id.0.to_string(), numbers);
        new.time_zone = rec.zone.clone();
        Ok(new)
    }

    /// Starts the dialer process from the spool file (reconciling its ledger).
    fn start_process(&mut self, now: DateTime<Utc>, first: bool) -> Result<(), SwarmError> {
        let (mut store, report) =
            SpoolStore::open_at(&self.path, now).map_err(|e| self.store_err(e))?;
        let c = &self.setup.campaign;
        if first {
            store
                .upsert_campaign(c, now)
                .map_err(|e| self.store_err(e))?;
            for index in 0..self.setup.records.len() {
                let new = self.new_record(index)?;
                let record = store.respool(&new, now).map_err(|e| self.store_err(e))?;
                self.trace.push(TraceEvent::Spooled {
                    at: now,
                    record,
                    index,
                });
            }
        } else {
            self.stats.restarts += 1;
            self.trace.push(TraceEvent::Restarted {
                at: now,
                attempts_reconciled: report.attempts_closed.len(),
            });
        }
        let mut cfg = EngineConfig::default();
        if let Some(last) = store.max_call_id().map_err(|e| self.store_err(e))? {
            cfg.first_call_id = cfg.first_call_id.max(last.0 + 1);
        }
        let mut engine = Engine::new(cfg);
        engine.load_blacklist(store.blacklist(now).map_err(|e| self.store_err(e))?);
        // Calls the killed process left up on the PBX hold their lines, as in the runtime.
        let unknown = store
            .calls_of_unknown_fate(now - Duration::seconds(driver::UNKNOWN_FATE_HOLD_S))
            .map_err(|e| self.store_err(e))?;
        // The abandonment books of the killed process come back with the campaign.
        let books = store
            .abandon_books(&c.id.0)
            .map_err(|e| self.store_err(e))?;
        let mut driver = Driver::new(engine, Sqlite(store));
        let mut inputs = driver::load_campaign(c.clone(), books);
        if self.world.is_down() {
            inputs.push(InputKind::Telephony(TelephonyHealth::Down {
                reason: "the simulated PBX is down".into(),
            }));
        }
        driver.handle(now, inputs).map_err(|e| self.driver_err(e))?;
        for command in driver::hold_lines(unknown) {
            if let Err(reason) = driver
                .command(now, command)
                .map_err(|e| self.driver_err(e))?
            {
                self.violations.push(Violation::harness(
                    now,
                    format!(
                        "the engine refused to hold a line for a call of unknown fate: {reason}"
                    ),
                ));
            }
        }
        self.driver = Some(driver);
        if !first {
            self.world.dialer_restarted();
        }
        self.carry_out(now)
    }

    /// Carries out the driver's actions on the PBX.
    fn carry_out(&mut self, now: DateTime<Utc>) -> Result<(), SwarmError> {
        let Some(driver) = self.driver.as_mut() else {
            return Ok(());
        };
        while let Some(action) = driver.poll_action() {
            match action {
                Action::Originate(intent) => {
                    self.stats.originates += 1;
                    self.world
                        .command(now, &TelephonyCommand::Originate(*intent));
                }
                Action::Hangup(call) => self.world.command(now, &TelephonyCommand::Hangup(call)),
                Action::Hold { call, hold } => self
                    .world
                    .command(now, &TelephonyCommand::Hold { call, hold }),
                Action::Event(Event::AgentAway { agent, paused, .. }) => {
                    let control = match paused {
                        Some(reason) => AgentControl::Pause { reason },
                        None => AgentControl::Leave {
                            campaign: self.setup.campaign.id.clone(),
                        },
                    };
                    self.world
                        .command(now, &TelephonyCommand::Agent { agent, control });
                }
                Action::Event(_) => {}
            }
        }
        Ok(())
    }

    fn steps(&self) -> Vec<(DateTime<Utc>, Step)> {
        let s = self.setup;
        let mut steps: Vec<(DateTime<Utc>, Step)> = Vec::new();
        for (i, (at, down)) in s.kills.iter().enumerate() {
            steps.push((s.at(*at), Step::Kill(i)));
            steps.push((s.at(at + down), Step::Restart(i)));
        }
        for (i, (at, _)) in s.blacklist_ops.iter().enumerate() {
            steps.push((s.at(*at), Step::Blacklist(i)));
        }
        for (i, (at, _)) in s.schedule_ops.iter().enumerate() {
            steps.push((s.at(*at), Step::Schedule(i)));
        }
        steps.push((s.at(s.safety_s), Step::Liveness));
        steps.push((s.at(s.safety_s + s.liveness_s), Step::Stop));
        steps.sort();
        steps
    }

    fn apply_step(&mut self, now: DateTime<Utc>, step: Step) -> Result<(), SwarmError> {
        match step {
            Step::Kill(_) => {
                if self.driver.take().is_some() {
                    self.resume_at = None;
                    self.trace.push(TraceEvent::Killed { at: now });
                }
            }
            Step::Restart(_) => {
                if self.driver.is_none() {
                    self.start_process(now, false)?;
                }
            }
            Step::Blacklist(i) => {
                let op = self.setup.blacklist_ops[i].1.clone();
                self.blacklist(now, op)?;
            }
            Step::Schedule(i) => {
                let op = self.setup.schedule_ops[i].1.clone();
                self.schedule(now, op)?;
            }
            Step::Liveness => {
                self.world.set_fault_rates(0.0, 0.0);
                self.trace.push(TraceEvent::Liveness { at: now });
                // A process killed without a restart before the end comes back now.
                if self.driver.is_none() {
                    self.start_process(now, false)?;
                }
            }
            Step::Stop => {
                self.trace.push(TraceEvent::Stopped { at: now });
                if let Some(d) = self.driver.as_mut() {
                    let campaign = self.setup.campaign.id.clone();
                    d.handle(now, [InputKind::StopCampaign { campaign }])
                        .map_err(|e| SwarmError::Driver {
                            seed: self.setup.seed,
                            message: e.to_string(),
                        })?;
                }
                self.carry_out(now)?;
            }
        }
        Ok(())
    }

    /// An operator books a callback the way the runtime does: refused while the record has a
    /// call in flight, persisted, then the engine's hopper reloaded from the spool (so a record
    /// it held is now held back until its callback). While the process is down only the spool
    /// changes; a restart loads it.
    fn schedule(&mut self, now: DateTime<Utc>, op: ScheduleOp) -> Result<(), SwarmError> {
        let seed = self.setup.seed;
        let new = self.new_record(op.index)?;
        let campaign = self.setup.campaign.id.clone();
        let mut scratch = None;
        let store = match self.driver.as_mut() {
            Some(d) => {
                let main = new.numbers[0].e164().to_owned();
                let live = d
                    .spool()
                    .0
                    .live_record_with_number(&campaign.0, &main)
                    .map_err(|source| SwarmError::Store { seed, source })?;
                if let Some(id) = live.filter(|id| d.engine().record_in_flight(id)) {
                    self.trace.push(TraceEvent::ScheduleRefused {
                        at: now,
                        index: op.index,
                        reason: format!("record {id} has a call in flight"),
                    });
                    return Ok(());
                }
                &mut d.spool_mut().0
            }
            None => scratch.insert(
                SpoolStore::open_unreconciled(&self.path)
                    .map_err(|source| SwarmError::Store { seed, source })?,
            ),
        };
        let existed = store
            .live_record_with_number(&campaign.0, new.numbers[0].e164())
            .map_err(|source| SwarmError::Store { seed, source })?;
        match store.schedule_call(&new, &Callback::at(op.when.clone()), now) {
            Ok((record, _)) => {
                if existed.as_ref() != Some(&record) {
                    self.trace.push(TraceEvent::Spooled {
                        at: now,
                        record: record.clone(),
                        index: op.index,
                    });
                }
                self.trace.push(TraceEvent::Scheduled {
                    at: now,
                    record,
                    when: op.when,
                });
            }
            Err(
                e @ (StoreError::InvalidSchedule(_)
                | StoreError::DuplicateSchedule { .. }
                | StoreError::RecordInFlight(_)
                | StoreError::InvalidRecord { .. }
                | StoreError::CampaignNotAccepting { .. }),
            ) => {
                self.trace.push(TraceEvent::ScheduleRefused {
                    at: now,
                    index: op.index,
                    reason: e.to_string(),
                });
                return Ok(());
            }
            Err(source) => return Err(SwarmError::Store { seed, source }),
        }
        drop(scratch);
        let Some(d) = self.driver.as_mut() else {
            return Ok(());
        };
        let records = d
            .spool_mut()
            .0
            .ready_set(&campaign.0, now, driver::RELOAD_LIMIT)
            .map_err(|source| SwarmError::Store { seed, source })?
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        d.handle(now, [InputKind::RecordsOffered { campaign, records }])
            .map_err(|e| SwarmError::Driver {
                seed,
                message: e.to_string(),
            })?;
        self.carry_out(now)
    }

    /// An operator's do-not-call change: persisted first, then given to the engine (the one
    /// writer). While the process is down only the spool changes; a restart loads it.
    fn blacklist(&mut self, now: DateTime<Utc>, op: BlacklistOp) -> Result<(), SwarmError> {
        let seed = self.setup.seed;
        let command = match &op {
            BlacklistOp::Add(entry) => {
                self.trace.push(TraceEvent::BlacklistAdd {
                    at: now,
                    entry: entry.clone(),
                });
                Command::BlacklistAdd(entry.clone())
            }
            BlacklistOp::Remove { number, scope } => {
                self.trace.push(TraceEvent::BlacklistRemove {
                    at: now,
                    number: number.clone(),
                    scope: scope.clone(),
                });
                Command::BlacklistRemove {
                    number: number.clone(),
                    scope: scope.clone(),
                }
            }
        };
        match self.driver.as_mut() {
            Some(d) => {
                let store = &mut d.spool_mut().0;
                match &op {
                    BlacklistOp::Add(entry) => store.blacklist_add(entry, now).map(|_| ()),
                    BlacklistOp::Remove { number, scope } => {
                        store.blacklist_remove(number, scope).map(|_| ())
                    }
                }
                .map_err(|source| SwarmError::Store { seed, source })?;
                let verdict = d.command(now, command).map_err(|e| SwarmError::Driver {
                    seed,
                    message: e.to_string(),
                })?;
                if let Err(reason) = verdict {
                    self.violations.push(Violation::harness(
                        now,
                        format!("the engine refused a do-not-call change the spool took: {reason}"),
                    ));
                }
                self.carry_out(now)
            }
            None => {
                let mut store = SpoolStore::open_unreconciled(&self.path)
                    .map_err(|source| SwarmError::Store { seed, source })?;
                match &op {
                    BlacklistOp::Add(entry) => store.blacklist_add(entry, now).map(|_| ()),
                    BlacklistOp::Remove { number, scope } => {
                        store.blacklist_remove(number, scope).map(|_| ())
                    }
                }
                .map_err(|source| SwarmError::Store { seed, source })
            }
        }
    }

    /// The PBX's burst, in the engine's terms (refusals for the PBX's own reasons pause
    /// dialing like the runtime does).
    fn inputs_of(&mut self, now: DateTime<Utc>, burst: Vec<TelephonyEvent>) -> Vec<InputKind> {
        let mut inputs = Vec::with_capacity(burst.len() + 1);
        for ev in burst {
            match ev {
                TelephonyEvent::Input(kind) => {
                    let pbx_refusal = matches!(
                        &kind,
                        InputKind::Call {
                            event: CallEvent::OriginateRefused {
                                cause: RefusalCause::Pbx { .. }
                            },
                            ..
                        }
                    );
                    inputs.push(kind);
                    if pbx_refusal && !self.world.is_down() {
                        inputs.push(InputKind::Telephony(TelephonyHealth::Down {
                            reason: "the PBX refused an originate".into(),
                        }));
                        self.resume_at = Some(now + Duration::seconds(REFUSAL_PAUSE_S));
                    }
                }
                TelephonyEvent::Health(Health::Down { detail, .. }) => {
                    self.resume_at = None;
                    inputs.push(InputKind::Telephony(TelephonyHealth::Down {
                        reason: detail,
                    }));
                }
                TelephonyEvent::Health(Health::Up | Health::Reconciled { .. }) => {
                    self.resume_at = None;
                    inputs.push(InputKind::Telephony(TelephonyHealth::Up));
                }
                // The world reports no identities (the live seam adds them); nothing to judge.
                TelephonyEvent::Identity { .. } => {}
            }
        }
        if self.resume_at.is_some_and(|t| t <= now) {
            self.resume_at = None;
            inputs.push(InputKind::Telephony(TelephonyHealth::Up));
        }
        inputs
    }

    fn run(&mut self) -> Result<EndState, SwarmError> {
        let s = self.setup;
        let mut steps = self.steps().into_iter().peekable();
        let stop_at = s.at(s.safety_s + s.liveness_s);
        let give_up = stop_at + Duration::seconds(DRAIN_S);
        let mut now = s.start;
        self.start_process(now, true)?;
        let mut turns_here = 0u32;
        loop {
            let wake = self.driver.as_ref().and_then(|d| d.next_wake());
            let next = [
                self.world.next_at(),
                wake,
                self.resume_at,
                steps.peek().map(|(t, _)| *t),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { break };
            let next = next.max(now);
            if next > give_up {
                break;
            }
            if next == now {
                turns_here += 1;
                if turns_here > MAX_TURNS_AT_ONE_INSTANT {
                    self.violations.push(Violation::stalled(now));
                    break;
                }
            } else {
                turns_here = 0;
            }
            now = next;
            while steps.peek().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, step)) = steps.next() {
                    self.apply_step(now, step)?;
                }
            }
            let burst = self.world.poll(now);
            let inputs = self.inputs_of(now, burst);
            if let Some(d) = self.driver.as_mut() {
                let due = d.next_wake().is_some_and(|w| w <= now);
                if !inputs.is_empty() || due {
                    d.handle(now, inputs).map_err(|e| SwarmError::Driver {
                        seed: s.seed,
                        message: e.to_string(),
                    })?;
                }
            }
            self.carry_out(now)?;
            if now >= stop_at
                && self.world.lines_in_use() == 0
                && self
                    .driver
                    .as_ref()
                    .is_some_and(|d| d.engine().calls_in_flight() == 0)
            {
                break;
            }
        }
        self.trace
            .extend(self.world.truth().iter().cloned().map(TraceEvent::World));
        self.trace.sort_by_key(TraceEvent::at);
        self.end_state(now)
    }

    /// What the oracle's liveness checks look at once the calls have drained.
    fn end_state(&mut self, now: DateTime<Utc>) -> Result<EndState, SwarmError> {
        let seed = self.setup.seed;
        let Some(driver) = self.driver.as_ref() else {
            return Err(SwarmError::Driver {
                seed,
                message: "no dialer process at the end of the run".into(),
            });
        };
        let engine = driver.engine();
        let mut stuck_agents = Vec::new();
        for n in 1..=self.setup.agents.count {
            let agent = dialer_core::AgentId::from(format!("agent{n}"));
            if self.world.agent_idle(&agent) {
                let state = match engine.agent_state(&agent) {
                    Some(AgentState::Ready) => continue,
                    None => "unknown (never announced)".to_owned(),
                    Some(AgentState::LoggedOut) => "logged out".to_owned(),
                    Some(AgentState::OnCall { call }) => format!("on {call}"),
                    Some(AgentState::Reserved { call }) => format!("reserved for {call}"),
                    Some(AgentState::WrapUp { .. }) => "in wrap-up".to_owned(),
                    Some(_) => "paused or previewing".to_owned(),
                };
                stuck_agents.push((agent, state));
            }
        }
        let store = &driver.spool().0;
        let c = &self.setup.campaign.id.0;
        let records = store
            .records(c)
            .map_err(|source| SwarmError::Store { seed, source })?;
        let ledger = store
            .attempts(c)
            .map_err(|source| SwarmError::Store { seed, source })?;
        let status = store
            .campaign_status(c)
            .map_err(|source| SwarmError::Store { seed, source })?;
        Ok(EndState {
            at: now,
            lines_in_use: self.world.lines_in_use(),
            engine_calls: engine.calls_in_flight(),
            stuck_agents,
            records,
            ledger,
            status_in_flight: status.in_flight,
            status_total: status.total,
        })
    }
}

/// The start of the 30-day period containing `day`, counted from `anchor`.
pub fn thirty_day_period(anchor: NaiveDate, day: NaiveDate, days: u32) -> NaiveDate {
    let n = (day - anchor).num_days().max(0) / i64::from(days.max(1));
    anchor + Duration::days(n * i64::from(days.max(1)))
}

/// Seeds `a..=b` from `"a..b"` (inclusive, like the CLI's `--seeds 1..10000`) or one seed.
pub fn parse_seeds(text: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?} is not a seed (a whole number)"))
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b.trim_start_matches('='))?);
            if a > b {
                return Err(format!("the range {text:?} is empty: {a} is after {b}"));
            }
            Ok(a..=b)
        }
        None => {
            let a = parse(text)?;
            Ok(a..=a)
        }
    }
}
