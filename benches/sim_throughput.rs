//! End-to-end simulator throughput through the crate the CLI uses: one 100-agent, 8-hour
//! simulated day of the reference model under the predictive pacer. Needs in the root
//! Cargo.toml: `[[bench]] name = "sim_throughput" harness = false`.

use backend_sim::{run_one, Scenario};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

// The `dialer` binary's allocator (`src/main.rs`), so the bench measures what it runs.
#[global_allocator]
static GLOBAL: backend_sim::alloc::Allocator = backend_sim::alloc::Allocator;

fn day(c: &mut Criterion) {
    let sc = Scenario::reference(100, 8.0);
    let dials = run_one(&sc, "predictive", 1, &mut |_| {})
        .expect("known pacer")
        .dials;
    let mut g = c.benchmark_group("dialer_simulate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(dials));
    g.bench_function("reference_100_agents_8h_day", |b| {
        b.iter(|| run_one(&sc, "predictive", 1, &mut |_| {}))
    });
    g.finish();
}

criterion_group!(benches, day);
criterion_main!(benches);
