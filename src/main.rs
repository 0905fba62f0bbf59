//! The `dialer` command line: pacing simulations and comparisons, base imports, status.

use clap::{Parser, Subcommand};

mod cli;

// mimalloc: the simulator makes and drops a few small blocks (records, numbers, calls) per
// dial, and glibc's allocator spent about a tenth of a simulated day on them (see
// `crates/backend-sim/src/alloc.rs`); the same results, fewer instructions.
#[global_allocator]
static GLOBAL: backend_sim::alloc::Allocator = backend_sim::alloc::Allocator;

#[derive(Parser)]
#[command(
    name = "dialer",
    version,
    about = "Outbound dialer engine: run campaigns, simulate pacing, import bases, show campaign status"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run campaigns from a configuration file against Asterisk or simulated callees
    /// (the embedded simulated demo when given no configuration).
    Run(cli::run::RunArgs),
    /// Run a pacing simulation (an embedded default scenario when given no arguments).
    Simulate(cli::simulate::SimulateArgs),
    /// Run several pacers on the same simulated callees and compare them side by side.
    Compare(cli::compare::CompareArgs),
    /// How many agents, and which dial mode, reach a number of talk hours a day within the cap.
    Plan(cli::plan::PlanArgs),
    /// Import a base file into a spool database.
    Import(cli::import::ImportArgs),
    /// Show ECCP-style campaign counters from a spool database.
    Status(cli::status::StatusArgs),
    /// Campaigns of a running dialer (through its API; token in DIALER_TOKEN).
    Campaign(cli::client::CampaignArgs),
    /// The spool of a running dialer: upload, respool, schedule, tasks, removals, records.
    Spool(cli::client::SpoolArgs),
    /// The do-not-call list of a running dialer.
    Blacklist(cli::client::BlacklistArgs),
    /// Agents of a running dialer: login, ready, pause, logout, disposition, preview, hang-up.
    Agent(cli::client::AgentArgs),
    /// Follow a running dialer's events.
    Events(cli::client::EventsArgs),
    /// Run seeded campaigns with faults through the dialer and the SQLite spool, judged by an
    /// independent oracle; one line per failing seed, non-zero exit on any violation.
    Swarm(cli::swarm::SwarmArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cli::run::run(a),
        Command::Simulate(a) => cli::simulate::run(a),
        Command::Compare(a) => cli::compare::run(a),
        Command::Plan(a) => cli::plan::run(a),
        Command::Import(a) => cli::import::run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Campaign(a) => cli::client::campaign(a),
        Command::Spool(a) => cli::client::spool(a),
        Command::Blacklist(a) => cli::client::blacklist(a),
        Command::Agent(a) => cli::client::agent(a),
        Command::Events(a) => cli::client::events(a),
        Command::Swarm(a) => cli::swarm::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
