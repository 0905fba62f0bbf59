//! The API over real HTTP on loopback, against a running dialer with a real SQLite spool
//! file and the simulated telephone system on an accelerated clock: every endpoint's success
//! and error responses, the tokens, and the seeds' typical flow end to end.

mod common;

use common::{number, problem, Harness, Setup, RO, RW};
use dialer_runtime::config::{ApiConfig, Secret};
use serde_json::{json, Value};

fn harness() -> Harness {
    Harness::start(Setup::default())
}

#[test]
fn tokens_none_wrong_and_read_only_on_a_write_are_refused_and_change_nothing() {
    let h = harness();
    let before = h.rw.call("GET", "/api/campaigns/spring", None).unwrap();
    let change = json!({ "max_lines": 3 });

    let r = h
        .client(None)
        .send("PUT", "/api/campaigns/spring", Some(&change))
        .unwrap();
    problem(&r, 401, "missing_token");
    let r = h
        .client(Some("not-the-token-0123456789"))
        .send("PUT", "/api/campaigns/spring", Some(&change))
        .unwrap();
    problem(&r, 401, "bad_token");
    // A prefix of the real token is still wrong.
    let r = h
        .client(Some(&RW[..RW.len() - 1]))
        .send("GET", "/api/status", None)
        .unwrap();
    problem(&r, 401, "bad_token");
    let r =
        h.ro.send("PUT", "/api/campaigns/spring", Some(&change))
            .unwrap();
    problem(&r, 403, "read_only_token");
    let r =
        h.ro.send(
            "POST",
            "/api/blacklist",
            Some(&json!({ "entries": [{ "number": "+12125551000" }] })),
        )
        .unwrap();
    problem(&r, 403, "read_only_token");

    let after = h.rw.call("GET", "/api/campaigns/spring", None).unwrap();
    assert_eq!(before["settings"], after["settings"], "nothing changed");
    // The read-only token reads.
    assert_eq!(h.ro.send("GET", "/api/status", None).unwrap().status, 200);
    assert_eq!(h.ro.send("GET", "/metrics", None).unwrap().status, 200);
    problem(
        &h.client(None).send("GET", "/metrics", None).unwrap(),
        401,
        "missing_token",
    );
    // The page, health and the OpenAPI document need no token.
    assert_eq!(
        h.client(None).send("GET", "/healthz", None).unwrap().status,
        200
    );
    let page = h.client(None).send("GET", "/", None).unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .as_str()
        .is_some_and(|s| s.contains("Dialer supervisor")));
}

#[test]
fn a_server_refuses_a_remote_address_without_tls_and_a_config_without_tokens() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = harness();
    let mut remote = ApiConfig::new("0.0.0.0:0");
    remote.tokens.push(Secret::from(RW.to_owned()));
    let e = rt
        .block_on(dialer_api::ApiServer::bind(
            &remote,
            h.dialer.clone(),
            h.dir.path().join("spool.db"),
        ))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    let none = ApiConfig::new("127.0.0.1:0");
    let e = rt
        .block_on(dialer_api::ApiServer::bind(
            &none,
            h.dialer.clone(),
            h.dir.path().join("spool.db"),
        ))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("read-write token"), "{e}");
    let mut env = ApiConfig::new("127.0.0.1:0");
    env.token_env = Some("DIALER_API_TEST_UNSET_VARIABLE".into());
    let e = rt
        .block_on(dialer_api::ApiServer::bind(
            &env,
            h.dialer.clone(),
            h.dir.path().join("spool.db"),
        ))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("DIALER_API_TEST_UNSET_VARIABLE"),
        "{e}"
    );
}

