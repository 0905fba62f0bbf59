//! proptest strategies for campaigns, records and event scripts.

use super::scripted_run::{ScriptAgent, ScriptCall, ScriptDisposition, Step, World};
use crate::model::blacklist::{BlacklistEntry, BlacklistScope, Direction};
use crate::model::campaign::{
    AttemptsInDays, CallingHours, Campaign, DialMode, FrequencyCaps, TimeRange,
};
use crate::model::ids::{CampaignId, RecordId, ScheduleId};
use crate::model::outcome::{AnswerKind, FailureClass};
use crate::model::phone::PhoneNumber;
use crate::model::record::{Schedule, ScheduleWhen, SpoolRecord};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;

/// Zones with daylight-saving changes (and odd offsets) the window rules must survive, plus
/// one that does not exist.
pub const TEST_ZONES: [&str; 6] = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Los_Angeles",
    "Mars/Olympus_Mons",
];

/// Instants of daylight-saving changes in 2026 in the test zones.
pub fn dst_transitions() -> Vec<DateTime<Utc>> {
    [
        (2026, 3, 8, 7, 0),    // New York springs forward
        (2026, 11, 1, 6, 0),   // New York falls back
        (2026, 3, 29, 1, 0),   // London springs forward
        (2026, 10, 25, 1, 0),  // London falls back
        (2026, 4, 4, 15, 0),   // Lord Howe falls back 30 min
        (2026, 10, 3, 15, 30), // Lord Howe springs forward 30 min
    ]
    .into_iter()
    .map(|(y, m, d, h, mi)| {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0)
            .single()
            .expect("valid literal")
    })
    .collect()
}

/// A start time within half a day before a DST change, so runs cross it.
pub fn start_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0..dst_transitions().len(), 0u32..12 * 3600)
        .prop_map(|(i, back)| dst_transitions()[i] - Duration::seconds(i64::from(back)))
}

fn time_of_day() -> impl Strategy<Value = NaiveTime> {
    // Quarter hours, so windows land on DST gaps and repeats (01:00-03:00) often.
    (0u32..96).prop_map(|q| NaiveTime::from_hms_opt(q / 4, (q % 4) * 15, 0).expect("in range"))
}

/// Calling hours: the same one or two intervals every day, or a weekday/weekend split.
pub fn calling_hours() -> impl Strategy<Value = CallingHours> {
    prop_oneof![
        Just(CallingHours::us_tsr()),
        Just(CallingHours::france()),
        Just(CallingHours::always()),
        (time_of_day(), time_of_day()).prop_filter_map("empty interval", |(a, b)| {
            let (s, e) = if a < b { (a, b) } else { (b, a) };
            TimeRange::new(s, e)
                .ok()
                .map(|r| CallingHours::every_day(vec![r]))
        }),
    ]
}

/// A valid campaign in a random mode with random caps.
pub fn campaign() -> impl Strategy<Value = Campaign> {
    (
        prop_oneof![
            Just(DialMode::Progressive),
            Just(DialMode::Predictive),
            (1.0f64..3.0).prop_map(|ratio| DialMode::Power { ratio }),
        ],
        0usize..5,
        calling_hours(),
        1u32..6,
        1u32..4,
        1u32..6,
        proptest::option::of((1u32..4, 1u32..3)),
        proptest::option::of(1u32..6),
        any::<bool>(),
        0u32..300,
    )
        .prop_map(
            |(
                mode,
                zone,
                hours,
                lines,
                per_number,
                per_record,
                freq,
                abandon_h,
                machine_day,
                margin,
            )| {
                let mut c = Campaign::new("camp", TEST_ZONES[zone]);
                c.dial_mode = mode;
                c.calling_hours = hours;
                c.max_lines = lines;
                c.max_attempts_per_number = per_number;
                c.max_attempts_per_record = per_record;
                c.last_dial_before_close_s = margin;
                c.frequency = FrequencyCaps {
                    per_record: freq
                        .map(|(max_attempts, days)| AttemptsInDays { max_attempts, days }),
                    no_redial_after_abandon_h: abandon_h,
                    no_redial_same_day_after_machine: machine_day,
                    no_redial_after_conversation_h: None,
                };
                // Short delays so retries happen within a run.
                c.retry.busy_s = 60;
                c.retry.no_answer_s = 120;
                c.retry.congestion_s = 30;
                c.retry.machine_s = 300;
                c.retry.abandoned_s = 300;
                c.retry.short_call_s = 60;
                c.retry.unknown_s = 600;
                c
            },
        )
}

