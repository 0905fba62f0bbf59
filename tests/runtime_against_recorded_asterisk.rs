//! The runtime end to end: a real SQLite spool file, the engine, and the AMI backend talking
//! over loopback TCP to a server that replays bytes recorded from a real Asterisk. A record
//! dialed through it comes back with the outcome Asterisk reported, in the ledger and the spool.

#[path = "../crates/backend-ami/tests/support/mod.rs"]
mod support;

use backend_ami::client::ReconnectPolicy;
use backend_ami::to_core::AgentNaming;
use backend_ami::tracker::TrackerConfig;
use backend_ami::{AmiBackend, AuthMode, BackendConfig, ClientConfig, Credentials};
use chrono::Utc;
use dialer::runtime::{self, RuntimeConfig};
use dialer_core::{
    AgentEvent, AgentId, CallingHours, Campaign, EngineConfig, InputKind, PhoneNumber,
};
use spool_store::{NewRecord, SpoolStore};
use std::time::Duration;
use support::{ReplayServer, Script, Transcript};

#[tokio::test]
async fn a_busy_callee_recorded_from_asterisk_ends_as_busy_in_the_ledger() {
    let name = "orig_busy";
    let transcript = Transcript::load(name);
    let server = ReplayServer::start(vec![Script::replay(name)]).await;

    let dir = tempfile::tempdir().unwrap();
    let mut store = SpoolStore::open(dir.path().join("spool.db")).unwrap();
    let mut campaign = Campaign::new("spring", "UTC");
    campaign.calling_hours = CallingHours::always();
    campaign.last_dial_before_close_s = 0;
    campaign.routing.channel_prefix = "Local/".into();
    campaign.routing.channel_suffix = "@callees".into();
    campaign.routing.context = "dialer".into();
    campaign.routing.exten = "answered".into();
    let now = Utc::now();
    store.upsert_campaign(&campaign, now).unwrap();
    let number = transcript.dialed_number();
    let record = store
        .respool(
            &NewRecord::new(
                "spring",
                vec![PhoneNumber::from_trusted(&number, &number).unwrap()],
            ),
            now,
        )
        .unwrap();

    let mut client = ClientConfig::new(
        server.addr.clone(),
        Credentials::new("dialer", "dialersecret"),
    );
    client.auth = AuthMode::Plain;
    client.keepalive_interval = None; // the recording has no Ping exchange
    client.reconnect = ReconnectPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_attempts: Some(3),
        rng_seed: 7,
    };
    let mut backend_cfg = BackendConfig::new(client, TrackerConfig::default());
    backend_cfg.reconcile_on_start = false; // the recording starts with the Originate
    let (backend, mut events) = AmiBackend::start(backend_cfg).await.unwrap();

    let (commands_tx, mut commands) = tokio::sync::mpsc::channel(8);
    commands_tx
        .send(InputKind::Agent {
            agent: AgentId::from("alice"),
            event: AgentEvent::LoggedIn {
                campaigns: vec![campaign.id.clone()],
            },
        })
        .await
        .unwrap();
    let cfg = RuntimeConfig {
        campaigns: vec![campaign],
        naming: AgentNaming::MemberName,
        amd: false,
        engine: EngineConfig::default(),
        run_for: Some(Duration::from_secs(3)),
    };
    let summary = runtime::run(cfg, &mut store, &backend, &mut events, &mut commands)
        .await
        .unwrap();
    backend.shutdown().await;

    assert_eq!(summary.originates, 1, "{summary:?}");
    let attempts = store.attempts("spring").unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        attempts[0].outcome.map(|o| o.code()),
        Some("busy"),
        "{attempts:?}"
    );
    let rec = store.record(&record).unwrap();
    assert_eq!(rec.attempts, 1);
    assert!(
        rec.next_eligible_at.is_some_and(|t| t > now),
        "busy retry is delayed: {rec:?}"
    );
    let sent = String::from_utf8_lossy(&server.all_received()).to_string();
    assert_eq!(sent.matches("Action: Originate").count(), 1, "{sent}");
    assert!(sent.contains("ChannelId: dlr-1"), "{sent}");
}
