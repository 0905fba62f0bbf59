//! `dialer run`: runs campaigns from a configuration file against Asterisk or the simulated
//! telephone system, with a live summary line, until `--for` elapses or Ctrl-C / SIGTERM
//! (both drain: no new dials, calls in flight finish within the grace period).
//!
//! With no `--config`, the embedded `examples/dialer.toml` runs: one campaign against
//! simulated callees and agents at 60× real time, on a spool file in a temporary directory.

use anyhow::{bail, Context};
use backend_ami::client::ReconnectPolicy;
use backend_ami::to_core::AgentNaming;
use backend_ami::tracker::TrackerConfig;
use backend_ami::{AmiSettings, AmiTelephony, AuthMode, BackendConfig, ClientConfig, Credentials};
use backend_sim::live::SimTelephony;
use backend_sim::{world, Scenario};
use chrono::Utc;
use dialer_core::{AgentState, Campaign, CampaignId};
use dialer_runtime::config::{AgentNamingConfig, FileConfig, SimConfig, TelephonyConfig};
use dialer_runtime::{Clock, Dialer, DialerConfig, DialerStatus, Telephony};
use spool_store::{ImportOptions, SpoolStore};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// The configuration `dialer run` uses when given none.
pub const EMBEDDED_CONFIG: &str = include_str!("../../examples/dialer.toml");

#[derive(clap::Args)]
pub struct RunArgs {
    /// Configuration file (campaigns, spool, telephone system). Default: the embedded
    /// simulated demo (`examples/dialer.toml`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `sim` runs the configured campaigns against simulated callees and agents even when
    /// the file names an Asterisk server.
    #[arg(long, value_parser = ["config", "sim"], default_value = "config")]
    pub backend: String,
    /// Stop (draining) after this long, e.g. `60s`, `10m`, `2h`.
    #[arg(long = "for", value_parser = parse_duration)]
    pub run_for: Option<Duration>,
    /// How long calls in flight may take to finish when stopping.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub grace: Duration,
    /// Spool file (overrides the configuration's `spool`).
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// Simulated clock speed (overrides `[sim] speed`).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Log format on standard error: `text` or `json`.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
    /// No live summary line (it is off anyway when standard error is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `90`, `90s`, `15m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 60s, 10m or 2h"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logs(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

/// What `run` ends with.
pub struct Outcome {
    pub status: DialerStatus,
    pub summary: dialer_runtime::RunSummary,
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    let live_line = !args.quiet && std::io::stderr().is_terminal();
    let outcome = run_dialer(&args, live_line).await?;
    let c = outcome.summary.counters;
    eprintln!();
    println!(
        "stopped: {} originates, {} answered, {} calls ended, {} refused by the telephone system, {} refused locally, {} left in flight",
        c.originates,
        c.answered,
        c.calls_ended,
        c.refused_by_pbx,
        c.refused_locally,
        outcome.summary.calls_left_in_flight
    );
    for camp in &outcome.status.engine.campaigns {
        let a = &camp.abandonment;
        println!(
            "campaign {}: abandonment {} of {} live answers ({:.2}%, cap {:.1}%)",
            camp.campaign,
            a.abandoned,
            a.live_answers,
            rate(a.abandoned, a.live_answers) * 100.0,
            a.cap * 100.0
        );
    }
    Ok(())
}

fn rate(a: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        a as f64 / n as f64
    }
}

