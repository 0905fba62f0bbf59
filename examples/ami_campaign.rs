//! Runs a small campaign against a real Asterisk: imports a base file into a SQLite spool, then
//! lets the engine dial it through the AMI backend, with agents from the campaign's queue.
//!
//! ```text
//! AMI_HOST=127.0.0.1 AMI_PORT=5038 AMI_USER=dialer AMI_SECRET=dialersecret \
//!     cargo run --example ami_campaign -- base.txt
//! ```
//!
//! `base.txt` holds lines `campaign;number;k=v:k=v;alt1:alt2;priority;agentphone` for campaign
//! `example`. Optional: `AMI_QUEUE` (default `sales`), `AMI_CHANNEL_PREFIX` / `AMI_CHANNEL_SUFFIX`
//! (default `Local/` and `@callees`), `AMI_CONTEXT` (`dialer`), `AMI_EXTEN` (`queue`),
//! `DIALER_COUNTRY` (`US`), `DIALER_DB` (default `ami_campaign.db`), `DIALER_SECONDS` (300),
//! `DIALER_ZONE` (`UTC`), `AMI_LINES` (2). The secret is never printed.

use backend_ami::to_core::AgentNaming;
use backend_ami::tracker::TrackerConfig;
use backend_ami::{AmiBackend, BackendConfig, ClientConfig, Credentials};
use chrono::Utc;
use dialer::runtime::{self, RuntimeConfig};
use dialer_core::{CallingHours, Campaign, DialMode, EngineConfig};
use spool_store::{ImportOptions, SpoolStore};
use std::time::Duration;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let Some(base) = std::env::args().nth(1) else {
        eprintln!("usage: ami_campaign BASE.txt   (see the file's header for the environment)");
        std::process::exit(2);
    };
    let mut campaign = Campaign::new("example", env_or("DIALER_ZONE", "UTC"));
    campaign.dial_mode = DialMode::Progressive;
    campaign.calling_hours = CallingHours::us_tsr();
    campaign.default_country = env_or("DIALER_COUNTRY", "US");
    campaign.max_lines = env_or("AMI_LINES", "2").parse()?;
    campaign.routing.channel_prefix = env_or("AMI_CHANNEL_PREFIX", "Local/");
    campaign.routing.channel_suffix = env_or("AMI_CHANNEL_SUFFIX", "@callees");
    campaign.routing.context = env_or("AMI_CONTEXT", "dialer");
    campaign.routing.exten = env_or("AMI_EXTEN", "queue");
    campaign.routing.queue = env_or("AMI_QUEUE", "sales");
    campaign.validate()?;

    let mut store = SpoolStore::open(env_or("DIALER_DB", "ami_campaign.db"))?;
    let now = Utc::now();
    store.upsert_campaign(&campaign, now)?;
    let file = std::fs::File::open(&base)?;
    let summary = store.import_base(
        file,
        &ImportOptions::new("example", base.clone(), now),
        &mut |_| {},
    )?;
    println!(
        "imported {} records, rejected {}",
        summary.imported, summary.rejected
    );
    for reject in store.rejects(summary.base_id)? {
        println!(
            "  line {}: {} ({})",
            reject.line,
            reject.reason.code(),
            reject.detail
        );
    }

    let addr = format!(
        "{}:{}",
        env_or("AMI_HOST", "127.0.0.1"),
        env_or("AMI_PORT", "5038")
    );
    let credentials = Credentials::new(env_or("AMI_USER", "dialer"), env_or("AMI_SECRET", ""));
    let mut backend_cfg = BackendConfig::new(
        ClientConfig::new(addr, credentials),
        TrackerConfig::default(),
    );
    backend_cfg.tracker.line_limit = campaign.max_lines as usize;
    backend_cfg.reconcile_queues = vec![campaign.routing.queue.clone()];
    let (backend, mut events) = AmiBackend::start(backend_cfg).await?;
    // Agents come from the queue's members; the application could also send logins here.
    let (_commands_tx, mut commands) = tokio::sync::mpsc::channel(16);
    let cfg = RuntimeConfig {
        campaigns: vec![campaign],
        naming: AgentNaming::MemberName,
        amd: false,
        engine: EngineConfig::default(),
        run_for: Some(Duration::from_secs(
            env_or("DIALER_SECONDS", "300").parse()?,
        )),
    };
    let run = runtime::run(cfg, &mut store, &backend, &mut events, &mut commands).await?;
    backend.shutdown().await;
    println!(
        "placed {} calls ({} refused by the backend)",
        run.originates, run.refused_by_backend
    );
    let status = store.campaign_status("example")?;
    println!("{status:?}");
    Ok(())
}
