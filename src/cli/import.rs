//! `dialer import`: upload a base file into a spool database.
//!
//! The campaign is created if it does not exist yet, with the defaults of
//! `dialer_core::Campaign::new(name, zone)`, where the zone is `--timezone` (or UTC) and the
//! default country for national numbers is `--country` (or the default's US). For an
//! existing campaign, `--timezone` only sets the callees' zone for this file and `--country`
//! only how this file's national numbers are read.
//!
//! An interrupted import of the same file name resumes where its last batch was committed;
//! `--restart` abandons it and starts over. Each transaction stays open at most `--commit-ms`
//! (250 ms by default), so a dialer running on the same database is never held up longer.

use anyhow::Context;
use spool_store::{ImportOptions, SpoolStore};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Spool database file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// Campaign to import into; created with default settings if it does not exist.
    #[arg(long)]
    pub campaign: String,
    /// IANA time zone of the callees in this file (e.g. America/Montevideo); also the zone of a
    /// campaign this import creates (default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// ISO 3166 alpha-2 country for numbers in national format (default: the campaign's).
    #[arg(long)]
    pub country: Option<String>,
    /// Who uploads (kept with the upload).
    #[arg(long, default_value = "cli")]
    pub user: String,
    /// Write every rejected line to this file, one JSON object per line
    /// (`line`, `reason`, `detail`, `raw`).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Abandon an interrupted import of the same file name instead of resuming it.
    #[arg(long)]
    pub restart: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Most lines committed per transaction (default: as many as `--commit-ms` allows).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Longest a transaction stays open, in milliseconds: a dialer running on the same
    /// database waits at most about this long for a ledger write.
    #[arg(long, default_value_t = spool_store::import::DEFAULT_COMMIT_AFTER.as_millis() as u64)]
    pub commit_ms: u64,
    /// The base file: `campaign;number;k=v:k=v;alt1:alt2;priority;agentphone` per line.
    pub file: PathBuf,
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    if let Some(z) = &args.timezone {
        z.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!(
                "unknown time zone {z:?}: expected an IANA name such as America/Montevideo"
            )
        })?;
    }
    // Not `open`: reconciling the ledger is the dialer's job at its start, never an importer's
    // (a dialer may be running on the same database).
    let mut store = SpoolStore::open_unreconciled(&args.db)
        .with_context(|| format!("opening {}", args.db.display()))?;
    if !store.has_campaign(&args.campaign)? {
        let zone = args.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
        let mut c = dialer_core::Campaign::new(args.campaign.clone(), zone);
        if let Some(country) = &args.country {
            c.default_country = country.to_ascii_uppercase();
        }
        store
            .upsert_campaign(&c, now)
            .with_context(|| format!("creating campaign {:?}", args.campaign))?;
        eprintln!(
            "created campaign {:?} (zone {}, country {})",
            c.id.0, c.time_zone, c.default_country
        );
    }
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.file.display().to_string());
    if args.restart {
        if let Some(b) = store.unfinished_base(&args.campaign, &file_name)? {
            store.abandon_base(b.id, now)?;
            eprintln!("abandoned interrupted upload {} of {file_name}", b.id);
        }
    }
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut opts = ImportOptions::new(args.campaign.clone(), file_name, now);
    opts.user = args.user.clone();
    opts.time_zone = args.timezone.clone();
    opts.country = args.country.clone();
    if let Some(lines) = args.batch {
        opts.batch_lines = lines.max(1);
    }
    opts.commit_after = std::time::Duration::from_millis(args.commit_ms.max(1));
    let summary = store.import_base(file, &opts, &mut |p| {
        bar.set_position(p.bytes_read);
        bar.set_message(format!("{} imported, {} rejected", p.imported, p.rejected));
    });
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("importing {}", args.file.display()))?;

    if let Some(path) = &args.rejects {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        store.for_each_reject(summary.base_id, &mut |r| {
            let line = serde_json::to_string(&r)
                .map_err(|e| spool_store::StoreError::Corrupt(e.to_string()))?;
            writeln!(out, "{line}")
                .map_err(|e| spool_store::StoreError::Corrupt(format!("writing rejects: {e}")))?;
            Ok(())
        })?;
        out.flush()?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    if let Some(line) = summary.resumed_at_line {
        println!("resumed an interrupted upload at line {line}");
    }
    println!(
        "{}: {} lines, {} imported, {} rejected, {} blank (upload {})",
        args.file.display(),
        summary.lines,
        summary.imported,
        summary.rejected,
        summary.blank_lines,
        summary.base_id
    );
    for (reason, n) in &summary.rejected_by_reason {
        println!("  {n:>8}  {reason}");
    }
    if summary.rejected > 0 {
        match &args.rejects {
            Some(p) => println!("rejected lines written to {}", p.display()),
            None => println!("use --rejects FILE to get every rejected line with its reason"),
        }
    }
    Ok(())
}
