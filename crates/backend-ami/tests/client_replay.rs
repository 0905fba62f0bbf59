//! The tokio client against recorded Asterisk sessions: logins, commands, lists, slow consumers.

use std::time::Duration;

use backend_ami::client::{
    ActionError, AmiClient, AuthMode, ClientConfig, ClientError, ClientEvent, Credentials,
    ReconnectPolicy,
};
use backend_ami::codec::Action;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::support::{ReplayServer, Script};

/// Upper bound used only so a broken test fails instead of hanging.
pub use crate::support::HANG_GUARD;

pub fn config(addr: &str, user: &str, secret: &str, auth: AuthMode) -> ClientConfig {
    let mut c = ClientConfig::new(addr, Credentials::new(user, secret));
    c.auth = auth;
    // The recordings were made without keep-alives; a Ping would have no recorded reply.
    c.keepalive_interval = None;
    c.reconnect = ReconnectPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_attempts: Some(5),
        rng_seed: 42,
    };
    c
}

/// Connects a client to a replay server with the test configuration.
pub async fn connect(
    server: &ReplayServer,
    user: &str,
    secret: &str,
    auth: AuthMode,
) -> Result<(AmiClient, mpsc::Receiver<ClientEvent>), ClientError> {
    AmiClient::connect(config(&server.addr, user, secret, auth)).await
}

pub async fn next_event(rx: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    crate::support::recv(rx).await
}

#[tokio::test]
async fn plain_login_then_ping_gets_pong() {
    let server = ReplayServer::start(vec![Script::replay("login_plain")]).await;
    let (client, mut events) = connect(&server, "dialer", "dialersecret", AuthMode::Plain)
        .await
        .expect("login accepted");
    assert!(
        matches!(next_event(&mut events).await, ClientEvent::Connected { generation: 1, banner } if banner.version == "11.0.0")
    );
    let pong = client.send(Action::new("Ping")).await.expect("pong");
    assert_eq!(pong.get("Ping"), Some("Pong"));
    client.close().await;
    let log = server.log(0);
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
    let login = &log.actions[0];
    assert_eq!(login.get("Username"), Some("dialer"));
    assert_eq!(login.get("Secret"), Some("dialersecret"));
    // The event subscription mask rides on the Login.
    assert_eq!(login.get("Events"), Some("call,agent,user"));
}

#[tokio::test]
async fn md5_login_sends_the_key_asterisk_accepted_and_never_the_secret() {
    let server = ReplayServer::start(vec![Script::replay("login_md5")]).await;
    let (client, _events) = connect(&server, "dialer", "dialersecret", AuthMode::Md5Required)
        .await
        .expect("login accepted");
    client.close().await;
    // Logoff is the last recorded exchange; wait until it was received.
    timeout(HANG_GUARD, async {
        while server.log(0).actions.len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let log = server.log(0);
    assert!(log.mismatches.is_empty(), "{:?}", log.mismatches);
    assert_eq!(
        log.actions[1].get("Key"),
        Some("0979a79693c660b3605a95133b7dee33")
    );
    let raw = String::from_utf8_lossy(&log.received);
    assert!(
        !raw.contains("dialersecret"),
        "secret must not cross the wire: {raw}"
    );
}

#[tokio::test]
async fn failed_plain_login_is_a_typed_authentication_error() {
    let server = ReplayServer::start(vec![Script::replay("login_failed")]).await;
    let err = connect(&server, "dialer", "wrongsecret", AuthMode::Plain)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::AuthenticationFailed { username, message }
        if username == "dialer" && message == "Authentication failed"),
        "{err:?}"
    );
    assert!(err.is_fatal());
    assert!(!format!("{err} {err:?}").contains("wrongsecret"));
}

#[tokio::test]
async fn failed_md5_login_is_a_typed_authentication_error() {
    let server = ReplayServer::start(vec![Script::replay("login_failed_md5")]).await;
    let err = connect(&server, "dialer", "wrongsecret", AuthMode::Md5Required)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::AuthenticationFailed { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn required_md5_is_not_downgraded_when_the_challenge_is_refused() {
    // login_plain has no Challenge exchange: the server answers it with an error.
    let server = ReplayServer::start(vec![Script::replay("login_plain")]).await;
    let err = connect(&server, "dialer", "dialersecret", AuthMode::Md5Required)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Md5Unavailable { .. }), "{err:?}");
    let raw = String::from_utf8_lossy(&server.log(0).received).into_owned();
    assert!(!raw.contains("dialersecret"), "{raw}");
}

#[tokio::test]
async fn command_output_lines_are_returned_in_order_including_blank_ones() {
    let server = ReplayServer::start(vec![Script::replay("command_ok")]).await;
    let (client, _events) = connect(&server, "observer", "observersecret", AuthMode::Plain)
        .await
        .unwrap();
    let version = client.command("core show version").await.unwrap();
    assert!(version.succeeded);
    assert_eq!(version.lines.len(), 1);
    assert!(version.lines[0].starts_with("Asterisk 22.10.1"));
    let queue = client.command("queue show sales").await.unwrap();
    assert_eq!(queue.lines.len(), 7);
    assert!(queue.lines[2].contains("Agent One"));
    assert_eq!(queue.lines[6], "");
    let unknown = client.command("no such command here").await.unwrap();
    assert!(!unknown.succeeded);
    assert!(unknown.lines[0].starts_with("No such command"));
    client.close().await;
}

