//! What a runtime relies on: typed rejections, commands answered at once and changing nothing
//! when refused, telephone-system faults that charge no callee, agents that cannot stall in
//! wrap-up, talk time from the PBX, one dial-string shape, and a status snapshot. Each test
//! is named after the defect it fixes.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use dialer_core::pacing::{Pacer, PacingEvent, PacingSnapshot};
use dialer_core::testing::MemorySpool;
use dialer_core::*;
use std::sync::{Arc, Mutex};

struct Bench {
    engine: Engine,
    spool: MemorySpool,
    now: DateTime<Utc>,
    out: Vec<Output>,
    cid: CampaignId,
}

impl Bench {
    fn new(mut c: Campaign, records: Vec<SpoolRecord>) -> Bench {
        c.calling_hours = CallingHours::always();
        c.last_dial_before_close_s = 0;
        let mut spool = MemorySpool::default();
        for r in records {
            spool.insert(r);
        }
        let mut b = Bench {
            engine: Engine::new(EngineConfig::default()),
            spool,
            now: Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(),
            out: Vec::new(),
            cid: c.id.clone(),
        };
        b.feed(InputKind::Campaign(Box::new(c)));
        b
    }

    fn drain(&mut self) -> Vec<InputKind> {
        let mut replies = Vec::new();
        loop {
            let o = self.engine.poll_output();
            if let Output::Timeout(_) = o {
                break;
            }
            if let Some(reply) = self.spool.serve(&o, self.now) {
                replies.push(reply);
            }
            self.out.push(o);
        }
        replies
    }

    fn feed(&mut self, kind: InputKind) {
        let mut queue = vec![kind];
        while let Some(kind) = queue.pop() {
            self.engine.handle_input(Input::new(self.now, kind));
            queue.extend(self.drain());
        }
    }

    fn command(&mut self, c: Command) -> Result<(), RejectReason> {
        let r = self.engine.apply_command(self.now, c);
        for reply in self.drain() {
            self.feed(reply);
        }
        r
    }

    fn agent(&mut self, agent: &str, event: AgentEvent) {
        self.feed(InputKind::Agent {
            agent: agent.into(),
            event,
        });
    }

    fn login(&mut self, agent: &str) {
        let campaigns = vec![self.cid.clone()];
        self.agent(
            agent,
            AgentEvent::LoggedIn {
                campaigns,
                inactivity_timeout_s: None,
            },
        );
    }

    fn call(&mut self, call: CallId, event: CallEvent) {
        self.feed(InputKind::Call { call, event });
    }

    fn talk(&mut self, call: CallId, agent: &str) {
        self.call(
            call,
            CallEvent::Answered {
                kind: AnswerKind::Human,
            },
        );
        self.call(
            call,
            CallEvent::Linked {
                agent: agent.into(),
            },
        );
    }

    fn hang_up(&mut self, call: CallId) {
        self.call(
            call,
            CallEvent::HungUp {
                failure: None,
                ended_at: None,
            },
        );
    }

    fn advance(&mut self, secs: i64) {
        self.now += Duration::seconds(secs);
        self.feed(InputKind::Tick);
    }

    fn originates(&self) -> Vec<OriginateIntent> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Originate(i) => Some(OriginateIntent::clone(i)),
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<Event> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn stores(&self) -> Vec<StoreUpdate> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Store(u) => Some(u.clone()),
                _ => None,
            })
            .collect()
    }

    fn ended(&self) -> Vec<(CallOutcome, DateTime<Utc>)> {
        self.stores()
            .into_iter()
            .filter_map(|u| match u {
                StoreUpdate::AttemptEnded { outcome, at, .. } => Some((outcome, at)),
                _ => None,
            })
            .collect()
    }

    fn state(&self, agent: &str) -> AgentState {
        self.engine.agent_state(&agent.into()).cloned().unwrap()
    }

    /// Everything observable, as text: two equal strings mean nothing changed.
    fn snapshot(&self) -> String {
        serde_json::to_string(&self.engine.status()).unwrap()
    }
}

fn record(id: u64, n: u32) -> SpoolRecord {
    let national = format!("212555{n:04}");
    let number = PhoneNumber::from_trusted(&format!("+1{national}"), &national).unwrap();
    let created = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap() + Duration::seconds(id as i64);
    SpoolRecord::new(RecordId(id), "c".into(), number, vec![], created)
}

