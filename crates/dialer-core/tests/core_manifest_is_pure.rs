//! The core must stay sans-IO: no async runtime, no database, no OS clock in its manifest
//! or its source. This test reads both and fails on any of them.

const FORBIDDEN_CRATES: [&str; 6] = [
    "tokio",
    "rusqlite",
    "async-std",
    "mio",
    "reqwest",
    "getrandom",
];

#[test]
fn core_manifest_has_no_io_dependencies() {
    let manifest = include_str!("../Cargo.toml");
    let deps: String = manifest
        .split("\n[")
        .filter(|section| section.starts_with("dependencies"))
        .collect();
    for name in FORBIDDEN_CRATES {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(name)),
            "dialer-core depends on {name}: the core must not do I/O"
        );
    }
    // chrono's `clock` feature reads the OS clock.
    let chrono = deps
        .lines()
        .find(|l| l.trim_start().starts_with("chrono ="))
        .expect("chrono is a dependency");
    assert!(
        !chrono.contains("clock"),
        "chrono's clock feature must stay off in the core: {chrono}"
    );
    assert!(
        chrono.contains("default-features = false"),
        "chrono's default features include the clock: {chrono}"
    );
}

#[test]
fn core_source_never_reads_a_clock_or_unseeded_randomness() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for needle in [
                "Utc::now",
                "Local::now",
                "SystemTime::now",
                "Instant::now",
                "thread_rng",
                "from_entropy",
                "OsRng",
            ] {
                assert!(!text.contains(needle), "{} uses {needle}", path.display());
            }
            checked += 1;
        }
    }
    assert!(
        checked > 10,
        "expected to scan the core's sources, scanned {checked}"
    );
}
