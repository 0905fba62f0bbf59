//! The running dialer end to end: a real SQLite spool file, the runtime (`Dialer`), and
//! Asterisk behind the Telephony seam, over loopback TCP, against a server replaying bytes
//! recorded from a real Asterisk 22.

use crate::support::{ReplayServer, Script, Transcript};
use backend_ami::client::ReconnectPolicy;
use backend_ami::to_core::AgentNaming;
use backend_ami::tracker::TrackerConfig;
use backend_ami::{AmiSettings, AmiTelephony, AuthMode, BackendConfig, ClientConfig, Credentials};
use chrono::Utc;
use dialer_core::{AgentState, CallingHours, Campaign, CampaignId, PhoneNumber, RecordId};
use dialer_runtime::{Clock, Dialer, DialerConfig};
use spool_store::{NewRecord, SpoolStore};
use std::collections::BTreeMap;
use std::time::Duration;

fn campaign(exten: &str) -> Campaign {
    let mut campaign = Campaign::new("spring", "UTC");
    campaign.calling_hours = CallingHours::always();
    campaign.last_dial_before_close_s = 0;
    campaign.routing.channel_prefix = "Local/".into();
    campaign.routing.channel_suffix = "@callees".into();
    campaign.routing.context = "dialer".into();
    campaign.routing.exten = exten.into();
    campaign.routing.queue = "sales".into();
    campaign
}

async fn telephony(server: &ReplayServer) -> AmiTelephony {
    let mut client = ClientConfig::new(
        server.addr.clone(),
        Credentials::new("dialer", "dialersecret"),
    );
    client.auth = AuthMode::Plain;
    client.keepalive_interval = None; // the recordings have no Ping exchange
    client.reconnect = ReconnectPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_attempts: Some(3),
        rng_seed: 7,
    };
    let mut backend = BackendConfig::new(client, TrackerConfig::default());
    backend.reconcile_on_start = false; // the recordings start with the Originate
    let mut queues = BTreeMap::new();
    queues.insert("sales".to_owned(), vec![CampaignId::from("spring")]);
    AmiTelephony::start(AmiSettings {
        name: "replay".into(),
        backend,
        naming: AgentNaming::MemberName,
        queues,
        amd: false,
    })
    .await
    .expect("login to the replay server")
}

/// A spool with the campaign and one record holding the transcript's dialed number.
fn spool(dir: &tempfile::TempDir, t: &Transcript, c: &Campaign) -> (SpoolStore, RecordId) {
    let mut store = SpoolStore::open(dir.path().join("spool.db")).expect("open spool");
    store.upsert_campaign(c, Utc::now()).expect("campaign");
    // The recorded extension is the national form of a number (the campaign dials national).
    let number = t.dialed_number();
    let e164 = format!("+1555{number:0>7}");
    let record = store
        .respool(
            &NewRecord::new(
                "spring",
                vec![PhoneNumber::from_trusted(&e164, &number).expect("digits")],
            ),
            Utc::now(),
        )
        .expect("respool");
    (store, record)
}