/// Runs the dialer as `dialer run` does; returns the final status and summary.
pub async fn run_dialer(args: &RunArgs, live_line: bool) -> anyhow::Result<Outcome> {
    // Registered first, so a Ctrl-C during start-up also ends in a clean stop.
    let mut signals = Signals::new()?;
    let (config, _tmp) = match &args.config {
        Some(path) => (FileConfig::load(path)?, None),
        None => {
            let mut c = FileConfig::parse(EMBEDDED_CONFIG, "examples/dialer.toml (embedded)")?;
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            c.spool = dir.path().join("dialer.db");
            (c, Some(dir))
        }
    };
    let spool_path = args.spool.clone().unwrap_or_else(|| config.spool.clone());
    let mut campaigns = config.campaigns.clone();
    if campaigns.is_empty() {
        bail!("the configuration has no [[campaign]]: nothing to dial");
    }
    let sim = match (&config.telephony, args.backend.as_str()) {
        (TelephonyConfig::Sim(s), _) => Some(s.clone()),
        (TelephonyConfig::Asterisk(_), "sim") => Some(SimConfig::default()),
        (TelephonyConfig::Asterisk(_), _) => None,
    };
    let clock = match &sim {
        Some(s) => Clock::accelerated(
            s.start.unwrap_or_else(Utc::now),
            args.speed.unwrap_or(s.speed),
        ),
        None => Clock::real(),
    };
    let (mut store, reconciled) = SpoolStore::open_at(&spool_path, clock.now())
        .with_context(|| format!("opening the spool {}", spool_path.display()))?;
    if !reconciled.attempts_closed.is_empty() {
        tracing::warn!(
            attempts = reconciled.attempts_closed.len(),
            "attempts left open by the last run were closed by reconciliation"
        );
    }
    let telephony: Box<dyn Telephony> = match (&sim, &config.telephony) {
        (Some(s), _) => {
            let scenario = if std::path::Path::new(&s.scenario).exists() {
                let text = std::fs::read_to_string(&s.scenario)
                    .with_context(|| format!("reading scenario {}", s.scenario))?;
                Scenario::from_toml(&text, &s.scenario)?
            } else {
                Scenario::builtin(&s.scenario)?
            };
            let ids: Vec<CampaignId> = campaigns.iter().map(|c| c.id.clone()).collect();
            let mut spec = world::spec_from_scenario(&scenario, ids, s.seed);
            if let Some(n) = s.agents {
                spec.agents.count = n;
            }
            Box::new(SimTelephony::new(spec, clock))
        }
        (None, TelephonyConfig::Asterisk(list)) => {
            if list.len() > 1 {
                bail!(
                    "{} [[asterisk]] servers are configured; this version drives one per dialer (run one dialer per server)",
                    list.len()
                );
            }
            let a = &list[0];
            apply_routing(&mut campaigns, a);
            let prefix = match &a.channel_id_prefix {
                Some(p) => p.clone(),
                None => format!(
                    "dlr-{}-",
                    store.spool_id().context("reading the spool's id")?
                ),
            };
            Box::new(start_asterisk(a, &campaigns, prefix).await?)
        }
        (None, TelephonyConfig::Sim(_)) => {
            unreachable!("a sim configuration always has sim settings")
        }
    };
    for c in &campaigns {
        store.upsert_campaign(c, clock.now())?;
    }
    for b in &config.bases {
        let name = b.file.display().to_string();
        // A base imported to the end by an earlier run is not imported again: its finished
        // records would come back as fresh ones (and be dialed past their caps). An
        // interrupted one resumes where it stopped.
        if let Some((upload, at)) = store.imported_base(&b.campaign, &name)? {
            tracing::info!(base = %name, upload, finished = %at, "base already imported; not imported again (`dialer import` imports a file again on purpose)");
            continue;
        }
        let mut opts = ImportOptions::new(b.campaign.clone(), name, clock.now());
        opts.time_zone = b.time_zone.clone();
        let file = std::fs::File::open(&b.file)
            .with_context(|| format!("opening base {}", b.file.display()))?;
        let s = store.import_base(std::io::BufReader::new(file), &opts, &mut |_| {})?;
        tracing::info!(base = %b.file.display(), imported = s.imported, rejected = s.rejected, "base imported");
    }
    // A simulated campaign whose spool is still empty (no base configured, nothing left from
    // an earlier run) gets generated callees.
    if let Some(s) = &sim {
        for c in &campaigns {
            seed_records(&mut store, c, s.records, s.seed, clock)?;
        }
    }
    let dialer_cfg = DialerConfig {
        campaigns,
        catalogues: config.catalogues.clone(),
        ..Default::default()
    };
    let (dialer, task) = Dialer::start(dialer_cfg, store, telephony, clock).await?;
    let _api = dialer_api::spawn(config.api.as_ref(), &dialer, &spool_path).await?; // api
    let started = tokio::time::Instant::now();
    let sim_end = sim
        .as_ref()
        .and_then(|s| s.hours)
        .map(|h| clock.now() + chrono::Duration::milliseconds((h * 3_600_000.0) as i64));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_log = tokio::time::Instant::now();
    let stop_reason = loop {
        let until_end = args
            .run_for
            .map(|d| d.saturating_sub(started.elapsed()))
            .unwrap_or(Duration::from_secs(86_400));
        tokio::select! {
            _ = ticker.tick() => {
                if sim_end.is_some_and(|end| clock.now() >= end) {
                    break "the simulated hours are over";
                }
                if let Ok(status) = dialer.status().await {
                    let line = summary_line(&status);
                    if live_line {
                        eprint!("\r\x1b[2K{line}");
                    } else if last_log.elapsed() >= Duration::from_secs(10) {
                        tracing::info!("{line}");
                        last_log = tokio::time::Instant::now();
                    }
                }
            }
            _ = tokio::time::sleep(until_end) => break "the run time is over",
            reason = signals.recv() => break reason,
        }
    };
    if live_line {
        eprintln!();
    }
    tracing::info!(
        reason = stop_reason,
        "stopping: no new dials, waiting for calls in flight"
    );
    let status = dialer.status().await?;
    let summary = dialer.shutdown(args.grace).await?;
    task.await.context("the dialer task failed")??;
    let status = DialerStatus { ..status };
    Ok(Outcome { status, summary })
}

/// Ctrl-C and SIGTERM, both meaning "drain and stop".
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted",
            _ = self.terminate.recv() => "terminated",
        }
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