fn pbx_down() -> CallEvent {
    CallEvent::OriginateRefused {
        cause: RefusalCause::Pbx {
            fault: PbxFault::ShuttingDown,
            detail: "Asterisk is shutting down".into(),
        },
    }
}

// ----- typed rejections, commands answered at once -----

#[test]
fn rejected_command_answers_why_and_queues_nothing() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.login("alice");
    let before = b.snapshot();
    let outputs_before = b.out.len();
    let r = b.engine.apply_command(
        b.now,
        Command::Dispose {
            agent: None,
            record: RecordId(77),
            disposition: Disposition::Done,
        },
    );
    assert_eq!(r, Err(RejectReason::UnknownRecord(RecordId(77))));
    assert!(matches!(b.engine.poll_output(), Output::Timeout(_)));
    assert_eq!(b.out.len(), outputs_before);
    assert_eq!(b.snapshot(), before);
    assert_eq!(
        r.unwrap_err().to_string(),
        "record 77 is not held by the engine (it must be offered by the store first)"
    );
}

#[test]
fn rejected_disposition_leaves_the_record_where_it_was() {
    // Issue 10: a refused disposition took the record out of the hopper.
    let mut c = Campaign::new("c", "UTC");
    c.dial_mode = DialMode::Preview;
    let mut b = Bench::new(c, vec![record(1, 1), record(2, 2)]);
    let before = b.snapshot();
    let r = b.command(Command::Dispose {
        agent: None,
        record: RecordId(2),
        disposition: Disposition::Respool(Respool {
            priority: Some(1),
            ..Respool::default()
        }),
    });
    assert_eq!(
        r,
        Err(RejectReason::Disposition(
            DispositionError::ReservedPriority(1)
        ))
    );
    assert_eq!(b.snapshot(), before, "the hopper still holds record 2");
}

