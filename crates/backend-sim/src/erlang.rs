//! Erlang B: the loss probability of N servers offered a Poisson stream. With zero patience,
//! open-loop dialing makes live answers such a stream, so Erlang B is the closed form a
//! correct simulator must reproduce (pacing-reference.md).

/// Erlang B loss probability for `n` servers and offered load `a` erlangs.
pub fn erlang_b(n: u32, a: f64) -> f64 {
    // The stable recursion B(k) = a B(k-1) / (k + a B(k-1)).
    (1..=n).fold(1.0, |b, k| a * b / (f64::from(k) + a * b))
}

/// The offered load whose Erlang B loss is `target`, by bisection (B rises with `a`).
pub fn load_for_loss(n: u32, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 10.0 * f64::from(n) + 10.0);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if erlang_b(n, mid) > target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    lo
}

/// Open-loop dialing tuned to an abandonment target, in closed form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// Offered load of live answers, erlangs.
    pub load: f64,
    /// Dials per second that produce it.
    pub dial_rate_per_s: f64,
    /// Expected occupancy: a (1 − B) / N.
    pub occupancy: f64,
}

/// The open-loop dial rate whose abandonment is `target` with `n` agents, live-answer
/// probability `p` and mean handling time (talk + wrap-up) `handle_s`.
pub fn open_loop(n: u32, target: f64, p: f64, handle_s: f64) -> OpenLoop {
    let a = load_for_loss(n, target);
    OpenLoop {
        load: a,
        dial_rate_per_s: a / handle_s / p,
        occupancy: a * (1.0 - erlang_b(n, a)) / f64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_doc_values_at_three_percent() {
        // pacing-reference.md: 0.364 (5), 0.536 (10), 0.679 (20), 0.814 (50), 0.881 (100).
        for (n, occ) in [
            (5, 0.364),
            (10, 0.536),
            (20, 0.679),
            (50, 0.814),
            (100, 0.881),
        ] {
            let o = open_loop(n, 0.03, 0.25, 120.0);
            assert!((o.occupancy - occ).abs() < 0.0015, "N={n}: {}", o.occupancy);
        }
    }

    #[test]
    fn erlang_b_small_cases() {
        assert!((erlang_b(1, 1.0) - 0.5).abs() < 1e-12);
        assert!((erlang_b(2, 1.0) - 0.2).abs() < 1e-12);
    }
}