#[tokio::test]
async fn command_without_permission_is_refused_with_its_action_id() {
    let server = ReplayServer::start(vec![Script::replay("command_dialer_denied")]).await;
    let (client, _events) = connect(&server, "dialer", "dialersecret", AuthMode::Plain)
        .await
        .unwrap();
    let err = client.command("core show version").await.unwrap_err();
    assert!(
        matches!(&err, ActionError::Refused { action, message, .. }
        if action == "Command" && message == "Permission denied"),
        "{err:?}"
    );
    assert!(err.to_string().contains(err.action_id()));
    assert!(!err.fate_unknown());
    client.close().await;
}

#[tokio::test]
async fn queue_status_summary_and_channel_lists_are_collected_until_complete() {
    let server = ReplayServer::start(vec![Script::replay("lists_idle")]).await;
    let (client, _events) = connect(&server, "dialer", "dialersecret", AuthMode::Plain)
        .await
        .unwrap();
    let all = client.send_list(Action::new("QueueStatus")).await.unwrap();
    assert_eq!(all.items.len(), 4);
    assert!(all.items[0].is_event("QueueParams"));
    assert_eq!(
        all.items
            .iter()
            .filter(|m| m.is_event("QueueMember"))
            .count(),
        3
    );
    assert_eq!(all.complete.get("ListItems"), Some("4"));
    let sales = client
        .send_list(Action::new("QueueStatus").header("Queue", "sales"))
        .await
        .unwrap();
    assert_eq!(sales.items.len(), 4);
    let summary = client.send_list(Action::new("QueueSummary")).await.unwrap();
    assert_eq!(summary.items.len(), 1);
    assert_eq!(summary.items[0].get("Available"), Some("3"));
    let none = client
        .send_list(Action::new("QueueStatus").header("Queue", "nosuchqueue"))
        .await
        .unwrap();
    assert!(none.items.is_empty(), "a missing queue is an empty success");
    let channels = client
        .send_list(Action::new("CoreShowChannels"))
        .await
        .unwrap();
    assert!(channels.items.is_empty());
    assert!(channels.complete.is_event("CoreShowChannelsComplete"));
    client.close().await;
    assert!(server.log(0).unexpected.is_empty());
}

#[tokio::test]
async fn live_channel_list_reports_every_channel_of_a_queue_call() {
    let server = ReplayServer::start(vec![Script::replay("live_lists_during_queue_call")]).await;
    let (client, _events) = connect(&server, "dialer", "dialersecret", AuthMode::Md5Preferred)
        .await
        .unwrap();
    let channels = client
        .send_list(Action::new("CoreShowChannels"))
        .await
        .unwrap();
    assert_eq!(channels.items.len(), 4);
    let status = client.send_list(Action::new("Status")).await.unwrap();
    assert_eq!(status.items.len(), 4);
    client.close().await;
    assert!(server.log(0).mismatches.is_empty());
}

#[tokio::test]
async fn slow_consumer_never_stalls_the_reader_and_is_told_how_many_events_it_lost() {
    let t = crate::support::Transcript::load("orig_busy");
    let server = ReplayServer::start(vec![Script::replay("orig_busy")]).await;
    let mut cfg = config(
        &server.addr,
        "dialer",
        "dialersecret",
        AuthMode::Md5Required,
    );
    cfg.event_queue = 2;
    let (client, mut events) = AmiClient::connect(cfg).await.unwrap();
    // Replay the recorded Originate; its events flood a queue of two while nobody reads it.
    let rec = t.recorded_action("Originate");
    let mut originate = Action::new("Originate");
    for h in rec.headers().iter().filter(|h| {
        !h.name.eq_ignore_ascii_case("Action") && !h.name.eq_ignore_ascii_case("ActionID")
    }) {
        originate = originate.header(h.name.as_str(), h.value.as_str());
    }
    client.send(originate).await.expect("originate queued");
    // The reader kept going: a later action is still answered (by an error: not recorded).
    let err = client.send(Action::new("Ping")).await.unwrap_err();
    assert!(matches!(err, ActionError::Refused { .. }), "{err:?}");
    let mut delivered = 0u64;
    let dropped = loop {
        match next_event(&mut events).await {
            ClientEvent::Lagged { dropped } => break dropped,
            _ => delivered += 1,
        }
    };
    // Connected and FullyBooted filled the queue; every other recorded event was counted.
    assert_eq!(delivered, 2);
    let recorded = std::fs::read_to_string(crate::support::fixture("orig_busy.ami")).unwrap();
    let recorded_events = recorded.matches("\r\nEvent: ").count() as u64;
    assert_eq!(dropped, recorded_events - 1);
    client.close().await;
}