/// Waits (bounded) until the status satisfies `done`.
async fn until(dialer: &Dialer, what: &str, done: impl Fn(&dialer_runtime::DialerStatus) -> bool) {
    for _ in 0..200 {
        let s = dialer.status().await.expect("status");
        if done(&s) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let s = dialer.status().await.expect("status");
    panic!("{what}: not reached within 5 s; status {s:#?}");
}

/// One recorded call through the running dialer: a fresh spool file holding the transcript's
/// number, the server replaying it, `agent` logged in; the dialer is shut down once `done`
/// holds.
struct OneCall {
    server: ReplayServer,
    dir: tempfile::TempDir,
    record: RecordId,
    summary: dialer_runtime::RunSummary,
}

async fn one_call(
    name: &str,
    c: &Campaign,
    agent: &str,
    what: &str,
    done: impl Fn(&dialer_runtime::DialerStatus) -> bool,
) -> OneCall {
    let transcript = Transcript::load(name);
    let server = ReplayServer::start(vec![Script::replay(name)]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, record) = spool(&dir, &transcript, c);
    let config = DialerConfig {
        campaigns: vec![c.clone()],
        ..Default::default()
    };
    let (dialer, task) = Dialer::start(
        config,
        store,
        Box::new(telephony(&server).await),
        Clock::real(),
    )
    .await
    .expect("start");
    dialer
        .login(agent.into(), vec![c.id.clone()])
        .await
        .expect("login");
    until(&dialer, what, done).await;
    let summary = dialer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
    task.await.expect("task").expect("run");
    OneCall {
        server,
        dir,
        record,
        summary,
    }
}

#[tokio::test]
async fn a_busy_callee_recorded_from_asterisk_ends_as_busy_in_the_ledger() {
    let run = one_call(
        "orig_busy",
        &campaign("answered"),
        "alice",
        "the busy call ends",
        |s| s.counters.calls_ended == 1 && s.engine.calls.is_empty(),
    )
    .await;
    let (summary, record, dir, server) = (&run.summary, &run.record, &run.dir, &run.server);
    assert_eq!(summary.counters.originates, 1, "{summary:?}");

    let store = SpoolStore::open(dir.path().join("spool.db")).expect("reopen");
    let attempts = store.attempts("spring").expect("attempts");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        attempts[0].outcome.map(|o| o.code()),
        Some("busy"),
        "{attempts:?}"
    );
    let rec = store.record(record).expect("record");
    assert_eq!(rec.attempts, 1);
    assert!(
        rec.next_eligible_at.is_some_and(|t| t > Utc::now()),
        "busy retry is delayed: {rec:?}"
    );
    let sent = String::from_utf8_lossy(&server.all_received()).to_string();
    assert_eq!(sent.matches("Action: Originate").count(), 1, "{sent}");
    assert!(sent.contains("ChannelId: dlr-1"), "{sent}");
}

/// Regression (issue 9): Asterisk sends the member's `QueueMemberStatus` "not in use" before
/// the caller leg's `Hangup`. The runtime used to turn it into `Ready`, the engine ignored it
/// (the agent was still on the call), the hangup then put the agent in wrap-up, and nothing
/// ever ended it: the campaign stopped dialing after the first call of each agent.
#[tokio::test]
async fn agent_completes_before_hangup_and_the_agent_is_ready_again() {
    one_call(
        "orig_queue_agent",
        &campaign("queue"),
        "Agent One",
        "the queue call ends and the agent is ready again, not stuck in wrap-up",
        |s| {
            s.counters.calls_ended == 1
                && s.engine.calls.is_empty()
                && s.engine
                    .agents
                    .iter()
                    .any(|a| a.agent.as_str() == "Agent One" && a.state == AgentState::Ready)
        },
    )
    .await;
}

/// Regression: a call whose channel Asterisk could not create at all (Reason 0, no channel:
/// here an unknown channel technology; on a trunk, a missing or unreachable endpoint) was
/// charged to the callee as `originate_failed`, an attempt towards its cap for the PBX's
/// fault; a typo in the channel template burnt an attempt of every record. It is not charged,
/// the record stays due, and dialing pauses until the PBX is retried.
#[tokio::test]
async fn a_call_whose_channel_asterisk_cannot_create_is_not_charged_and_pauses_dialing() {
    let mut c = campaign("answered");
    c.routing.channel_prefix = "PJSIP/".into();
    c.routing.channel_suffix = String::new();
    let run = one_call(
        "orig_unknown_channel_tech",
        &c,
        "alice",
        "the call is refused and dialing paused",
        |s| {
            s.counters.originates == 1
                && s.engine.calls.is_empty()
                && s.engine.campaigns.iter().any(|c| {
                    matches!(
                        c.dialing_paused,
                        Some(dialer_core::DialingPaused::TelephonyDown { .. })
                    )
                })
        },
    )
    .await;
    let (summary, record, dir, server) = (&run.summary, &run.record, &run.dir, &run.server);
    assert_eq!(summary.counters.originates, 1, "{summary:?}");

    let store = SpoolStore::open(dir.path().join("spool.db")).expect("reopen");
    let attempts = store.attempts("spring").expect("attempts");
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.outcome.map(|o| o.code()))
            .collect::<Vec<_>>(),
        vec![Some("not_placed")],
        "{attempts:?}"
    );
    let rec = store.record(record).expect("record");
    assert_eq!(rec.attempts, 0, "not charged: {rec:?}");
    assert!(
        rec.next_eligible_at.is_none_or(|t| t <= Utc::now()),
        "still due: {rec:?}"
    );
    let sent = String::from_utf8_lossy(&server.all_received()).to_string();
    assert!(sent.contains("Channel: PJSIP/"), "{sent}");
}
