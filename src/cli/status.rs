//! `dialer status`: ECCP-style campaign counters (getcampaignstatus), read-only, safe next to
//! a running dialer.

use anyhow::Context;
use spool_store::{CampaignStatus, SpoolStore};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Spool database file.
    #[arg(long)]
    pub db: PathBuf,
    /// Only this campaign (default: every campaign).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    if !args.db.exists() {
        anyhow::bail!("{} does not exist", args.db.display());
    }
    let store = SpoolStore::open_read_only(&args.db)
        .with_context(|| format!("opening {}", args.db.display()))?;
    let names: Vec<String> = match &args.campaign {
        Some(c) => vec![c.clone()],
        None => store
            .campaign_names()?
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
    };
    let mut rows: Vec<(String, CampaignStatus)> = Vec::new();
    for n in names {
        let st = store
            .campaign_status(&n)
            .with_context(|| format!("campaign {n:?}"))?;
        rows.push((n, st));
    }
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .into_iter()
            .map(|(n, st)| Ok((n, serde_json::to_value(st)?)))
            .collect::<anyhow::Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(());
    }
    let headers = [
        "campaign",
        "total",
        "pending",
        "placing",
        "ringing",
        "onqueue",
        "success",
        "onhold",
        "failure",
        "shortcall",
        "noanswer",
        "abandoned",
        "losttrack",
    ];
    let width = rows
        .iter()
        .map(|(n, _)| n.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    print!("{:<width$}", headers[0]);
    for h in &headers[1..] {
        print!(" {h:>9}");
    }
    println!();
    for (n, s) in &rows {
        print!("{n:<width$}");
        for v in [
            s.total,
            s.pending,
            s.placing,
            s.ringing,
            s.onqueue,
            s.success,
            s.onhold,
            s.failure,
            s.shortcall,
            s.noanswer,
            s.abandoned,
            s.unknown,
        ] {
            print!(" {v:>9}");
        }
        println!();
    }
    Ok(())
}
