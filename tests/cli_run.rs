//! `dialer run` as a user runs it: the shipped simulated configuration, a short run on an
//! accelerated clock, a clean stop, and a configuration error printed as a sentence.

use std::process::Command;

fn dialer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialer"))
}

#[test]
fn run_with_the_shipped_sim_config_dials_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("dialer.db");
    let out = dialer()
        .args([
            "run",
            "--config",
            "examples/dialer.toml",
            "--for",
            "3s",
            "--speed",
            "300",
        ])
        .arg("--spool")
        .arg(&spool)
        .env("NO_COLOR", "1")
        .output()
        .expect("dialer runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("stopped:"))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    let originates: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary line {line}"));
    assert!(originates > 0, "{line}");
    assert!(stdout.contains("campaign spring: abandonment"), "{stdout}");
    // The spool file holds what was dialed.
    let store = spool_store::SpoolStore::open(&spool).expect("spool");
    assert!(!store.attempts("spring").expect("attempts").is_empty());
}

#[test]
fn a_bad_config_is_a_sentence_with_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[campaign]]\nid = \"a\"\ntime_zone = \"UTC\"\nring_timout_s = 30\n",
    )
    .expect("write");
    let out = dialer()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("dialer runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 4") && stderr.contains("unknown setting `ring_timout_s`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ConfigFileError"),
        "a Debug dump: {stderr}"
    );
}

/// Regression: every start imported the configured bases again, so records already finished
/// (a number found invalid, a record dialed to its cap) came back as fresh records and were
/// dialed again (seen on a live Asterisk: six invalid numbers redialed after a restart).
#[test]
fn a_restart_does_not_import_its_configured_bases_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("dialer.db");
    let base = dir.path().join("spring.txt");
    std::fs::write(
        &base,
        "spring;2125550101;n=1;;;\nspring;2125550102;n=2;;;\nspring;2125550103;n=3;;;\n",
    )
    .expect("base");
    let shipped = std::fs::read_to_string("examples/dialer.toml").expect("shipped config");
    let config = dir.path().join("dialer.toml");
    std::fs::write(
        &config,
        format!(
            "{shipped}\n[[base]]\ncampaign = \"spring\"\nfile = {:?}\n",
            base.display().to_string()
        ),
    )
    .expect("config");
    let run = || {
        let out = dialer()
            .args(["run", "--for", "2s", "--speed", "300", "--config"])
            .arg(&config)
            .arg("--spool")
            .arg(&spool)
            .env("NO_COLOR", "1")
            .output()
            .expect("dialer runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let first = run();
    assert!(first.contains("base imported"), "{first}");
    let second = run();
    assert!(second.contains("base already imported"), "{second}");
    let store = spool_store::SpoolStore::open(&spool).expect("spool");
    let records = (1..=10)
        .filter(|i| store.record(&dialer_core::RecordId(*i)).is_ok())
        .count();
    assert_eq!(records, 3, "the three lines, once");
}
