//! [`SimTelephony`]: the simulated world ([`crate::world::SimWorld`]) behind the runtime's
//! `Telephony` seam, in real time or accelerated (the runtime's [`Clock`]), so `dialer run`
//! runs campaigns against simulated callees and agents with no PBX.

use crate::world::{SimWorld, WorldSpec};
use async_trait::async_trait;
use dialer_runtime::telephony::{Telephony, TelephonyCommand, TelephonyError, TelephonyEvent};
use dialer_runtime::Clock;
use std::time::Duration;

/// Longest real wait between two looks at the world (commands arrive in between anyway).
const MAX_WAIT: Duration = Duration::from_millis(500);

/// The simulated telephone system on a clock.
pub struct SimTelephony {
    world: SimWorld,
    clock: Clock,
    name: String,
}

impl SimTelephony {
    /// A simulated telephone system whose world starts at the clock's present.
    pub fn new(spec: WorldSpec, clock: Clock) -> SimTelephony {
        SimTelephony {
            world: SimWorld::new(spec, clock.now()),
            clock,
            name: "sim".into(),
        }
    }

    /// The world, for tests that look at the truth (lines really in use).
    pub fn world(&self) -> &SimWorld {
        &self.world
    }
}

#[async_trait]
impl Telephony for SimTelephony {
    fn name(&self) -> &str {
        &self.name
    }

    async fn submit(&mut self, command: TelephonyCommand) -> Result<(), TelephonyError> {
        self.world.command(self.clock.now(), &command);
        Ok(())
    }

    async fn next_burst(&mut self) -> Option<Vec<TelephonyEvent>> {
        loop {
            let burst = self.world.poll(self.clock.now());
            if !burst.is_empty() {
                return Some(burst);
            }
            let wait = self
                .world
                .next_at()
                .map_or(MAX_WAIT, |t| self.clock.real_wait_until(t).min(MAX_WAIT));
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    async fn shutdown(&mut self) {}
}