/// One line: agents by state, calls in flight, dials, answers, abandonment against the cap.
pub fn summary_line(s: &DialerStatus) -> String {
    let mut ready = 0;
    let mut on_call = 0;
    let mut wrap = 0;
    let mut paused = 0;
    let mut other = 0;
    for a in &s.engine.agents {
        match a.state {
            AgentState::Ready => ready += 1,
            AgentState::OnCall { .. } | AgentState::Reserved { .. } => on_call += 1,
            AgentState::WrapUp { .. } => wrap += 1,
            AgentState::Paused { .. } => paused += 1,
            AgentState::LoggedOut => {}
            _ => other += 1,
        }
    }
    let (ab, live, cap) = s.engine.campaigns.iter().fold((0, 0, 0.0f64), |acc, c| {
        (
            acc.0 + c.abandonment.abandoned,
            acc.1 + c.abandonment.live_answers,
            acc.2.max(c.abandonment.cap),
        )
    });
    format!(
        "{} | agents ready {ready} on call {on_call} wrap-up {wrap} paused {paused}{} | in flight {} | dials {} answers {} | abandoned {ab}/{live} = {:.2}% (cap {:.1}%){}",
        s.at.format("%H:%M:%S"),
        if other > 0 { format!(" other {other}") } else { String::new() },
        s.engine.calls.len(),
        s.counters.originates,
        s.counters.answered,
        rate(ab, live) * 100.0,
        cap * 100.0,
        match &s.health {
            dialer_runtime::HealthView::Down { fault, .. } => format!(" | telephony DOWN ({fault})"),
            _ => String::new(),
        }
    )
}

/// The server's routing into each campaign it serves.
fn apply_routing(campaigns: &mut [Campaign], a: &dialer_runtime::config::AsteriskConfig) {
    let (prefix, suffix) = a
        .channel
        .split_once("{number}")
        .unwrap_or((a.channel.as_str(), ""));
    for c in campaigns.iter_mut() {
        c.routing.channel_prefix = prefix.to_owned();
        c.routing.channel_suffix = suffix.to_owned();
        c.routing.context = a.context.clone();
        c.routing.exten = a.exten.clone();
        if let Some(f) = a.dial_format {
            c.routing.dial_format = f;
        }
        if let Some(p) = &a.dial_prefix {
            c.routing.dial_prefix = p.clone();
        }
        if let Some((queue, _)) = a
            .queues
            .iter()
            .find(|(_, camp)| camp.as_str() == c.id.as_str())
        {
            c.routing.queue = queue.clone();
        }
    }
}

async fn start_asterisk(
    a: &dialer_runtime::config::AsteriskConfig,
    campaigns: &[Campaign],
    channel_id_prefix: String,
) -> anyhow::Result<AmiTelephony> {
    let secret = a.secret().map_err(anyhow::Error::msg)?;
    let mut client = ClientConfig::new(
        format!("{}:{}", a.host, a.port),
        Credentials::new(a.user.clone(), secret.expose()),
    );
    client.auth = AuthMode::Md5Preferred;
    client.reconnect = ReconnectPolicy::default();
    let line_limit = campaigns
        .iter()
        .map(|c| c.max_lines as usize)
        .sum::<usize>()
        .max(1);
    tracing::info!(channel_id_prefix, "channels are named by this prefix");
    let tracker = TrackerConfig {
        line_limit,
        channel_id_prefix,
        ..TrackerConfig::default()
    };
    let mut backend = BackendConfig::new(client, tracker);
    backend.reconcile_queues = a.queues.keys().cloned().collect();
    let mut queues: BTreeMap<String, Vec<CampaignId>> = BTreeMap::new();
    for (q, c) in &a.queues {
        queues
            .entry(q.clone())
            .or_default()
            .push(CampaignId::from(c.as_str()));
    }
    let settings = AmiSettings {
        name: format!("{}@{}:{}", a.name, a.host, a.port),
        backend,
        naming: match a.agent_naming {
            AgentNamingConfig::MemberName => AgentNaming::MemberName,
            AgentNamingConfig::Interface => AgentNaming::Interface,
        },
        queues,
        amd: a.amd,
    };
    AmiTelephony::start(settings)
        .await
        .with_context(|| format!("connecting to Asterisk at {}:{}", a.host, a.port))
}

/// Gives an empty simulated campaign a list to dial: `count` generated records, imported
/// through the ordinary base-file importer.
fn seed_records(
    store: &mut SpoolStore,
    c: &Campaign,
    count: u64,
    seed: u64,
    clock: Clock,
) -> anyhow::Result<()> {
    if count == 0 || store.campaign_status(c.id.as_str())?.total > 0 {
        return Ok(());
    }
    const AREAS: [u32; 6] = [212, 312, 415, 617, 713, 305];
    let mut base = String::new();
    for n in 0..count {
        let k = n.wrapping_mul(7919).wrapping_add(seed) % 9_000;
        let area = AREAS[(n as usize) % AREAS.len()];
        base.push_str(&format!(
            "{};{}555{:04};customer=C{n};;;\n",
            c.id,
            area,
            1000 + k
        ));
    }
    let opts = ImportOptions::new(c.id.to_string(), "generated-by-dialer-run", clock.now());
    let s = store.import_base(base.as_bytes(), &opts, &mut |_| {})?;
    tracing::info!(campaign = %c.id, imported = s.imported, rejected = s.rejected, "generated simulated callees");
    Ok(())
}