#[test]
fn rejected_preview_dial_changes_nothing() {
    // Issue 10: a refused preview dial ended the preview and moved the record.
    let mut c = Campaign::new("c", "UTC");
    c.dial_mode = DialMode::Preview;
    let mut b = Bench::new(c, vec![record(1, 1)]);
    b.login("alice");
    b.feed(InputKind::Command(Box::new(Command::BlacklistAdd(
        BlacklistEntry {
            number: "+12125550001".into(),
            scope: BlacklistScope::All,
            expires_at: None,
            direction: Direction::Outbound,
        },
    ))));
    let before = b.snapshot();
    let r = b.command(Command::PreviewDial {
        agent: "alice".into(),
        record: RecordId(1),
    });
    assert!(
        matches!(
            &r,
            Err(RejectReason::NotEligible {
                reason: SkipReason::Blacklisted { .. },
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(b.snapshot(), before);
    assert!(b.originates().is_empty());
}

#[test]
fn respool_to_a_number_live_on_another_record_is_refused() {
    // Issue 10: the engine's respool gave record 2 the number of record 1, still live.
    let mut c = Campaign::new("c", "UTC");
    c.dial_mode = DialMode::Preview;
    let mut b = Bench::new(c, vec![record(1, 1), record(2, 2)]);
    let r = b.command(Command::Dispose {
        agent: None,
        record: RecordId(2),
        disposition: Disposition::Respool(Respool {
            numbers: Some(vec![PhoneNumber::parse("212 555 0001", "US").unwrap()]),
            ..Respool::default()
        }),
    });
    assert_eq!(
        r,
        Err(RejectReason::NumberLiveOnAnotherRecord {
            number: "+12125550001".into(),
            record: RecordId(2),
            other: RecordId(1),
        })
    );
    assert!(b
        .stores()
        .iter()
        .all(|u| !matches!(u, StoreUpdate::Record(_))));
}

#[test]
fn schedule_for_a_range_that_has_passed_is_refused() {
    // Issue 10: an inverted or past range was accepted through a disposition.
    let mut c = Campaign::new("c", "America/Montevideo");
    c.dial_mode = DialMode::Preview;
    let mut b = Bench::new(c, vec![record(1, 1)]);
    let d = |s: (u32, u32)| Disposition::Schedule {
        schedule: Schedule {
            id: ScheduleId(1),
            when: ScheduleWhen::Range {
                start_date: NaiveDate::from_ymd_opt(2026, 5, s.0).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2026, 5, s.1).unwrap(),
                start_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end_time: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            },
            agent: None,
            number: None,
        },
        campaign: None,
        contact_name: None,
    };
    for (range, what) in [((3, 4), "past"), ((9, 4), "inverted")] {
        let r = b.command(Command::Dispose {
            agent: None,
            record: RecordId(1),
            disposition: d(range),
        });
        assert!(
            matches!(r, Err(RejectReason::InvalidSchedule(_))),
            "{what}: {r:?}"
        );
    }
}

#[test]
fn blacklist_removal_is_persisted() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![]);
    b.command(Command::BlacklistRemove {
        number: "+12125550001".into(),
        scope: BlacklistScope::All,
    })
    .unwrap();
    assert!(b.stores().contains(&StoreUpdate::BlacklistRemoved {
        number: "+12125550001".into(),
        scope: BlacklistScope::All,
    }));
}

#[test]
fn forgotten_record_leaves_the_hopper_and_one_in_flight_is_refused() {
    let mut c = Campaign::new("c", "UTC");
    c.dial_mode = DialMode::Preview;
    let mut b = Bench::new(c, vec![record(1, 1), record(2, 2)]);
    b.command(Command::Forget {
        record: RecordId(2),
    })
    .unwrap();
    assert_eq!(b.engine.status().campaigns[0].hopper, 1);
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.login("alice");
    assert!(b.engine.record_in_flight(&RecordId(1)));
    assert_eq!(
        b.command(Command::Forget {
            record: RecordId(1)
        }),
        Err(RejectReason::RecordInFlight(RecordId(1)))
    );
}

// ----- telephone-system faults -----

#[test]
fn pbx_refusal_charges_no_attempt() {
    let rec = record(1, 1);
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![rec.clone()]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.call(call, pbx_down());
    assert_eq!(b.ended(), vec![(CallOutcome::NotPlaced, b.now)]);
    let after = &b.spool.records[&RecordId(1)];
    assert_eq!(after.attempts, 0);
    assert_eq!(after.numbers[0].attempts, 0);
    assert_eq!(after.history, rec.history);
    assert_eq!(after.next_eligible_at, None);
    assert_eq!(after.status, RecordStatus::Pending);
    assert_eq!(b.state("alice"), AgentState::Ready);
}

#[test]
fn pbx_shutting_down_pauses_dialing_until_it_is_back() {
    let records = (1..=4).map(|i| record(i, i as u32)).collect();
    let mut b = Bench::new(Campaign::new("c", "UTC"), records);
    b.login("alice");
    b.login("bob");
    let calls: Vec<CallId> = b.originates().iter().map(|o| o.call).collect();
    assert_eq!(calls.len(), 2);
    for &call in &calls {
        b.call(call, pbx_down());
    }
    assert_eq!(b.originates().len(), 2, "no dial while the PBX is down");
    assert!(b.events().iter().any(
        |e| matches!(e, Event::TelephonyDown { reason, .. } if reason.contains("shutting down"))
    ));
    let status = b.engine.status();
    assert!(matches!(status.telephony, TelephonyStatus::Down { .. }));
    assert!(matches!(
        status.campaigns[0].dialing_paused,
        Some(DialingPaused::TelephonyDown { .. })
    ));
    b.advance(5);
    assert_eq!(b.originates().len(), 2);
    b.feed(InputKind::Telephony(TelephonyHealth::Up));
    let dials = b.originates();
    assert_eq!(dials.len(), 4, "dialing resumes when the PBX is back");
    assert_eq!(
        (dials[2].record.clone(), dials[3].record.clone()),
        (RecordId(1), RecordId(2)),
        "the refused records are dialed first again, uncharged"
    );
    for r in [1, 2] {
        assert_eq!(b.spool.records[&RecordId(r)].attempts, 1);
    }
}

#[test]
fn dialing_retries_on_its_own_after_a_pbx_refusal() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.call(call, pbx_down());
    b.advance(29);
    assert_eq!(b.originates().len(), 1);
    b.advance(1);
    assert_eq!(b.originates().len(), 2, "one more try after pbx_retry_s");
}

#[test]
fn telephony_down_places_no_originate() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.feed(InputKind::Telephony(TelephonyHealth::Down {
        reason: "connection refused".into(),
    }));
    b.login("alice");
    assert!(b.originates().is_empty());
    b.feed(InputKind::Telephony(TelephonyHealth::Up));
    assert_eq!(b.originates().len(), 1);
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::TelephonyUp { .. })));
}

