//! `dialer campaign|spool|blacklist|agent|events`: a client of a running dialer's API
//! (`dialer run` with an `[api]` section). The server is `--server` (or `DIALER_SERVER`), the
//! token comes from the environment (`DIALER_TOKEN`), never from the command line where
//! `ps` would show it. Human output by default, the API's JSON with `--json`.

use anyhow::{bail, Context};
use dialer_api::client::{Client, ClientError};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Conn {
    /// The dialer's API, e.g. http://127.0.0.1:8640.
    #[arg(
        long,
        env = "DIALER_SERVER",
        default_value = "http://127.0.0.1:8640",
        global = true
    )]
    pub server: String,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Conn {
    fn client(&self) -> Client {
        let token = std::env::var("DIALER_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        Client::new(&self.server, token)
    }
}

#[derive(clap::Args)]
pub struct CampaignArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: CampaignCmd,
}

#[derive(clap::Subcommand)]
enum CampaignCmd {
    /// Campaigns with their settings and whether they dial.
    List,
    /// One campaign.
    Show {
        campaign: String,
    },
    /// Create or update a campaign from JSON settings (the keys of a [[campaign]] section).
    Set {
        campaign: String,
        /// The settings as JSON, e.g. '{"max_lines": 20}'.
        settings: String,
    },
    Start {
        campaign: String,
    },
    Stop {
        campaign: String,
    },
    /// ECCP-style counters (records and attempts).
    Counters {
        campaign: String,
    },
    /// Queue-wait histogram.
    QueueWait {
        campaign: String,
    },
    /// Campaign log between two moments (RFC 3339).
    Log {
        campaign: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

#[derive(clap::Args)]
pub struct SpoolArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: SpoolCmd,
}

#[derive(clap::Subcommand)]
enum SpoolCmd {
    /// Upload a base file (campaign;number;data;alternatives;priority;agentphone).
    Upload {
        campaign: String,
        file: PathBuf,
        /// File-wide IANA zone of the callees.
        #[arg(long)]
        time_zone: Option<String>,
        /// ISO country for national numbers.
        #[arg(long)]
        country: Option<String>,
    },
    /// An upload's progress and rejects.
    UploadStatus { upload: u64 },
    /// Put a new record into the spool (main number first).
    Respool {
        campaign: String,
        #[arg(required = true)]
        numbers: Vec<String>,
        /// Data fields, name=value.
        #[arg(long = "data")]
        data: Vec<String>,
        #[arg(long)]
        priority: Option<u32>,
    },
    /// Schedule a callback: --at, or --from-date/--to-date with --from-time/--to-time.
    Schedule {
        campaign: String,
        number: String,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        from_date: Option<String>,
        #[arg(long)]
        to_date: Option<String>,
        #[arg(long)]
        from_time: Option<String>,
        #[arg(long)]
        to_time: Option<String>,
        /// Only this agent takes it.
        #[arg(long)]
        agent: Option<String>,
        /// Dial this number instead.
        #[arg(long)]
        new_phone: Option<String>,
    },
    /// Add a dialer task: --kind automatic|bulk|manual, --at for a dated one.
    Task {
        campaign: String,
        number: String,
        #[arg(long, default_value = "bulk")]
        kind: String,
        #[arg(long)]
        at: Option<String>,
    },
    /// Take a number out of the campaign's spool.
    RemoveContact { campaign: String, number: String },
    /// Drop the callbacks of a number within a range.
    RemoveSchedules {
        campaign: String,
        number: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// A record with its attempts.
    Record { record: u64 },
    /// A record's status in UCCX terms (NEW, RETRY, INACTIVE, DIALINGTARGET, QUEUED, ...).
    RecordStatus { record: u64 },
    /// UCCX updaterecord: --status INACTIVE | NEW, or --agent <id> ("" = anyone).
    UpdateRecord {
        record: u64,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        agent: Option<String>,
    },
    /// One call of the ledger (ECCP getcallinfo): times, agents, outcome, unique id,
    /// channel, queue.
    Call { call: u64 },
}

#[derive(clap::Args)]
pub struct BlacklistArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: BlacklistCmd,
}

#[derive(clap::Subcommand)]
enum BlacklistCmd {
    /// Add numbers (all in one transaction).
    Add {
        #[arg(required = true)]
        numbers: Vec<String>,
        /// Only this campaign (default: every campaign; numbers then in E.164).
        #[arg(long)]
        campaign: Option<String>,
        /// When the entries stop blocking (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        /// outbound, inbound or both.
        #[arg(long)]
        direction: Option<String>,
        /// The callee's name (uContact's entry field).
        #[arg(long)]
        name: Option<String>,
        /// The callee's company.
        #[arg(long)]
        company: Option<String>,
        /// Who adds the entry.
        #[arg(long)]
        username: Option<String>,
    },
    /// List entries with their name, company and username.
    List {
        /// Only this number (E.164).
        #[arg(long)]
        number: Option<String>,
        /// Only this campaign's entries (`*`: only those for every campaign).
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        offset: Option<usize>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete numbers.
    Remove {
        #[arg(required = true)]
        numbers: Vec<String>,
        #[arg(long)]
        campaign: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: AgentCmd,
}

#[derive(clap::Subcommand)]
enum AgentCmd {
    List,
    Show {
        agent: String,
    },
    Login {
        agent: String,
        #[arg(long = "campaign", required = true)]
        campaigns: Vec<String>,
        /// Log the agent out after this many seconds without a `ping`.
        #[arg(long = "inactivity-timeout")]
        inactivity_timeout_s: Option<u32>,
    },
    /// The agent's desktop is still there: its session's inactivity timeout starts again.
    Ping {
        agent: String,
    },
    Ready {
        agent: String,
    },
    Pause {
        agent: String,
        #[arg(long)]
        reason: String,
    },
    PauseAfterCall {
        agent: String,
        #[arg(long)]
        reason: String,
    },
    LogoutAfterCall {
        agent: String,
    },
    WrapUp {
        agent: String,
    },
    Logout {
        agent: String,
    },
    /// The agent's disposition of a record, as JSON, e.g. '{"action":"respool_alternative"}'.
    Dispose {
        agent: String,
        #[arg(long)]
        record: u64,
        disposition: String,
    },
    /// A manual dial for the agent (VICIdial external_dial, uContact AgentCall): a number or
    /// a record, with this call's own caller id and dial prefix; `--agent-first` rings the
    /// agent before the callee, `--preview` offers the record before anything is dialed.
    Dial {
        agent: String,
        #[arg(long)]
        campaign: String,
        /// The number to dial (national numbers use --phone-code's country, else the
        /// campaign's).
        #[arg(long, required_unless_present = "record", conflicts_with = "record")]
        number: Option<String>,
        /// Country calling code of --number (1, 44, 598…).
        #[arg(long)]
        phone_code: Option<u16>,
        /// A record to dial instead of a number.
        #[arg(long)]
        record: Option<u64>,
        /// With --record: which of its numbers to dial.
        #[arg(long, requires = "record")]
        alt_number: Option<String>,
        /// Caller id for this call, `"Name" <number>` or a number.
        #[arg(long)]
        caller_id: Option<String>,
        /// Digits in front of this call's dial string instead of the campaign's.
        #[arg(long)]
        dial_prefix: Option<String>,
        #[arg(long)]
        agent_first: bool,
        #[arg(long)]
        preview: bool,
    },
    /// Preview mode: dial or skip the offered record.
    Preview {
        agent: String,
        #[arg(value_parser = ["dial", "skip"])]
        choice: String,
        #[arg(long)]
        record: u64,
    },
    /// Hang up a call.
    Hangup {
        call: u64,
    },
    /// Put the callee of a linked call on hold.
    Hold {
        call: u64,
    },
    /// Take the callee of a held call off hold.
    Unhold {
        call: u64,
    },
}

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long)]
    agent: Option<String>,
    /// Resume after this event id.
    #[arg(long)]
    last_event_id: Option<u64>,
}

