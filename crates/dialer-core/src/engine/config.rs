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
    /// Records whose call ended are kept this many for late dispositions.
    pub recent_records: usize,
    /// The abandonment guard. `false` exists only so a simulator can reproduce peer dialers
    /// that have no such guard; the `dialer` runtime refuses to start with it.
    pub abandon_guard: bool,
    /// After the telephone system refused a call itself (down, shutting down, refused the
    /// request), dialing pauses this long before one more try, unless the backend reports
    /// the telephone system up sooner.
    pub pbx_retry_s: u32,
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
        }
    }
}
