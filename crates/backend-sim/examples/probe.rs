//! Quick experiment: `cargo run --release -p backend-sim --example probe -- SCENARIO AGENTS HOURS SEED PACER...`
use backend_sim::{report, run_one, Scenario};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut sc = Scenario::builtin(&a[1]).unwrap();
    let n: u32 = a[2].parse().unwrap();
    if n > 0 {
        sc.agents.count = n;
    }
    let h: f64 = a[3].parse().unwrap();
    if h > 0.0 {
        sc.hours = h;
    }
    let seed: u64 = a[4].parse().unwrap();
    let mut rs = Vec::new();
    for p in &a[5..] {
        let t = Instant::now();
        let r = if p == "erlang" {
            let rate = backend_sim::pacers::erlang_rate(&sc);
            let mut r = backend_sim::Simulator::new(
                &sc,
                seed,
                Box::new(backend_sim::PoissonOpenLoop::new(rate, seed)),
                false,
            )
            .run(&mut |_| {});
            let e = backend_sim::erlang::open_loop(sc.agents.count, 0.03, 0.25, 120.0);
            eprintln!(
                "N={} Erlang B occupancy {:.4}, simulated {:.4} ({:+.4}), abandonment {:.4}",
                sc.agents.count,
                e.occupancy,
                r.occupancy,
                r.occupancy - e.occupancy,
                r.abandonment_rate
            );
            r.pacer = "erlang".into();
            r
        } else if let Some(rest) = p.strip_prefix("pred:") {
            let v: Vec<f64> = rest.split(':').map(|x| x.parse().unwrap()).collect();
            let cfg = dialer_core::pacing::predictive::PredictiveConfig {
                initial_risk: v[0],
                gain: v[1],
                target_fraction_of_cap: v[2],
                ..Default::default()
            };
            let mut r = backend_sim::Simulator::new(
                &sc,
                seed,
                Box::new(dialer_core::pacing::Predictive::new(cfg)),
                true,
            )
            .run(&mut |_| {});
            r.pacer = p.clone();
            r
        } else {
            run_one(&sc, p, seed, &mut |_| {}).unwrap()
        };
        eprintln!(
            "{p}: {:.2?} ({:.0} dials/s)",
            t.elapsed(),
            r.dials as f64 / t.elapsed().as_secs_f64()
        );
        rs.push(r);
    }
    print!("{}", report::table(&rs));
}
