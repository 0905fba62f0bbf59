//! The engine's settings.

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often to ask the store for due records even when the hopper is not low.
    pub refill_interval_s: u32,
    /// Records held per campaign: at least this many, or four per line.
    pub hopper_min: u32,
    /// First call id minted (the runtime continues after the ledger's last one).
    pub first_call_id: u64,
    /// Records whose call ended are kept this many for late dispositions (0: none, for a
    /// backend that sends no dispositions, such as the simulator).
    pub recent_records: usize,
    /// The abandonment guard. `false` exists only so a simulator can reproduce peer dialers
    /// that have no such guard; the `dialer` runtime refuses to start with it.
    pub abandon_guard: bool,
    /// After the telephone system refused a call itself (down, shutting down, refused the
    /// request), dialing pauses this long before one more try, unless the backend reports
    /// the telephone system up sooner.
    pub pbx_retry_s: u32,
    /// Whether to report the course of each call and record as events: [`Event::Dialed`],
    /// [`Event::Progress`], [`Event::AgentLinked`], [`Event::AgentUnlinked`],
    /// [`Event::RecordFinished`] (a campaign log, a supervisor's screen). A simulation that
    /// reads none of them turns this off and spares the engine building about seven events a
    /// dial. Store updates, Originates, Hangups and every other event are the same either way.
    ///
    /// [`Event::Dialed`]: crate::Event::Dialed
    /// [`Event::Progress`]: crate::Event::Progress
    /// [`Event::AgentLinked`]: crate::Event::AgentLinked
    /// [`Event::AgentUnlinked`]: crate::Event::AgentUnlinked
    /// [`Event::RecordFinished`]: crate::Event::RecordFinished
    pub call_events: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            refill_interval_s: 30,
            hopper_min: 50,
            first_call_id: 1,
            recent_records: 10_000,
            abandon_guard: true,
            pbx_retry_s: 30,
            call_events: true,
        }
    }
}
