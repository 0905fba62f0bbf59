//! One integration test binary (ripgrep style); each module says what it covers.

/// Loopback server replaying recorded Asterisk byte streams.
mod support;

/// The whole backend against the replay server: one scenario per recorded call.
mod backend_replay;
/// The tokio client against the replay server: logins, commands, lists.
mod client_replay;
/// The codec on recorded streams: split at every byte, arbitrary chunking, arbitrary input.
mod codec_stream;
/// Faults: cuts, stalls, garbage, injection attempts, reconnection and reconciliation.
mod faults;
/// The running dialer (`dialer_runtime::Dialer`) with a real SQLite spool against the replay
/// server: the runtime's regressions that need Asterisk's real event order.
mod runtime_replay;
/// The sans-IO call tracker fed the recorded events directly (the classification table).
mod tracker_replay;
