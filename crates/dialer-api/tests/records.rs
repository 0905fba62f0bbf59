//! A record's own life and the do-not-call entries over real HTTP on loopback (issue 11):
//! the UCCX status of a record (C1) and `updaterecord` (C3), uContact's blacklist entry fields
//! (U17), and one call of the ledger (E12). Named after the rows of `docs/seed-operations.md`.

mod common;

use common::{problem, Harness, Setup};
use serde_json::json;

fn no_agents() -> Harness {
    Harness::start(Setup {
        agents: 0,
        records: 3,
        ..Setup::default()
    })
}

#[test]
fn c1_c3_api_record_status_deactivate_reactivate_and_refusals() {
    let h = no_agents();
    let r = h.rw.send("GET", "/api/records/1/status", None).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "NEW", "{}", r.body);
    assert_eq!(r.body["record"], 1, "{}", r.body);
    problem(
        &h.rw
            .send("GET", "/api/records/999999/status", None)
            .unwrap(),
        404,
        "unknown_record",
    );
    // Deactivated: INACTIVE with its time; deactivating again is refused.
    let set = |body: serde_json::Value| h.rw.send("POST", "/api/records/1/status", Some(&body));
    let r = set(json!({ "status": "INACTIVE" })).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "INACTIVE", "{}", r.body);
    assert!(r.body["since"].is_string(), "{}", r.body);
    problem(
        &set(json!({ "status": "INACTIVE" })).unwrap(),
        409,
        "record_state",
    );
    // The dialer's own statuses and the final ones are not set from outside.
    for status in ["QUEUED", "DIALINGTARGET", "COMPLETED"] {
        problem(
            &set(json!({ "status": status })).unwrap(),
            422,
            "status_not_settable",
        );
    }
    let p = problem(
        &set(json!({ "status": "SLEEPING" })).unwrap(),
        400,
        "invalid_field",
    );
    assert!(p["detail"].as_str().unwrap().contains("SLEEPING"), "{p}");
    problem(
        &set(json!({ "status": "NEW", "agentid": "agent1" })).unwrap(),
        400,
        "invalid_field",
    );
    // An agent the spool never saw is named.
    let p = problem(
        &set(json!({ "agentid": "nobody" })).unwrap(),
        422,
        "unknown_agent",
    );
    assert!(p["detail"].as_str().unwrap().contains("nobody"), "{p}");
    // Reactivated: pending again.
    let r = set(json!({ "status": "NEW" })).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "NEW", "{}", r.body);
    // Removed: finished, and no change applies any more.
    let r = h.rw.send("DELETE", "/api/records/1", None).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h.rw.send("GET", "/api/records/1/status", None).unwrap();
    assert_eq!(r.body["status"], "REMOVED", "{}", r.body);
    problem(
        &set(json!({ "status": "INACTIVE" })).unwrap(),
        409,
        "record_finished",
    );
    // A read-only token reads, never changes.
    assert_eq!(
        h.ro.send("GET", "/api/records/2/status", None)
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        h.ro.send(
            "POST",
            "/api/records/2/status",
            Some(&json!({ "status": "INACTIVE" }))
        )
        .unwrap()
        .status,
        403
    );
}

#[test]
fn u17_api_blacklist_add_bulk_and_list_keep_name_company_and_username() {
    let h = no_agents();
    let add = |entries: serde_json::Value| {
        h.rw.send(
            "POST",
            "/api/blacklist",
            Some(&json!({ "entries": entries })),
        )
        .unwrap()
    };
    // One bad field refuses the bulk, naming it.
    let p = problem(
        &add(json!([
            { "number": "+12125550140", "name": "Ana" },
            { "number": "+12125550141", "username": "a\u{0}b" },
        ])),
        400,
        "invalid_field",
    );
    assert!(p["detail"].as_str().unwrap().contains("username"), "{p}");
    let r = h.rw.send("GET", "/api/blacklist", None).unwrap();
    assert_eq!(r.body.as_array().map(Vec::len), Some(0), "{}", r.body);
    let r = add(json!([
        { "number": "+12125550140", "name": "Ana", "company": "ACME", "username": "sup1" },
        { "number": "2125550141", "campaign": "spring", "name": "Luis" },
    ]));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = h.rw.send("GET", "/api/blacklist", None).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.body.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{}", r.body);
    assert_eq!(rows[0]["number"], "+12125550140");
    assert_eq!(rows[0]["name"], "Ana");
    assert_eq!(rows[0]["company"], "ACME");
    assert_eq!(rows[0]["username"], "sup1");
    assert_eq!(rows[1]["number"], "+12125550141");
    assert_eq!(rows[1]["name"], "Luis");
    let r =
        h.rw.send("GET", "/api/blacklist?scope=spring", None)
            .unwrap();
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.body);
    problem(
        &h.rw.send("GET", "/api/blacklist?limit=0", None).unwrap(),
        400,
        "invalid_filter",
    );
}

#[test]
fn e12_api_one_call_of_the_ledger_with_its_identity() {
    let h = Harness::start(Setup {
        agents: 1,
        records: 10,
        ..Setup::default()
    });
    let calls = h.until("/api/status", "a call linked", |s| {
        s["engine"]["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["state"] == "linked"))
    });
    let call = calls["engine"]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "linked")
        .unwrap()["call"]
        .as_u64()
        .unwrap();
    let r =
        h.rw.send("GET", &format!("/api/calls/{call}"), None)
            .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["call"], call, "{}", r.body);
    assert_eq!(r.body["unique_id"], format!("sim-{call}"), "{}", r.body);
    assert!(
        r.body["channel"]
            .as_str()
            .is_some_and(|c| c.starts_with("SIM/")),
        "{}",
        r.body
    );
    assert!(r.body["queue"].is_string(), "{}", r.body);
    assert!(r.body["linked_at"].is_string(), "{}", r.body);
    problem(
        &h.rw.send("GET", "/api/calls/999999", None).unwrap(),
        404,
        "unknown_call",
    );
}