#[test]
fn campaigns_list_get_update_start_stop_counters_queue_wait_and_log() {
    let h = harness();
    let list = h.rw.call("GET", "/api/campaigns", None).unwrap();
    assert_eq!(list[0]["settings"]["id"], "spring");
    assert!(list[0]["running"].is_object(), "{list}");

    problem(
        &h.rw.send("GET", "/api/campaigns/autumn", None).unwrap(),
        404,
        "unknown_campaign",
    );

    let updated =
        h.rw.call(
            "PUT",
            "/api/campaigns/spring",
            Some(&json!({ "max_lines": 4 })),
        )
        .unwrap();
    assert_eq!(updated["settings"]["max_lines"], 4);
    assert_eq!(
        updated["settings"]["time_zone"], "America/New_York",
        "the rest is kept"
    );

    let p = problem(
        &h.rw
            .send(
                "PUT",
                "/api/campaigns/spring",
                Some(&json!({ "max_lnes": 4 })),
            )
            .unwrap(),
        400,
        "invalid_campaign",
    );
    assert_eq!(p["field"], "max_lnes");
    let p = problem(
        &h.rw
            .send(
                "PUT",
                "/api/campaigns/spring",
                Some(&json!({ "max_lines": "four" })),
            )
            .unwrap(),
        400,
        "invalid_campaign",
    );
    assert_eq!(p["field"], "max_lines");
    let p = problem(
        &h.rw
            .send(
                "PUT",
                "/api/campaigns/autumn",
                Some(&json!({ "max_lines": 4 })),
            )
            .unwrap(),
        400,
        "invalid_campaign",
    );
    assert!(p["detail"].as_str().unwrap().contains("time_zone"), "{p}");
    problem(
        &h.rw
            .send(
                "PUT",
                "/api/campaigns/spring",
                Some(&json!({ "id": "other" })),
            )
            .unwrap(),
        400,
        "invalid_field",
    );
    // Malformed JSON.
    let r =
        h.rw.send(
            "PUT",
            "/api/campaigns/spring",
            Some(&Value::String("{".into())),
        )
        .unwrap();
    problem(&r, 400, "invalid_body");

    // A new campaign, then stop and start it.
    let created =
        h.rw.call(
            "PUT",
            "/api/campaigns/autumn",
            Some(&json!({ "time_zone": "Europe/Madrid", "default_country": "ES" })),
        )
        .unwrap();
    assert_eq!(created["settings"]["default_country"], "ES");
    assert_eq!(
        h.rw.send("POST", "/api/campaigns/autumn/stop", None)
            .unwrap()
            .status,
        204
    );
    let started =
        h.rw.call("POST", "/api/campaigns/autumn/start", None)
            .unwrap();
    assert!(started["running"].is_object());
    problem(
        &h.rw
            .send("POST", "/api/campaigns/winter/stop", None)
            .unwrap(),
        404,
        "unknown_campaign",
    );
    problem(
        &h.rw
            .send("POST", "/api/campaigns/winter/start", None)
            .unwrap(),
        404,
        "unknown_campaign",
    );

    // Dialing happens; the counters see it.
    let c = h.until("/api/campaigns/spring/counters", "attempts", |v| {
        v["success"].as_u64().unwrap_or(0) + v["noanswer"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(c["total"], 40);
    let qw =
        h.rw.call("GET", "/api/campaigns/spring/queue-wait", None)
            .unwrap();
    assert_eq!(qw["buckets"].as_array().unwrap().len(), 7);
    problem(
        &h.rw
            .send("GET", "/api/campaigns/winter/counters", None)
            .unwrap(),
        404,
        "unknown_campaign",
    );
    problem(
        &h.rw
            .send("GET", "/api/campaigns/winter/queue-wait", None)
            .unwrap(),
        404,
        "unknown_campaign",
    );

    let log =
        h.rw.call(
            "GET",
            "/api/campaigns/spring/log?from=2026-06-01T00:00:00Z&to=2026-06-03T00:00:00Z",
            None,
        )
        .unwrap();
    assert!(!log.as_array().unwrap().is_empty(), "the log has the dials");
    problem(
        &h.rw
            .send(
                "GET",
                "/api/campaigns/spring/log?from=2026-06-03T00:00:00Z&to=2026-06-01T00:00:00Z",
                None,
            )
            .unwrap(),
        400,
        "invalid_field",
    );
    let p = problem(
        &h.rw
            .send(
                "GET",
                "/api/campaigns/spring/log?from=yesterday&to=2026-06-01T00:00:00Z",
                None,
            )
            .unwrap(),
        400,
        "invalid_query",
    );
    assert!(p["detail"].as_str().unwrap().contains("from"), "{p}");
}

#[test]
fn u15_an_upload_that_holds_another_number_of_lines_than_declared_is_imported_and_says_so() {
    let h = Harness::start(Setup {
        records: 0,
        agents: 0,
        ..Setup::default()
    });
    // U15's declared count (`cant`): a file holding fewer record lines than declared (cut
    // short) is imported, and says so.
    let short = format!("spring;{};name=Di;;;\n\n", number(4));
    let up2 =
        h.rw.upload(
            "/api/campaigns/spring/uploads?file_name=base2.txt&lines=3",
            short.as_bytes(),
        )
        .unwrap();
    assert_eq!(up2.status, 201, "{}", up2.body);
    assert_eq!(up2.body["imported"], 1, "{}", up2.body);
    assert_eq!(up2.body["declared_lines"], 3, "{}", up2.body);
    let warning = up2.body["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("held 1 record lines, 2 fewer than the 3 declared"),
        "{}",
        up2.body
    );
    let exact = format!("spring;{};name=Ed;;;\n", number(5));
    let up3 =
        h.rw.upload(
            "/api/campaigns/spring/uploads?file_name=base3.txt&lines=1",
            exact.as_bytes(),
        )
        .unwrap();
    assert_eq!(up3.status, 201, "{}", up3.body);
    assert!(up3.body.get("warning").is_none(), "{}", up3.body);
}

#[test]
fn e2e_seed_flow_upload_respool_callback_blacklist_disposition_remove_schedules() {
    let h = Harness::start(Setup {
        records: 0,
        agents: 2,
        ..Setup::default()
    });
    // 1. Upload a base with rejects (a bad number, a duplicate, a wrong campaign).
    let base = format!(
        "spring;{};name=Ann;;;\nspring;not-a-number;name=Bad;;;\nspring;{};name=Dup;;;\nautumn;{};name=Other;;;\nspring;{};name=Cy;;;\n",
        number(1),
        number(1),
        number(2),
        number(3)
    );
    let up =
        h.rw.upload(
            "/api/campaigns/spring/uploads?file_name=base1.txt&time_zone=America/Chicago",
            base.as_bytes(),
        )
        .unwrap();
    assert_eq!(up.status, 201, "{}", up.body);
    assert_eq!(up.body["state"], "done");
    assert_eq!(up.body["imported"], 2, "{}", up.body);
    assert_eq!(up.body["rejected"], 3, "{}", up.body);
    let lines: Vec<u64> = up.body["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(up.body.get("warning").is_none(), "{}", up.body);
    let id = up.body["id"].as_u64().unwrap();
    let again =
        h.rw.call("GET", &format!("/api/uploads/{id}"), None)
            .unwrap();
    assert_eq!(again["imported"], 2);
    problem(
        &h.rw.send("GET", "/api/uploads/999", None).unwrap(),
        404,
        "unknown_upload",
    );
    let p = problem(
        &h.rw
            .upload(
                "/api/campaigns/spring/uploads?file_name=x.txt&time_zone=Mars/Base",
                b"",
            )
            .unwrap(),
        400,
        "invalid_field",
    );
    assert_eq!(p["field"], "time_zone");
    problem(
        &h.rw
            .upload("/api/campaigns/winter/uploads?file_name=x.txt", b"")
            .unwrap(),
        404,
        "unknown_campaign",
    );

    // 2. Respool a new record; the same number again is a conflict.
    let rec = json!({ "numbers": [number(10)], "data": [["name", "Dee"]] });
    let created =
        h.rw.call("POST", "/api/campaigns/spring/records", Some(&rec))
            .unwrap();
    let dee = created["record"].as_u64().unwrap();
    problem(
        &h.rw
            .send("POST", "/api/campaigns/spring/records", Some(&rec))
            .unwrap(),
        409,
        "duplicate_destination",
    );
    let p = problem(
        &h.rw
            .send(
                "POST",
                "/api/campaigns/spring/records",
                Some(&json!({ "numbers": ["12"] })),
            )
            .unwrap(),
        400,
        "invalid_field",
    );
    assert_eq!(p["field"], "numbers[0]");
    let p = problem(
        &h.rw
            .send(
                "POST",
                "/api/campaigns/spring/records",
                Some(&json!({ "numbers": [number(11)], "colour": 1 })),
            )
            .unwrap(),
        400,
        "invalid_body",
    );
    assert_eq!(p["field"], "colour");
    problem(
        &h.rw
            .send(
                "POST",
                "/api/campaigns/spring/records",
                Some(&json!({ "numbers": [number(11)], "priority": 1 })),
            )
            .unwrap(),
        400,
        "reserved_priority",
    );

    // 3. A callback for the same agent, a day ahead; then remove the callbacks in a range.
    let cb = json!({
        "record": { "numbers": [number(20)] },
        "when": { "kind": "at", "at": "2026-06-02T15:00:00Z" },
        "agent": "agent-1",
    });
    let created =
        h.rw.call("POST", "/api/campaigns/spring/schedules", Some(&cb))
            .unwrap();
    assert!(created["schedule"].is_u64(), "{created}");
    let rec =
        h.rw.call("GET", &format!("/api/records/{}", created["record"]), None)
            .unwrap();
    assert_eq!(rec["record"]["schedule"]["agent"], "agent-1", "{rec}");
    let bad_range = json!({
        "record": { "numbers": [number(21)] },
        "when": { "kind": "range", "start_date": "2026-06-05", "end_date": "2026-06-02", "start_time": "10:00:00", "end_time": "12:00:00" },
    });
    let r =
        h.rw.send("POST", "/api/campaigns/spring/schedules", Some(&bad_range))
            .unwrap();
    assert!(matches!(r.status, 400 | 422), "{}", r.body);
    let path = format!(
        "/api/campaigns/spring/schedules?number={}&from=2026-06-02T00:00:00Z&to=2026-06-03T00:00:00Z",
        number(20)
    );
    let removed = h.rw.call("DELETE", &path, None).unwrap();
    assert_eq!(removed["removed"], 1, "{removed}");
    let rec =
        h.rw.call("GET", &format!("/api/records/{}", created["record"]), None)
            .unwrap();
    assert!(rec["record"]["schedule"].is_null(), "{rec}");

    // 4. Blacklist a number in the spool: it is skipped, with its reason, on the stream.
    let added =
        h.rw.call(
            "POST",
            "/api/blacklist",
            Some(&json!({ "entries": [{ "number": number(3), "campaign": "spring" }] })),
        )
        .unwrap();
    assert_eq!(added["added"], 1);
    let blocked = format!("+1{}", number(3));
    let want = blocked.clone();
    let (_, name, ev) = h.wait_event("?campaign=spring", Some(0), move |name, v| {
        name == "skipped" && v["event"]["reason"]["number"] == want.as_str()
    });
    assert_eq!(name, "skipped");
    assert_eq!(ev["event"]["reason"]["reason"], "blacklisted", "{ev}");

    // 5. A disposition after a call: wait for a linked call, then dispose of its record.
    let (_, _, linked) = h.wait_event("", Some(0), |name, v| {
        name == "progress" && v["event"]["progress"]["state"] == "success"
    });
    let agent = linked["event"]["progress"]["agent"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = linked["event"]["record"].as_u64().unwrap();
    let dispose = json!({ "record": record, "disposition": { "action": "respool_alternative" } });
    let r =
        h.rw.send(
            "POST",
            &format!("/api/agents/{agent}/disposition"),
            Some(&dispose),
        )
        .unwrap();
    // The record has no alternative number: refused by the rule, nothing changed.
    problem(&r, 422, "invalid_disposition");
    let callback = json!({
        "record": record,
        "disposition": { "action": "schedule", "campaign": null, "schedule": {
            "id": 0, "when": { "kind": "at", "at": "2026-06-04T15:00:00Z" }, "agent": agent, "number": null } },
    });
    let r =
        h.rw.send(
            "POST",
            &format!("/api/agents/{agent}/disposition"),
            Some(&callback),
        )
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let rec = h.until(&format!("/api/records/{record}"), "the callback", |v| {
        v["record"]["schedule"].is_object()
    });
    assert_eq!(rec["record"]["schedule"]["agent"], agent.as_str());
    assert!(!rec["attempts"].as_array().unwrap().is_empty(), "{rec}");
    let _ = dee;
}

#[test]
fn spool_tasks_remove_contact_and_records() {
    let h = harness();
    let task = json!({
        "record": { "numbers": [number(50)] },
        "timing": { "kind": "when_free" },
        "kind": "bulk",
    });
    let created =
        h.rw.call("POST", "/api/campaigns/spring/tasks", Some(&task))
            .unwrap();
    assert!(created["task"].is_u64(), "{created}");
    let p = problem(
        &h.rw
            .send("POST", "/api/campaigns/spring/tasks", Some(&json!({ "record": { "numbers": [number(51)] }, "timing": { "kind": "when_free" }, "kind": "someday" })))
            .unwrap(),
        400,
        "invalid_body",
    );
    assert!(p["detail"].as_str().unwrap().contains("someday"), "{p}");

    let removed =
        h.rw.call(
            "DELETE",
            &format!("/api/campaigns/spring/contacts/{}", number(50)),
            None,
        )
        .unwrap();
    assert_eq!(removed["removed"], 1);
    problem(
        &h.rw
            .send(
                "DELETE",
                &format!("/api/campaigns/spring/contacts/{}", number(50)),
                None,
            )
            .unwrap(),
        404,
        "unknown_number",
    );
    problem(
        &h.rw
            .send("DELETE", "/api/campaigns/spring/contacts/abc", None)
            .unwrap(),
        400,
        "invalid_field",
    );
    problem(
        &h.rw.send("GET", "/api/records/999999", None).unwrap(),
        404,
        "unknown_record",
    );
    problem(
        &h.rw.send("GET", "/api/records/abc", None).unwrap(),
        400,
        "invalid_path",
    );
    problem(
        &h.rw
            .send("DELETE", &format!("/api/campaigns/spring/schedules?number={}&from=2026-06-03T00:00:00Z&to=2026-06-02T00:00:00Z", number(1)), None)
            .unwrap(),
        400,
        "invalid_field",
    );
}

#[test]
fn blacklist_bulk_add_expiry_scope_direction_and_delete() {
    let h = harness();
    let body = json!({ "entries": [
        { "number": "+12125559001" },
        { "number": "2125559002", "campaign": "spring", "expires_at": "2026-07-01T00:00:00Z", "direction": "both" },
    ]});
    assert_eq!(
        h.rw.call("POST", "/api/blacklist", Some(&body)).unwrap()["added"],
        2
    );
    let p = problem(
        &h.rw
            .send(
                "POST",
                "/api/blacklist",
                Some(&json!({ "entries": [{ "number": "2125559003" }] })),
            )
            .unwrap(),
        400,
        "invalid_field",
    );
    assert_eq!(p["field"], "entries[0].number");
    problem(
        &h.rw
            .send(
                "POST",
                "/api/blacklist",
                Some(&json!({ "entries": [{ "number": "2125559003", "campaign": "winter" }] })),
            )
            .unwrap(),
        404,
        "unknown_campaign",
    );
    problem(
        &h.rw
            .send("POST", "/api/blacklist", Some(&json!({ "entries": [] })))
            .unwrap(),
        400,
        "invalid_field",
    );
    let p = problem(
        &h.rw
            .send(
                "POST",
                "/api/blacklist",
                Some(
                    &json!({ "entries": [{ "number": "+12125559004", "direction": "sideways" }] }),
                ),
            )
            .unwrap(),
        400,
        "invalid_body",
    );
    assert!(p["detail"].as_str().unwrap().contains("sideways"), "{p}");

    let removed =
        h.rw.call("DELETE", "/api/blacklist/+12125559001", None)
            .unwrap();
    assert_eq!(removed["removed"], 1);
    problem(
        &h.rw
            .send("DELETE", "/api/blacklist/+12125559001", None)
            .unwrap(),
        404,
        "unknown_entry",
    );
    let removed =
        h.rw.call(
            "POST",
            "/api/blacklist/delete",
            Some(&json!({ "items": [{ "number": "2125559002", "campaign": "spring" }] })),
        )
        .unwrap();
    assert_eq!(removed["removed"], 1);
    problem(
        &h.rw
            .send(
                "POST",
                "/api/blacklist/delete",
                Some(&json!({ "items": [] })),
            )
            .unwrap(),
        400,
        "invalid_field",
    );
}

#[test]
fn agents_login_pause_ready_logout_status_preview_and_hangup() {
    // Two simulated agents take the calls; alice logs in through the API.
    let h = Harness::start(Setup {
        agents: 2,
        ..Setup::default()
    });
    let r =
        h.rw.send(
            "POST",
            "/api/agents/alice/login",
            Some(&json!({ "campaigns": ["spring"] })),
        )
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let a = h.rw.call("GET", "/api/agents/alice", None).unwrap();
    assert_ne!(a["state"], "logged_out", "{a}");
    let all = h.rw.call("GET", "/api/agents", None).unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|a| a["agent"] == "alice"),
        "{all}"
    );
    problem(
        &h.rw.send("GET", "/api/agents/bob", None).unwrap(),
        404,
        "unknown_agent",
    );
    problem(
        &h.rw.send("POST", "/api/agents/bob/ready", None).unwrap(),
        404,
        "unknown_agent",
    );
    problem(
        &h.rw
            .send("POST", "/api/agents/alice/login", Some(&json!({})))
            .unwrap(),
        400,
        "invalid_field",
    );
    problem(
        &h.rw
            .send("POST", "/api/agents/alice/pause", Some(&json!({})))
            .unwrap(),
        400,
        "invalid_field",
    );
    problem(
        &h.rw.send("POST", "/api/agents/alice/dance", None).unwrap(),
        404,
        "unknown_action",
    );
    problem(
        &h.rw
            .send(
                "POST",
                "/api/agents/alice/pause",
                Some(&json!({ "reason": "lunch", "for": 3 })),
            )
            .unwrap(),
        400,
        "invalid_body",
    );

    assert_eq!(
        h.rw.send(
            "POST",
            "/api/agents/alice/pause-after-call",
            Some(&json!({ "reason": "lunch" }))
        )
        .unwrap()
        .status,
        204
    );
    h.until("/api/agents/alice", "the pause", |v| v["state"] == "paused");
    assert_eq!(
        h.rw.send("POST", "/api/agents/alice/ready", None)
            .unwrap()
            .status,
        204
    );
    h.until("/api/agents/alice", "ready again", |v| {
        v["state"] != "paused"
    });

    problem(
        &h.rw
            .send(
                "POST",
                "/api/agents/alice/preview/dial",
                Some(&json!({ "record": 1 })),
            )
            .unwrap(),
        409,
        "not_offered",
    );
    problem(
        &h.rw
            .send(
                "POST",
                "/api/agents/alice/preview/peek",
                Some(&json!({ "record": 1 })),
            )
            .unwrap(),
        404,
        "unknown_action",
    );
    problem(
        &h.rw.send("POST", "/api/calls/999999/hangup", None).unwrap(),
        404,
        "unknown_call",
    );

    // Hang up a call a simulated agent is on; the agent filter shows that agent's events.
    let (_, _, ev) = h.wait_event("", Some(0), |name, _| name == "agent_linked");
    let call = ev["event"]["call"].as_u64().unwrap();
    let agent = ev["event"]["agent"].as_str().unwrap().to_owned();
    let mine = h.collect_events(
        &format!("?agent={agent}"),
        Some(0),
        std::time::Duration::from_millis(500),
    );
    assert!(mine.iter().any(|(_, n, _)| n == "agent_linked"));
    assert!(
        mine.iter().all(|(_, _, v)| v["event"]["agent"].is_null() || v["event"]["agent"] == agent.as_str()),
        "{mine:?}"
    );
    let r =
        h.rw.send("POST", &format!("/api/calls/{call}/hangup"), None)
            .unwrap();
    // 404 when the call ended between the event and the hang-up (the simulation runs fast).
    assert!(matches!(r.status, 204 | 404), "{}", r.body);

    assert_eq!(
        h.rw.send("POST", "/api/agents/alice/logout", None)
            .unwrap()
            .status,
        204
    );
    h.until("/api/agents/alice", "the logout", |v| {
        v["state"] == "logged_out"
    });
}

#[test]
fn events_filter_by_campaign_and_resume_with_last_event_id() {
    let h = harness();
    let (first, _, _) = h.wait_event("?campaign=spring", Some(0), |name, _| name == "dialed");
    let first = first.expect("events carry ids");
    // Resume after it: the next event has a larger id, nothing is repeated.
    let (next, _, _) = h.wait_event("", Some(first), |_, _| true);
    assert_eq!(
        next,
        Some(first + 1),
        "resumes right after the last seen event"
    );
    // A campaign filter for another campaign sees none of spring's events.
    let seen = h.collect_events(
        "?campaign=autumn",
        Some(0),
        std::time::Duration::from_millis(800),
    );
    assert!(
        seen.iter()
            .all(|(_, _, v)| v["event"]["campaign"].is_null()),
        "autumn saw spring's events: {seen:?}"
    );
    let spring = h.collect_events(
        "?campaign=spring",
        Some(0),
        std::time::Duration::from_millis(800),
    );
    assert!(spring.iter().any(|(_, n, _)| n == "dialed"));
    let ids: Vec<u64> = spring.iter().filter_map(|e| e.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    problem(
        &h.rw.send("GET", "/api/events?colour=red", None).unwrap(),
        400,
        "invalid_query",
    );
    let r = h
        .client(Some(RO))
        .send("GET", "/api/events?campaign=spring&last_event_id=x", None)
        .unwrap();
    problem(&r, 400, "invalid_query");
}

#[test]
fn oversized_bodies_unknown_paths_health_metrics() {
    let mut setup = Setup::default();
    setup.config.max_body_bytes = 1024;
    setup.config.max_upload_bytes = 2048;
    let h = Harness::start(setup);
    let big = json!({ "entries": [{ "number": "+12125550000", "campaign": "x".repeat(4000) }] });
    problem(
        &h.rw.send("POST", "/api/blacklist", Some(&big)).unwrap(),
        413,
        "body_too_large",
    );
    let base = "spring;2125550000;;;;\n".repeat(200);
    problem(
        &h.rw
            .upload(
                "/api/campaigns/spring/uploads?file_name=big.txt",
                base.as_bytes(),
            )
            .unwrap(),
        413,
        "upload_too_large",
    );
    problem(
        &h.rw.send("GET", "/api/nothing", None).unwrap(),
        404,
        "not_found",
    );
    // The server still serves.
    let health = h.rw.call("GET", "/healthz", None).unwrap();
    assert_eq!(health["status"], "ok");
    h.until("/api/status", "a dial", |v| {
        v["counters"]["originates"].as_u64().unwrap_or(0) > 0
    });
    let m = h.rw.send("GET", "/metrics", None).unwrap();
    let text = m.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("dialer_handle_seconds"), "{text}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let text =
        h.rw.send("GET", "/metrics", None)
            .unwrap()
            .body
            .as_str()
            .unwrap_or_default()
            .to_owned();
    for name in [
        "dialer_dials_total",
        "dialer_abandonment_cap",
        "dialer_agents",
        "dialer_telephony_up",
        "dialer_lines_in_use",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}

#[test]
fn openapi_document_is_checked_in_and_current() {
    let generated = dialer_api::openapi::document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "crates/dialer-api/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test -p dialer-api openapi"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    for p in [
        "/api/campaigns/{campaign}/uploads",
        "/api/events",
        "/api/agents/{agent}/disposition",
        "/api/blacklist",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
    let h = harness();
    let served = h.client(None).call("GET", "/openapi.json", None).unwrap();
    assert_eq!(served, doc);
}