#[test]
fn local_refusal_charges_nothing_but_holds_the_record_back() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1), record(2, 2)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.call(
        call,
        CallEvent::OriginateRefused {
            cause: RefusalCause::Local {
                detail: "line limit of 3 reached".into(),
            },
        },
    );
    let r1 = &b.spool.records[&RecordId(1)];
    assert_eq!(r1.attempts, 0);
    assert_eq!(r1.next_eligible_at, Some(b.now + Duration::seconds(300)));
    let dials = b.originates();
    assert_eq!(dials.len(), 2);
    assert_eq!(
        dials[1].record,
        RecordId(2),
        "the held record waits its turn"
    );
}

#[test]
fn callee_refusal_is_charged_like_a_failed_attempt() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.call(
        call,
        CallEvent::OriginateRefused {
            cause: RefusalCause::Callee {
                class: FailureClass::Congestion,
                detail: "all circuits busy".into(),
            },
        },
    );
    assert_eq!(
        b.ended()[0].0,
        CallOutcome::Failed {
            class: FailureClass::Congestion
        }
    );
    assert_eq!(b.spool.records[&RecordId(1)].attempts, 1);
}

// ----- agents that cannot stall -----

#[test]
fn ready_before_hangup_does_not_stall_the_agent() {
    // Asterisk reports the member "not in use" before the caller's Hangup.
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1), record(2, 2)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    b.advance(20);
    b.agent("alice", AgentEvent::Ready);
    assert_eq!(b.state("alice"), AgentState::OnCall { call });
    b.hang_up(call);
    let dials = b.originates();
    assert_eq!(dials.len(), 2, "the campaign keeps dialing");
    assert_eq!(
        b.state("alice"),
        AgentState::Ready,
        "no wrap-up to wait for"
    );
}

#[test]
fn ready_after_hangup_still_ends_wrap_up() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1), record(2, 2)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    b.advance(20);
    b.hang_up(call);
    assert_eq!(b.state("alice"), AgentState::WrapUp { until: None });
    b.agent("alice", AgentEvent::Ready);
    assert_eq!(b.originates().len(), 2);
}

#[test]
fn timed_wrap_up_ends_on_its_own() {
    let mut c = Campaign::new("c", "UTC");
    c.after_call = AfterCall::WrapUp { seconds: 15 };
    let mut b = Bench::new(c, vec![record(1, 1), record(2, 2)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    b.advance(20);
    b.hang_up(call);
    let until = b.now + Duration::seconds(15);
    assert_eq!(b.state("alice"), AgentState::WrapUp { until: Some(until) });
    assert!(matches!(b.engine.poll_output(), Output::Timeout(Some(t)) if t == until));
    b.advance(14);
    assert_eq!(b.originates().len(), 1);
    b.advance(1);
    assert_eq!(b.originates().len(), 2, "ready on its own after 15 s");
}

#[test]
fn pause_after_call_survives_an_early_ready() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1), record(2, 2)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    b.agent(
        "alice",
        AgentEvent::PauseAfterCall {
            reason: "coffee".into(),
        },
    );
    b.agent("alice", AgentEvent::Ready);
    b.hang_up(call);
    assert_eq!(
        b.state("alice"),
        AgentState::Paused {
            reason: "coffee".into()
        }
    );
    assert_eq!(b.originates().len(), 1);
}

/// Remembers the wrap-ups a pacer is told about.
struct Recorder {
    wrap_ups: Arc<Mutex<Vec<f64>>>,
}

impl Pacer for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn observe(&mut self, _now: DateTime<Utc>, event: &PacingEvent) {
        if let PacingEvent::WrapUpEnded { wrap_s } = event {
            self.wrap_ups.lock().unwrap().push(*wrap_s);
        }
    }
    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        s.agents_free
    }
}

#[test]
fn wrap_up_estimates_go_to_the_agent_own_campaign() {
    // Issue 10: they went to the first campaign of the engine, not the agent's.
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    let mut other = Campaign::new("a-first", "UTC");
    other.calling_hours = CallingHours::always();
    b.feed(InputKind::Campaign(Box::new(other)));
    let mine = Arc::new(Mutex::new(Vec::new()));
    let theirs = Arc::new(Mutex::new(Vec::new()));
    b.engine.set_pacer(
        &"c".into(),
        Box::new(Recorder {
            wrap_ups: mine.clone(),
        }),
    );
    b.engine.set_pacer(
        &"a-first".into(),
        Box::new(Recorder {
            wrap_ups: theirs.clone(),
        }),
    );
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    b.hang_up(call);
    b.advance(7);
    b.agent("alice", AgentEvent::Ready);
    assert_eq!(*mine.lock().unwrap(), vec![7.0]);
    assert!(theirs.lock().unwrap().is_empty());
}

