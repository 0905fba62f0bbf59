//! The seed operations around a dial (issue 11) over real HTTP on loopback: result-code and
//! break catalogues, dispositions with a result code, record fields, breaks and the agent
//! activity summary. Tests are named after the rows of `docs/seed-operations.md`.

mod common;

use common::{problem, Harness, Setup};
use serde_json::json;

fn no_agents() -> Harness {
    Harness::start(Setup {
        agents: 0,
        records: 5,
        ..Setup::default()
    })
}

#[test]
fn u3_api_disposition_with_a_result_code_is_read_back_with_the_record() {
    let h = no_agents();
    let codes = json!({ "result_codes": [
        { "code": "SALE", "label": "Sale", "l1": "positive" },
        { "code": "OLD", "label": "Retired", "active": false },
    ]});
    let r =
        h.rw.send("PUT", "/api/campaigns/spring/result-codes", Some(&codes))
            .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_array().map(Vec::len), Some(2), "{}", r.body);
    problem(
        &h.rw
            .send(
                "PUT",
                "/api/campaigns/spring/result-codes",
                Some(&json!({ "result_codes": [{ "code": "", "label": "x" }] })),
            )
            .unwrap(),
        400,
        "invalid_catalogue",
    );
    problem(
        &h.rw
            .send("GET", "/api/campaigns/autumn/result-codes", None)
            .unwrap(),
        404,
        "unknown_campaign",
    );
    let dispose = |code: &str| {
        json!({
            "record": 1,
            "disposition": { "action": "blacklist", "scope": { "scope": "all" }, "expires_at": null },
            "result_code": code,
            "comment": "asked not to be called",
            "tags": ["dnc"],
        })
    };
    let p = problem(
        &h.rw
            .send(
                "POST",
                "/api/agents/alice/disposition",
                Some(&dispose("NOPE")),
            )
            .unwrap(),
        422,
        "unknown_result_code",
    );
    assert_eq!(p["field"], "result_code");
    problem(
        &h.rw
            .send(
                "POST",
                "/api/agents/alice/disposition",
                Some(&dispose("OLD")),
            )
            .unwrap(),
        422,
        "inactive_result_code",
    );
    let view = h.rw.call("GET", "/api/records/1", None).unwrap();
    assert_eq!(view["dispositions"], json!([]), "nothing recorded: {view}");
    assert_eq!(view["record"]["status"]["state"], "pending", "{view}");

    let r =
        h.rw.send(
            "POST",
            "/api/agents/alice/disposition",
            Some(&dispose("SALE")),
        )
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let view = h.rw.call("GET", "/api/records/1", None).unwrap();
    let d = &view["dispositions"][0];
    assert_eq!(d["agent"], "alice", "{view}");
    assert_eq!(d["result_code"], "SALE");
    assert_eq!(d["result"]["label"], "Sale");
    assert_eq!(d["result"]["l1"], "positive");
    assert_eq!(d["comment"], "asked not to be called");
    assert_eq!(d["tags"], json!(["dnc"]));
    assert_eq!(d["action"], "blacklist");
}