/// The E.164 numbers a world draws from (few, so records share numbers).
pub fn number_pool(n: usize) -> Vec<PhoneNumber> {
    (0..n)
        .map(|i| {
            let national = format!("212555{:04}", 100 + i);
            PhoneNumber::from_trusted(&format!("+1{national}"), &national).expect("digits only")
        })
        .collect()
}

/// Records of `campaign` over a pool of `pool` numbers.
pub fn records(
    campaign: CampaignId,
    pool: usize,
    start: DateTime<Utc>,
) -> impl Strategy<Value = Vec<SpoolRecord>> {
    let one = (
        0..pool,
        proptest::collection::vec(0..pool, 0..3),
        proptest::option::of(0usize..TEST_ZONES.len()),
        2u32..6,
        0u32..2,
        proptest::option::of((0i64..6 * 3600, proptest::option::of(any::<bool>()))),
    );
    proptest::collection::vec(one, 1..12).prop_map(move |specs| {
        let numbers = number_pool(pool);
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (main, alts, zone, priority, prior_attempts, schedule))| {
                    let alts: Vec<PhoneNumber> = alts
                        .into_iter()
                        .filter(|&a| a != main)
                        .map(|a| numbers[a].clone())
                        .collect();
                    let mut r = SpoolRecord::new(
                        RecordId(i as u64 + 1),
                        campaign.clone(),
                        numbers[main].clone(),
                        alts,
                        start - Duration::days(1) + Duration::seconds(i as i64),
                    );
                    r.time_zone = zone.map(|z| TEST_ZONES[z].to_owned());
                    r.priority = priority;
                    r.attempts = prior_attempts;
                    r.numbers[0].attempts = prior_attempts;
                    if prior_attempts > 0 {
                        r.history.recent.push(start - Duration::hours(3));
                    }
                    if let Some((offset, _)) = schedule {
                        r.schedule = Some(Schedule {
                            id: ScheduleId(i as u64 + 1),
                            when: ScheduleWhen::At {
                                at: start + Duration::seconds(offset),
                            },
                            agent: None,
                            number: None,
                        });
                    }
                    r
                },
            )
            .collect()
    })
}

fn script_call() -> impl Strategy<Value = ScriptCall> {
    prop_oneof![
        2 => Just(ScriptCall::Accept),
        1 => Just(ScriptCall::Ring),
        3 => Just(ScriptCall::Answer(AnswerKind::Human)),
        1 => Just(ScriptCall::Answer(AnswerKind::Machine)),
        1 => Just(ScriptCall::Answer(AnswerKind::Unknown)),
        4 => Just(ScriptCall::Link),
        1 => Just(ScriptCall::Fail(FailureClass::Busy)),
        2 => Just(ScriptCall::Fail(FailureClass::NoAnswer)),
        1 => Just(ScriptCall::Fail(FailureClass::Congestion)),
        1 => Just(ScriptCall::Fail(FailureClass::InvalidNumber)),
        1 => Just(ScriptCall::Fail(FailureClass::Rejected)),
        3 => Just(ScriptCall::HangUp),
        1 => Just(ScriptCall::Refuse),
        1 => Just(ScriptCall::RefuseCallee),
        1 => Just(ScriptCall::Lose),
    ]
}

fn script_agent() -> impl Strategy<Value = ScriptAgent> {
    prop_oneof![
        4 => Just(ScriptAgent::Ready),
        1 => Just(ScriptAgent::Pause),
        1 => Just(ScriptAgent::PauseAfterCall),
        1 => Just(ScriptAgent::LogOut),
        1 => Just(ScriptAgent::LogIn),
    ]
}

