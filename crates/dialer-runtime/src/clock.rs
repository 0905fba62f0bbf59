//! The runtime's clock: real time, or simulated time running at a multiple of real time (so a
//! simulated campaign day can be watched in minutes). The core never reads a clock; the runtime
//! reads this one and passes the time in.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::time::Instant;

/// Real or accelerated time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_wall: Instant,
    origin: DateTime<Utc>,
    speed: f64,
}

impl Clock {
    /// The system clock.
    pub fn real() -> Clock {
        Clock {
            origin_wall: Instant::now(),
            origin: Utc::now(),
            speed: 1.0,
        }
    }

    /// Time starting at `start` and running `speed` times faster than real time (`speed` is
    /// clamped to 1..=10,000).
    pub fn accelerated(start: DateTime<Utc>, speed: f64) -> Clock {
        Clock {
            origin_wall: Instant::now(),
            origin: start,
            speed: if speed.is_finite() {
                speed.clamp(1.0, 10_000.0)
            } else {
                1.0
            },
        }
    }

    /// How many times faster than real time this clock runs.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.origin_wall.elapsed().as_secs_f64() * self.speed;
        self.origin + chrono::Duration::microseconds((elapsed * 1e6) as i64)
    }

    /// The real time to wait until the clock shows `at` (zero if it already does).
    pub fn real_wait_until(&self, at: DateTime<Utc>) -> Duration {
        let ahead = (at - self.now()).to_std().unwrap_or(Duration::ZERO);
        ahead.div_f64(self.speed)
    }

    /// The real time that `simulated` takes on this clock.
    pub fn real_duration(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.speed)
    }
}
