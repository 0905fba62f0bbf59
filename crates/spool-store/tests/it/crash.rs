//! SIGKILL a real process at random points of imports, dialing bookkeeping and operator
//! operations, then audit the spool after every restart: nothing lost, duplicated or dialed
//! twice, counters equal to the ledger. The work and the audit are the `spool-crash` command
//! (`src/bin/spool-crash.rs`), which also runs 1,000 kills by hand; here it runs 50. The seed
//! is printed; set `SPOOL_CRASH_SEED` to replay.

use std::process::Command;

const CRASH: &str = env!("CARGO_BIN_EXE_spool-crash");

#[test]
fn sigkill_during_import_dialing_and_operations_loses_nothing_and_dials_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(CRASH);
    cmd.args(["run", "--kills", "50", "--dir"]).arg(dir.path());
    if let Ok(seed) = std::env::var("SPOOL_CRASH_SEED") {
        cmd.args(["--seed", &seed]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "the crash run found a problem");
    assert!(
        stdout.contains(
            "records lost: 0; calls dialed twice: 0; counter mismatches: 0; other broken \
             invariants: 0."
        ),
        "the report is missing"
    );
    // All three kinds of work were killed at least once, and the dialing made progress.
    let summary = stdout.lines().find(|l| l.contains("kills landed")).unwrap();
    for kind in ["in imports", "in dialing", "in operations"] {
        let n: u64 = summary
            .split(kind)
            .next()
            .and_then(|head| head.rsplit(['(', ' ']).nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(n > 0, "no kill landed {kind}: {summary}");
    }
}