// ----- talk time from the PBX -----

#[test]
fn call_ending_during_an_event_gap_keeps_its_real_talk_time() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    let real_end = b.now + Duration::seconds(5);
    b.advance(45);
    b.call(
        call,
        CallEvent::HungUp {
            failure: None,
            ended_at: Some(real_end),
        },
    );
    assert_eq!(
        b.ended(),
        vec![(CallOutcome::ShortCall { talk_s: 5 }, real_end)]
    );
    assert_eq!(
        b.spool.records[&RecordId(1)].status,
        RecordStatus::Pending,
        "a short call is retried, not completed"
    );
}

#[test]
fn lost_answered_call_is_unknown_not_connected() {
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![record(1, 1)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.talk(call, "alice");
    b.advance(45);
    b.call(call, CallEvent::Lost);
    assert_eq!(b.ended(), vec![(CallOutcome::Unknown, b.now)]);
    let rec = &b.spool.records[&RecordId(1)];
    assert_eq!(rec.status, RecordStatus::Pending);
    assert_eq!(rec.next_eligible_at, Some(b.now + Duration::seconds(3600)));
}

// ----- dial strings -----

#[test]
fn dial_string_is_one_shape_whatever_the_base_file_punctuation() {
    let mut c = Campaign::new("c", "UTC");
    c.routing.dial_format = DialFormat::E164;
    let raw = ["+1 212 555 6004", "1 212 555 6005", "(212) 555-6001"];
    let records = raw
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = PhoneNumber::parse(r, "US").unwrap();
            SpoolRecord::new(RecordId(i as u64 + 1), "c".into(), n, vec![], created())
        })
        .collect();
    let mut b = Bench::new(c, records);
    for a in ["a", "b", "c"] {
        b.login(a);
    }
    let mut dialed: Vec<String> = b.originates().into_iter().map(|o| o.dial_string).collect();
    dialed.sort();
    assert_eq!(dialed, ["+12125556001", "+12125556004", "+12125556005"]);
}

// ----- status snapshot -----

#[test]
fn status_snapshot_lists_agents_calls_and_the_abandonment_position() {
    let mut c = Campaign::new("c", "UTC");
    c.dial_mode = DialMode::Power { ratio: 1.0 };
    let mut b = Bench::new(c, vec![record(1, 1), record(2, 2)]);
    b.login("alice");
    let call = b.originates()[0].call;
    b.call(
        call,
        CallEvent::Answered {
            kind: AnswerKind::Human,
        },
    );
    let s = b.engine.status();
    assert_eq!(s.agents.len(), 1);
    assert_eq!(s.agents[0].state, AgentState::Ready);
    assert_eq!(s.agents[0].campaign, Some("c".into()));
    assert_eq!(s.calls.len(), 1);
    assert_eq!(s.calls[0].state, CallState::Waiting);
    assert_eq!(s.calls[0].number, "+12125550001");
    let c = &s.campaigns[0];
    assert_eq!((c.calls_in_flight, c.waiting, c.hopper), (1, 1, 1));
    assert_eq!(c.abandonment.live_answers, 1);
    assert!((c.abandonment.remaining_budget - 0.03).abs() < 1e-9);
    assert_eq!(
        c.abandonment.period_start,
        NaiveDate::from_ymd_opt(2026, 6, 1)
    );
    assert!(c.dialing_paused.is_none());
    assert_eq!(b.engine.campaign_ids().count(), 1);
    serde_json::to_string(&s).unwrap();
}

fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
}

#[test]
fn expired_range_callback_no_longer_strands_its_record() {
    // Issue 10: skipped as outside its window, pushed a day, skipped again, forever.
    let mut rec = record(1, 1);
    rec.schedule = Some(Schedule {
        id: ScheduleId(9),
        when: ScheduleWhen::Range {
            start_date: NaiveDate::from_ymd_opt(2026, 5, 3).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 5, 4).unwrap(),
            start_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end_time: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        },
        agent: None,
        number: None,
    });
    let mut b = Bench::new(Campaign::new("c", "UTC"), vec![rec]);
    b.login("alice");
    assert_eq!(b.originates().len(), 1, "dialed like any record");
    assert_eq!(b.spool.records[&RecordId(1)].schedule, None);
}
