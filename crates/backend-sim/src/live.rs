//! [`SimTelephony`]: the simulated world ([`crate::world::SimWorld`]) behind the runtime's
//! `Telephony` seam, in real time or accelerated (the runtime's [`Clock`]), so `dialer run`
//! runs campaigns against simulated callees and agents with no PBX.

use crate::world::{SimWorld, WorldSpec};
use async_trait::async_trait;
use dialer_core::{CallEvent, CallId, InputKind};
use dialer_runtime::telephony::{
    CallIdentity, Telephony, TelephonyCommand, TelephonyError, TelephonyEvent,
};
use dialer_runtime::Clock;
use std::collections::HashMap;
use std::time::Duration;

/// Longest real wait between two looks at the world (commands arrive in between anyway).
const MAX_WAIT: Duration = Duration::from_millis(500);

/// The simulated telephone system on a clock.
pub struct SimTelephony {
    world: SimWorld,
    clock: Clock,
    name: String,
    /// Per call placed and not ended: its channel and queue, reported as its identity.
    identities: HashMap<CallId, (String, String)>,
}

impl SimTelephony {
    /// A simulated telephone system whose world starts at the clock's present.
    pub fn new(spec: WorldSpec, clock: Clock) -> SimTelephony {
        SimTelephony {
            world: SimWorld::new(spec, clock.now()),
            clock,
            name: "sim".into(),
            identities: HashMap::new(),
        }
    }

    /// What the simulated system calls its calls, deterministic: unique id `sim-<call>`,
    /// channel `SIM/<dial string>-<call>` once the call is accepted, the campaign's queue
    /// (its routing's, else the campaign id) once it is queued; each before its progress.
    fn with_identities(&mut self, burst: Vec<TelephonyEvent>) -> Vec<TelephonyEvent> {
        let mut out = Vec::with_capacity(burst.len());
        for ev in burst {
            if let TelephonyEvent::Input(InputKind::Call { call, event }) = &ev {
                let identity = match (event, self.identities.get(call)) {
                    (CallEvent::OriginateAccepted, Some((channel, _))) => Some(CallIdentity {
                        unique_id: Some(format!("sim-{}", call.0)),
                        channel: Some(channel.clone()),
                        queue: None,
                    }),
                    (CallEvent::Queued, Some((_, queue))) => Some(CallIdentity {
                        queue: Some(queue.clone()),
                        ..CallIdentity::default()
                    }),
                    _ => None,
                };
                if let Some(identity) = identity {
                    out.push(TelephonyEvent::Identity {
                        call: *call,
                        identity,
                    });
                }
                if matches!(
                    event,
                    CallEvent::HungUp { .. } | CallEvent::Lost | CallEvent::OriginateRefused { .. }
                ) {
                    self.identities.remove(call);
                }
            }
            out.push(ev);
        }
        out
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
        if let TelephonyCommand::Originate(o) = &command {
            let queue = if o.routing.queue.is_empty() {
                o.campaign.to_string()
            } else {
                o.routing.queue.clone()
            };
            let channel = format!("SIM/{}-{}", o.dial_string, o.call.0);
            self.identities.insert(o.call, (channel, queue));
        }
        self.world.command(self.clock.now(), &command);
        Ok(())
    }

    async fn next_burst(&mut self) -> Option<Vec<TelephonyEvent>> {
        loop {
            let burst = self.world.poll(self.clock.now());
            if !burst.is_empty() {
                return Some(self.with_identities(burst));
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