#[test]
fn v8_api_update_fields_changes_the_data_only() {
    let h = no_agents();
    let before = h.rw.call("GET", "/api/records/2", None).unwrap();
    let r =
        h.rw.send(
            "POST",
            "/api/records/2/fields",
            Some(&json!({ "fields": [["n", "new"], ["plan", "gold"]] })),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"], json!([["n", "new"], ["plan", "gold"]]));
    assert_eq!(r.body["attempts"], before["record"]["attempts"]);
    assert_eq!(r.body["numbers"], before["record"]["numbers"]);
    let p = problem(
        &h.rw
            .send(
                "POST",
                "/api/records/2/fields",
                Some(&json!({ "fields": [["my-var", "x"]] })),
            )
            .unwrap(),
        400,
        "invalid_field",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("my-var"),
        "names the field: {p}"
    );
    problem(
        &h.rw
            .send(
                "POST",
                "/api/records/999/fields",
                Some(&json!({ "fields": [["n", "x"]] })),
            )
            .unwrap(),
        404,
        "unknown_record",
    );
    let after = h.rw.call("GET", "/api/records/2", None).unwrap();
    assert_eq!(
        after["record"]["data"],
        json!([["n", "new"], ["plan", "gold"]])
    );
}

#[test]
fn e14_api_breaks_from_the_catalogue_events_and_activity() {
    let h = Harness::start(Setup {
        agents: 1,
        records: 0,
        ..Setup::default()
    });
    let breaks = json!({ "breaks": [
        { "id": "lunch", "name": "Lunch" },
        { "id": "coffee", "name": "Coffee" },
        { "id": "training", "name": "Training", "active": false },
    ]});
    let r =
        h.rw.send("PUT", "/api/campaigns/spring/breaks", Some(&breaks))
            .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    h.until("/api/agents", "agent1 logged in", |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|a| a["agent"] == "agent1"))
    });
    let pause = |b: &str| json!({ "break_id": b });
    let p = problem(
        &h.rw
            .send("POST", "/api/agents/agent1/pause", Some(&pause("siesta")))
            .unwrap(),
        404,
        "unknown_break",
    );
    assert_eq!(p["field"], "break_id");
    problem(
        &h.rw
            .send("POST", "/api/agents/agent1/pause", Some(&pause("training")))
            .unwrap(),
        404,
        "inactive_break",
    );
    let r =
        h.rw.send("POST", "/api/agents/agent1/pause", Some(&pause("lunch")))
            .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    problem(
        &h.rw
            .send("POST", "/api/agents/agent1/pause", Some(&pause("coffee")))
            .unwrap(),
        409,
        "already_in_break",
    );
    // The stream replays the start from its buffer.
    let (_, name, ev) = h.wait_event("?agent=agent1", Some(0), |name, _| name == "break_started");
    assert_eq!(name, "break_started");
    assert_eq!(
        (ev["break_id"].as_str(), ev["name"].as_str()),
        (Some("lunch"), Some("Lunch"))
    );
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(
        h.rw.send("POST", "/api/agents/agent1/ready", None)
            .unwrap()
            .status,
        204
    );
    let (_, _, ended) = h.wait_event("?agent=agent1", Some(0), |name, _| name == "break_ended");
    let duration = ended["duration_s"].as_i64().expect("duration");
    assert!(duration >= 30, "about a simulated minute: {ended}");
    let a =
        h.rw.call(
            "GET",
            "/api/agents/agent1/activity?from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z",
            None,
        )
        .unwrap();
    assert_eq!(a["breaks"][0]["break_id"], "lunch", "{a}");
    assert_eq!(a["breaks"][0]["duration_s"].as_i64(), Some(duration), "{a}");
    assert_eq!(a["sessions"], 1, "{a}");
    problem(
        &h.rw
            .send(
                "GET",
                "/api/agents/agent1/activity?from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z",
                None,
            )
            .unwrap(),
        400,
        "invalid_field",
    );
}