/// One step of a script.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u32..3 * 3600).prop_map(|secs| Step::Advance { secs }),
        3 => (1u32..40).prop_map(|secs| Step::Advance { secs }),
        10 => (0usize..16, script_call()).prop_map(|(pick, event)| Step::Call { pick, event }),
        3 => (0usize..8, script_agent()).prop_map(|(pick, event)| Step::Agent { pick, event }),
        1 => (0usize..16, any::<bool>(), proptest::option::of(1u32..5))
            .prop_map(|(pick, all_campaigns, expires_after_h)| Step::Blacklist { pick, all_campaigns, expires_after_h }),
        1 => (0usize..16).prop_map(|pick| Step::Unblacklist { pick }),
    ]
}

/// A whole world: campaign, records, agents, blacklist and a script that crosses a DST change.
pub fn world() -> impl Strategy<Value = World> {
    (campaign(), start_time(), 2usize..10, 0usize..5).prop_flat_map(
        |(campaign, start, pool, agents)| {
            let cid = campaign.id.clone();
            let numbers = number_pool(pool);
            let blacklist = proptest::collection::vec((0..pool, any::<bool>()), 0..3);
            (
                Just(campaign),
                records(cid.clone(), pool, start),
                Just(agents),
                Just(
                    numbers
                        .iter()
                        .map(|n| n.e164().to_owned())
                        .collect::<Vec<_>>(),
                ),
                blacklist,
                Just(start),
                proptest::collection::vec(step(), 10..80),
            )
                .prop_map(
                    move |(campaign, records, agents, pool, bl, start, steps)| World {
                        initial_blacklist: bl
                            .into_iter()
                            .map(|(i, all)| BlacklistEntry {
                                number: pool[i].clone(),
                                scope: if all {
                                    BlacklistScope::All
                                } else {
                                    BlacklistScope::Campaign(cid.clone())
                                },
                                expires_at: None,
                                direction: Direction::Outbound,
                            })
                            .collect(),
                        campaign,
                        records,
                        agents,
                        pool,
                        start,
                        steps,
                    },
                )
        },
    )
}

fn script_disposition() -> impl Strategy<Value = ScriptDisposition> {
    prop_oneof![
        3 => proptest::collection::vec(0usize..24, 1..3).prop_map(ScriptDisposition::Respool),
        2 => Just(ScriptDisposition::RespoolAlternative),
        2 => (60u32..6 * 3600, 0usize..24)
            .prop_map(|(after_s, number)| ScriptDisposition::ScheduleNewPhone { after_s, number }),
        2 => (0u32..3, 1u32..3)
            .prop_map(|(start_in_days, days)| ScriptDisposition::ScheduleRange { start_in_days, days }),
        1 => Just(ScriptDisposition::Done),
    ]
}

/// [`world`] whose records start with distinct destinations (no number on two records), and
/// whose script also has agents disposing of records: respools onto numbers of the pool
/// (some live on other records), alternatives, callbacks on a new phone.
pub fn world_with_dispositions() -> impl Strategy<Value = World> {
    (
        world(),
        proptest::collection::vec((0usize..16, script_disposition()), 5..30),
        proptest::collection::vec(any::<proptest::sample::Index>(), 5..30),
    )
        .prop_map(|(mut world, dispositions, places)| {
            // Distinct destinations: record i dials pool numbers of its own.
            let per_record = 3;
            let pool = number_pool(world.records.len() * per_record);
            for (i, r) in world.records.iter_mut().enumerate() {
                for (j, slot) in r.numbers.iter_mut().enumerate() {
                    slot.number = pool[i * per_record + j % per_record].clone();
                }
            }
            world.pool = pool.iter().map(|n| n.e164().to_owned()).collect();
            world
                .initial_blacklist
                .retain(|e| world.pool.contains(&e.number));
            for ((pick, action), at) in dispositions.into_iter().zip(places) {
                let at = at.index(world.steps.len() + 1);
                world.steps.insert(at, Step::Dispose { pick, action });
            }
            world
        })
}