/// Percent-encodes a path segment or query value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_json(what: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))
}

fn show(conn: &Conn, r: Result<Value, ClientError>, done: &str) -> anyhow::Result<()> {
    let v = r?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if v.is_null() {
        println!("{done}");
    } else {
        print_human(&v, 0);
    }
    Ok(())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_human(v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                println!("{pad}(none)");
            }
            for item in items {
                match item {
                    Value::Object(m) => println!(
                        "{pad}{}",
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", scalar(v)))
                            .collect::<Vec<_>>()
                            .join("  ")
                    ),
                    other => println!("{pad}{}", scalar(other)),
                }
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                if v.is_object()
                    || (v.is_array()
                        && v.as_array().is_some_and(|a| a.iter().any(Value::is_object)))
                {
                    println!("{pad}{k}:");
                    print_human(v, indent + 2);
                } else {
                    println!("{pad}{k}: {}", scalar(v));
                }
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

pub fn campaign(a: CampaignArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let r = match a.cmd {
        CampaignCmd::List if !a.conn.json => {
            let list = c.call("GET", "/api/campaigns", None)?;
            println!(
                "{:<20} {:<12} {:<9} {:>6} {:>7} {:>7} {:>12}",
                "campaign", "mode", "state", "lines", "agents", "waiting", "abandonment"
            );
            for v in list.as_array().into_iter().flatten() {
                let s = &v["settings"];
                let r = &v["running"];
                let ab = &r["abandonment"];
                let rate = match (ab["abandoned"].as_f64(), ab["live_answers"].as_f64()) {
                    (Some(x), Some(n)) if n > 0.0 => format!(
                        "{:.2}%/{:.1}%",
                        100.0 * x / n,
                        100.0 * ab["cap"].as_f64().unwrap_or(0.0)
                    ),
                    _ => "-".into(),
                };
                println!(
                    "{:<20} {:<12} {:<9} {:>6} {:>7} {:>7} {:>12}",
                    scalar(&s["id"]),
                    scalar(&s["dial_mode"]["mode"]),
                    if r.is_null() {
                        "stopped"
                    } else if r["dialing_paused"].is_null() {
                        "dialing"
                    } else {
                        "paused"
                    },
                    scalar(&r["calls_in_flight"]),
                    scalar(&r["agents"]),
                    scalar(&r["waiting"]),
                    rate
                );
            }
            return Ok(());
        }
        CampaignCmd::List => c.call("GET", "/api/campaigns", None),
        CampaignCmd::Show { campaign } => {
            c.call("GET", &format!("/api/campaigns/{}", enc(&campaign)), None)
        }
        CampaignCmd::Set { campaign, settings } => {
            let body = parse_json("the settings", &settings)?;
            c.call(
                "PUT",
                &format!("/api/campaigns/{}", enc(&campaign)),
                Some(&body),
            )
        }
        CampaignCmd::Start { campaign } => c.call(
            "POST",
            &format!("/api/campaigns/{}/start", enc(&campaign)),
            None,
        ),
        CampaignCmd::Stop { campaign } => c.call(
            "POST",
            &format!("/api/campaigns/{}/stop", enc(&campaign)),
            None,
        ),
        CampaignCmd::Counters { campaign } => c.call(
            "GET",
            &format!("/api/campaigns/{}/counters", enc(&campaign)),
            None,
        ),
        CampaignCmd::QueueWait { campaign } => c.call(
            "GET",
            &format!("/api/campaigns/{}/queue-wait", enc(&campaign)),
            None,
        ),
        CampaignCmd::Log { campaign, from, to } => c.call(
            "GET",
            &format!(
                "/api/campaigns/{}/log?from={}&to={}",
                enc(&campaign),
                enc(&from),
                enc(&to)
            ),
            None,
        ),
    };
    show(&a.conn, r, "done")
}

fn record_body(
    numbers: Vec<String>,
    data: Vec<String>,
    priority: Option<u32>,
) -> anyhow::Result<Value> {
    let mut fields = Vec::new();
    for d in data {
        let Some((k, v)) = d.split_once('=') else {
            bail!("--data {d:?}: write name=value");
        };
        fields.push(json!([k, v]));
    }
    Ok(json!({ "numbers": numbers, "data": fields, "priority": priority }))
}

pub fn spool(a: SpoolArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let r = match a.cmd {
        SpoolCmd::Upload {
            campaign,
            file,
            time_zone,
            country,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "upload.txt".into());
            let mut path = format!(
                "/api/campaigns/{}/uploads?file_name={}",
                enc(&campaign),
                enc(&name)
            );
            if let Some(z) = time_zone {
                path.push_str(&format!("&time_zone={}", enc(&z)));
            }
            if let Some(k) = country {
                path.push_str(&format!("&country={}", enc(&k)));
            }
            let reply = c.upload(&path, &bytes)?;
            if (200..300).contains(&reply.status) {
                Ok(reply.body)
            } else {
                Err(match serde_json::from_value(reply.body.clone()) {
                    Ok(p) => ClientError::Problem(p),
                    Err(_) => ClientError::Unexpected {
                        server: c.server().to_owned(),
                        status: reply.status,
                        detail: reply.body.to_string(),
                    },
                })
            }
        }
        SpoolCmd::UploadStatus { upload } => c.call("GET", &format!("/api/uploads/{upload}"), None),
        SpoolCmd::Respool {
            campaign,
            numbers,
            data,
            priority,
        } => {
            let body = record_body(numbers, data, priority)?;
            c.call(
                "POST",
                &format!("/api/campaigns/{}/records", enc(&campaign)),
                Some(&body),
            )
        }
        SpoolCmd::Schedule {
            campaign,
            number,
            at,
            from_date,
            to_date,
            from_time,
            to_time,
            agent,
            new_phone,
        } => {
            let when = match (at, from_date, to_date, from_time, to_time) {
                (Some(at), None, None, None, None) => json!({ "kind": "at", "at": at }),
                (None, Some(sd), Some(ed), Some(st), Some(et)) => json!({
                    "kind": "range", "start_date": sd, "end_date": ed, "start_time": st, "end_time": et
                }),
                _ => bail!("give --at, or all of --from-date --to-date --from-time --to-time"),
            };
            let body = json!({
                "record": { "numbers": [number] }, "when": when, "agent": agent, "new_phone": new_phone
            });
            c.call(
                "POST",
                &format!("/api/campaigns/{}/schedules", enc(&campaign)),
                Some(&body),
            )
        }
        SpoolCmd::Task {
            campaign,
            number,
            kind,
            at,
        } => {
            let timing = match at {
                Some(at) => json!({ "kind": "at", "at": at }),
                None => json!({ "kind": "when_free" }),
            };
            let body = json!({ "record": { "numbers": [number] }, "timing": timing, "kind": kind });
            c.call(
                "POST",
                &format!("/api/campaigns/{}/tasks", enc(&campaign)),
                Some(&body),
            )
        }
        SpoolCmd::RemoveContact { campaign, number } => c.call(
            "DELETE",
            &format!(
                "/api/campaigns/{}/contacts/{}",
                enc(&campaign),
                enc(&number)
            ),
            None,
        ),
        SpoolCmd::RemoveSchedules {
            campaign,
            number,
            from,
            to,
        } => c.call(
            "DELETE",
            &format!(
                "/api/campaigns/{}/schedules?number={}&from={}&to={}",
                enc(&campaign),
                enc(&number),
                enc(&from),
                enc(&to)
            ),
            None,
        ),
        SpoolCmd::Record { record } => c.call("GET", &format!("/api/records/{record}"), None),
        SpoolCmd::RecordStatus { record } => {
            c.call("GET", &format!("/api/records/{record}/status"), None)
        }
        SpoolCmd::UpdateRecord {
            record,
            status,
            agent,
        } => c.call(
            "POST",
            &format!("/api/records/{record}/status"),
            Some(&json!({ "status": status, "agentid": agent })),
        ),
        SpoolCmd::Call { call } => c.call("GET", &format!("/api/calls/{call}"), None),
    };
    show(&a.conn, r, "done")
}

pub fn blacklist(a: BlacklistArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let r = match a.cmd {
        BlacklistCmd::Add {
            numbers,
            campaign,
            expires,
            direction,
            name,
            company,
            username,
        } => {
            let entries: Vec<Value> = numbers
                .iter()
                .map(|n| {
                    json!({ "number": n, "campaign": campaign, "expires_at": expires,
                        "direction": direction, "name": name, "company": company,
                        "username": username })
                })
                .collect();
            c.call(
                "POST",
                "/api/blacklist",
                Some(&json!({ "entries": entries })),
            )
        }
        BlacklistCmd::List {
            number,
            scope,
            offset,
            limit,
        } => {
            let mut query = Vec::new();
            if let Some(n) = number {
                query.push(format!("number={}", enc(&n)));
            }
            if let Some(s) = scope {
                query.push(format!("scope={}", enc(&s)));
            }
            if let Some(o) = offset {
                query.push(format!("offset={o}"));
            }
            if let Some(l) = limit {
                query.push(format!("limit={l}"));
            }
            c.call("GET", &format!("/api/blacklist?{}", query.join("&")), None)
        }
        BlacklistCmd::Remove { numbers, campaign } => {
            let items: Vec<Value> = numbers
                .iter()
                .map(|n| json!({ "number": n, "campaign": campaign }))
                .collect();
            c.call(
                "POST",
                "/api/blacklist/delete",
                Some(&json!({ "items": items })),
            )
        }
    };
    show(&a.conn, r, "done")
}

pub fn agent(a: AgentArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let act = |agent: &str, action: &str, body: Option<Value>| {
        c.call(
            "POST",
            &format!("/api/agents/{}/{action}", enc(agent)),
            body.as_ref(),
        )
    };
    let r = match a.cmd {
        AgentCmd::List if !a.conn.json => {
            let list = c.call("GET", "/api/agents", None)?;
            println!(
                "{:<16} {:<11} {:<16} {:>8} {:>8}  since",
                "agent", "state", "campaign", "call", "record"
            );
            for v in list.as_array().into_iter().flatten() {
                println!(
                    "{:<16} {:<11} {:<16} {:>8} {:>8}  {}",
                    scalar(&v["agent"]),
                    scalar(&v["state"]),
                    scalar(&v["campaign"]),
                    scalar(&v["call"]),
                    scalar(&v["record"]),
                    scalar(&v["since"])
                );
            }
            return Ok(());
        }
        AgentCmd::List => c.call("GET", "/api/agents", None),
        AgentCmd::Show { agent } => c.call("GET", &format!("/api/agents/{}", enc(&agent)), None),
        AgentCmd::Login {
            agent,
            campaigns,
            inactivity_timeout_s,
        } => act(
            &agent,
            "login",
            Some(json!({ "campaigns": campaigns, "inactivity_timeout_s": inactivity_timeout_s })),
        ),
        AgentCmd::Ping { agent } => act(&agent, "ping", None),
        AgentCmd::Dial {
            agent,
            campaign,
            number,
            phone_code,
            record,
            alt_number,
            caller_id,
            dial_prefix,
            agent_first,
            preview,
        } => act(
            &agent,
            "manual-dial",
            Some(json!({
                "campaign": campaign, "number": number, "phone_code": phone_code,
                "record": record, "alt_number": alt_number, "caller_id": caller_id,
                "dial_prefix": dial_prefix, "agent_first": agent_first, "preview": preview,
            })),
        ),
        AgentCmd::Ready { agent } => act(&agent, "ready", None),
        AgentCmd::Pause { agent, reason } => {
            act(&agent, "pause", Some(json!({ "reason": reason })))
        }
        AgentCmd::PauseAfterCall { agent, reason } => act(
            &agent,
            "pause-after-call",
            Some(json!({ "reason": reason })),
        ),
        AgentCmd::LogoutAfterCall { agent } => act(&agent, "logout-after-call", None),
        AgentCmd::WrapUp { agent } => act(&agent, "wrap-up", None),
        AgentCmd::Logout { agent } => act(&agent, "logout", None),
        AgentCmd::Dispose {
            agent,
            record,
            disposition,
        } => {
            let d = parse_json("the disposition", &disposition)?;
            act(
                &agent,
                "disposition",
                Some(json!({ "record": record, "disposition": d })),
            )
        }
        AgentCmd::Preview {
            agent,
            choice,
            record,
        } => act(
            &agent,
            &format!("preview/{choice}"),
            Some(json!({ "record": record })),
        ),
        AgentCmd::Hangup { call } => c.call("POST", &format!("/api/calls/{call}/hangup"), None),
        AgentCmd::Hold { call } => c.call("POST", &format!("/api/calls/{call}/hold"), None),
        AgentCmd::Unhold { call } => c.call("POST", &format!("/api/calls/{call}/unhold"), None),
    };
    show(&a.conn, r, "done")
}

pub fn events(a: EventsArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let mut q = Vec::new();
    if let Some(x) = &a.campaign {
        q.push(format!("campaign={}", enc(x)));
    }
    if let Some(x) = &a.agent {
        q.push(format!("agent={}", enc(x)));
    }
    let query = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    let json_out = a.conn.json;
    let stdout = std::io::stdout();
    c.events(&query, a.last_event_id, |id, name, data| {
        use std::io::Write;
        let mut out = stdout.lock();
        let written = if json_out {
            let id = id.map(|i| i.to_string()).unwrap_or_else(|| "null".into());
            writeln!(out, "{{\"id\":{id},\"event\":{name:?},\"data\":{data}}}")
        } else {
            let id = id.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
            writeln!(out, "{id:>8} {name:<16} {data}")
        };
        // A closed pipe (`| head`) ends the stream quietly.
        written.and_then(|()| out.flush()).is_ok()
    })?;
    Ok(())
}