#[test]
fn e2_api_campaign_state_filtered_list_and_c7_callbacks_refused() {
    let h = no_agents();
    let list =
        h.rw.call("GET", "/api/campaigns?state=active", None)
            .unwrap();
    assert_eq!(list[0]["settings"]["id"], "spring", "{list}");
    assert_eq!(list[0]["state"], "active");
    let r =
        h.rw.send(
            "POST",
            "/api/campaigns/spring/state",
            Some(&json!({ "state": "inactive" })),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "inactive");
    assert_eq!(
        h.rw.call("GET", "/api/campaigns?state=active", None)
            .unwrap(),
        json!([])
    );
    let list =
        h.rw.call(
            "GET",
            "/api/campaigns?state=inactive&dial_mode=progressive&name=SPR",
            None,
        )
        .unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    problem(
        &h.rw
            .send("GET", "/api/campaigns?dial_mode=robocall", None)
            .unwrap(),
        400,
        "invalid_filter",
    );
    // C7: an inactive campaign takes no callback.
    let callback = json!({
        "record": { "numbers": ["2125559001"] },
        "when": { "kind": "at", "at": "2026-06-01T16:00:00Z" },
    });
    let p = problem(
        &h.rw
            .send("POST", "/api/campaigns/spring/schedules", Some(&callback))
            .unwrap(),
        409,
        "campaign_not_accepting",
    );
    assert!(p["detail"].as_str().unwrap().contains("inactive"), "{p}");
    problem(
        &h.rw
            .send(
                "POST",
                "/api/campaigns/spring/state",
                Some(&json!({ "state": "finished" })),
            )
            .unwrap(),
        409,
        "campaign_state",
    );
    let r =
        h.rw.send(
            "POST",
            "/api/campaigns/spring/state",
            Some(&json!({ "state": "active" })),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r =
        h.rw.send("POST", "/api/campaigns/spring/schedules", Some(&callback))
            .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn v7_api_add_lead_with_dnc_checks() {
    let h = no_agents();
    let r =
        h.rw.send(
            "POST",
            "/api/blacklist",
            Some(&json!({ "entries": [
                { "number": "+12125559001" },
                { "number": "2125559002", "campaign": "spring" },
            ]})),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let lead = |n: &str| json!({ "numbers": [n] });
    let checks = "/api/campaigns/spring/records?dnc_check=true&campaign_dnc_check=true";
    problem(
        &h.rw
            .send("POST", checks, Some(&lead("2125559001")))
            .unwrap(),
        422,
        "dnc_global",
    );
    problem(
        &h.rw
            .send("POST", checks, Some(&lead("2125559002")))
            .unwrap(),
        422,
        "dnc_campaign",
    );
    let r =
        h.rw.send("POST", checks, Some(&lead("2125559003")))
            .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn e13_e10_api_hold_a_linked_call_and_see_it_in_the_supervision_view() {
    let h = Harness::start(Setup::default());
    let sup = h.until("/api/campaigns/spring/supervision", "a call linked", |v| {
        v["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["state"] == "linked"))
    });
    let call = sup["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["state"] == "linked"))
        .and_then(|c| c["call"].as_u64())
        .expect("a linked call");
    assert_eq!(sup["agent_counts"]["logged_in"], 3, "{sup}");
    // A supervisor reads; it does not hold calls.
    let r =
        h.ro.send("POST", &format!("/api/calls/{call}/hold"), None)
            .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let r =
        h.rw.send("POST", &format!("/api/calls/{call}/hold"), None)
            .unwrap();
    // The call may have ended in between (204 then 404 for the next step is fine).
    if r.status == 204 {
        let v = h.until(
            "/api/campaigns/spring/supervision",
            "the hold reported",
            |v| {
                v["on_hold"] == 1
                    || v["calls"]
                        .as_array()
                        .is_some_and(|c| c.iter().all(|c| c["call"] != call))
            },
        );
        if v["on_hold"] == 1 {
            problem(
                &h.rw
                    .send("POST", &format!("/api/calls/{call}/hold"), None)
                    .unwrap(),
                409,
                "hold_state",
            );
            let r =
                h.rw.send("POST", &format!("/api/calls/{call}/unhold"), None)
                    .unwrap();
            assert!(r.status == 204 || r.status == 404, "{}", r.body);
        }
    } else {
        problem(&r, 404, "unknown_call");
    }
    problem(
        &h.rw.send("POST", "/api/calls/999999/hold", None).unwrap(),
        404,
        "unknown_call",
    );
    problem(
        &h.rw
            .send("GET", "/api/campaigns/autumn/supervision", None)
            .unwrap(),
        404,
        "unknown_campaign",
    );
    problem(
        &h.rw
            .send(
                "GET",
                "/api/campaigns/spring/supervision?service_level_s=9999",
                None,
            )
            .unwrap(),
        400,
        "invalid_field",
    );
}

#[test]
fn c2_c4_c10_api_external_id_position_and_removal() {
    let h = no_agents();
    let add = |n: &str, ext: &str| {
        h.rw.send(
            "POST",
            "/api/campaigns/spring/records",
            Some(&json!({ "numbers": [n], "external_id": ext, "queue_start": "2026-06-01T13:00:00Z" })),
        )
        .unwrap()
    };
    let r = add("+12125559001", "uccx-1");
    assert_eq!(r.status, 201, "{}", r.body);
    problem(&add("+12125559002", "uccx-1"), 409, "duplicate_external_id");
    let v =
        h.rw.call(
            "GET",
            "/api/campaigns/spring/records/by-external-id/uccx-1",
            None,
        )
        .unwrap();
    assert_eq!(v["external_id"], "uccx-1", "{v}");
    let id = v["record"]["id"].as_u64().expect("id");
    // Queued an hour before the others: first in line.
    let p =
        h.rw.call("GET", &format!("/api/records/{id}/position"), None)
            .unwrap();
    assert_eq!(p["ahead"], 0, "{p}");
    problem(
        &h.rw
            .send(
                "GET",
                "/api/campaigns/spring/records/by-external-id/none",
                None,
            )
            .unwrap(),
        404,
        "unknown_external_id",
    );
    let r =
        h.rw.send("DELETE", &format!("/api/records/{id}"), None)
            .unwrap();
    assert_eq!(
        (r.status, r.body["removed"].as_bool()),
        (200, Some(true)),
        "{}",
        r.body
    );
    problem(
        &h.rw
            .send("GET", &format!("/api/records/{id}/position"), None)
            .unwrap(),
        400,
        "invalid_record",
    );
}

#[test]
fn e16_e8_api_callback_rules_new_contact_name_reschedule_and_agent_inactivity_timeout() {
    let h = no_agents();
    let at = |t: &str| {
        json!({
            "record": { "numbers": ["2125559031"], "data": [["customer", "Ana"]] },
            "when": { "kind": "at", "at": t },
        })
    };
    let mut first = at("2026-06-01T16:00:00Z");
    first["new_contact_name"] = json!("Ana María");
    let created =
        h.rw.call("POST", "/api/campaigns/spring/schedules", Some(&first))
            .unwrap();
    let rec =
        h.rw.call("GET", &format!("/api/records/{}", created["record"]), None)
            .unwrap();
    assert_eq!(
        rec["record"]["data"],
        json!([["customer", "Ana María"]]),
        "{rec}"
    );
    // E16d: the same callback again, then another time without and with `reschedule`.
    problem(
        &h.rw
            .send("POST", "/api/campaigns/spring/schedules", Some(&first))
            .unwrap(),
        409,
        "duplicate_schedule",
    );
    let mut later = at("2026-06-01T17:00:00Z");
    problem(
        &h.rw
            .send("POST", "/api/campaigns/spring/schedules", Some(&later))
            .unwrap(),
        409,
        "already_scheduled",
    );
    later["reschedule"] = json!(true);
    let moved =
        h.rw.call("POST", "/api/campaigns/spring/schedules", Some(&later))
            .unwrap();
    assert_eq!(moved["record"], created["record"]);
    // E16e / E16f: a past time and a name that would break a line are refused.
    problem(
        &h.rw
            .send(
                "POST",
                "/api/campaigns/spring/schedules",
                Some(&at("2020-01-01T00:00:00Z")),
            )
            .unwrap(),
        422,
        "invalid_schedule",
    );
    let mut bad_name = at("2026-06-01T18:00:00Z");
    bad_name["reschedule"] = json!(true);
    bad_name["new_contact_name"] = json!("Eve\r\nAction: Originate");
    problem(
        &h.rw
            .send("POST", "/api/campaigns/spring/schedules", Some(&bad_name))
            .unwrap(),
        422,
        "invalid_contact_name",
    );
    let rec =
        h.rw.call("GET", &format!("/api/records/{}", created["record"]), None)
            .unwrap();
    assert_eq!(
        rec["record"]["schedule"]["when"]["at"], "2026-06-01T17:00:00Z",
        "{rec}"
    );
    // E8: a login with an inactivity timeout, pings, and a zero timeout refused.
    problem(
        &h.rw
            .send(
                "POST",
                "/api/agents/ana/login",
                Some(&json!({ "campaigns": ["spring"], "inactivity_timeout_s": 0 })),
            )
            .unwrap(),
        400,
        "invalid_agent_timeout",
    );
    let r =
        h.rw.send(
            "POST",
            "/api/agents/ana/login",
            Some(&json!({ "campaigns": ["spring"], "inactivity_timeout_s": 3600 })),
        )
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let r = h.rw.send("POST", "/api/agents/ana/ping", None).unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    problem(
        &h.rw.send("POST", "/api/agents/ghost/ping", None).unwrap(),
        404,
        "unknown_agent",
    );
}

#[test]
fn u1_v1_manual_dial_over_http_goes_out_for_its_agent_and_bad_requests_change_nothing() {
    let h = Harness::start(Setup {
        agents: 1,
        records: 0,
        ..Setup::default()
    });
    h.until("/api/agents", "agent1 logged in", |v| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|a| a["agent"] == "agent1"))
    });
    let dial = |agent: &str, body: serde_json::Value| {
        h.rw.send(
            "POST",
            &format!("/api/agents/{agent}/manual-dial"),
            Some(&body),
        )
        .unwrap()
    };
    // Refused, nothing stored: an unknown agent, a caller id that could inject a header, a
    // prefix of other characters, a calling code no country uses, two targets at once.
    problem(
        &dial(
            "nobody",
            json!({ "campaign": "spring", "number": "2125550188" }),
        ),
        404,
        "unknown_agent",
    );
    let bad = problem(
        &dial(
            "agent1",
            json!({ "campaign": "spring", "number": "2125550188",
                    "caller_id": "\"x\" <1>\r\nAction: Command" }),
        ),
        400,
        "invalid_call_options",
    );
    assert_eq!(bad["field"], "caller_id", "{bad}");
    let bad = problem(
        &dial(
            "agent1",
            json!({ "campaign": "spring", "number": "2125550188", "dial_prefix": "9;" }),
        ),
        400,
        "invalid_call_options",
    );
    assert_eq!(bad["field"], "dial_prefix", "{bad}");
    let bad = problem(
        &dial(
            "agent1",
            json!({ "campaign": "spring", "number": "2125550188", "phone_code": 999 }),
        ),
        400,
        "invalid_field",
    );
    assert_eq!(bad["field"], "phone_code", "{bad}");
    let bad = problem(
        &dial(
            "agent1",
            json!({ "campaign": "spring", "number": "2125550188", "record": 1 }),
        ),
        400,
        "invalid_field",
    );
    assert_eq!(bad["field"], "number", "{bad}");
    let r = h.rw.call("GET", "/api/records/1", None);
    assert!(r.is_err(), "nothing was stored: {r:?}");
    // A two-step call with its own caller id, by national number and calling code.
    let r = dial(
        "agent1",
        json!({ "campaign": "spring", "number": "(212) 555-0188", "phone_code": 1,
                "caller_id": "\"Desk 7\" <2125550199>", "dial_prefix": "88",
                "agent_first": true, "data": [["name", "Ana"]] }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let record = r.body["record"].as_u64().expect("record id");
    assert!(r.body["task"].as_u64().is_some(), "{}", r.body);
    let log = h.until(
        "/api/campaigns/spring/log?from=2026-06-01T00:00:00Z&to=2026-06-03T00:00:00Z",
        "the manual dial placed",
        |v| {
            v.as_array().is_some_and(|entries| {
                entries
                    .iter()
                    .any(|e| e["record"].as_u64() == Some(record) && e["status"] == "placing")
            })
        },
    );
    let placing = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["record"].as_u64() == Some(record) && e["status"] == "placing")
        .unwrap()
        .clone();
    assert_eq!(placing["phone"], "+12125550188", "{placing}");
    assert_eq!(placing["agent"], "agent1", "{placing}");
}
