//! Asterisk Manager Interface (AMI) backend of the dialer: places the core's calls through
//! Asterisk and tells the core what became of them.
//!
//! It is built in three layers, the lower two free of I/O so they can be tested byte by byte and
//! event by event:
//!
//! - [`codec`]: sans-IO framing. Parsing answers `Complete`/`Partial` with explicit limits and
//!   survives garbage; encoding is the single gate for bytes sent to Asterisk and refuses CR, LF and
//!   NUL (AMI header injection), escapes `Variable` values and keeps within Asterisk's input limits.
//! - [`tracker`]: sans-IO [`tracker::CallTracker`]. Fed parsed events and `now`, it follows each call
//!   by the `ChannelId`/`OtherChannelId` the dialer chose, classifies the outcome from the dialed
//!   leg's Hangup cause (not from `OriginateResponse` Reason alone, and in whatever order the two
//!   arrive), turns queue member events into agent state, enforces the line limit, and settles
//!   calls after a reconnect from a `CoreShowChannels` snapshot.
//! - [`client`] and [`backend`]: the tokio driver. One task owns the socket and reads continuously;
//!   actions are correlated by ActionID with deadlines; logins are plain or MD5; keep-alive pings;
//!   reconnection with seeded, jittered backoff; an action whose fate is unknown is reported so and
//!   never re-sent.
//!
//! [`to_core`] maps these types to the dialer core's.
//!
//! # Example: decoding what Asterisk sends, encoding what we send
//!
//! ```
//! use backend_ami::codec::{Action, DecodeLimits, Decoder, EncodeError, Frame};
//!
//! // Bytes may arrive in any split; the decoder buffers until a frame is whole.
//! let mut decoder = Decoder::new(DecodeLimits::default());
//! decoder.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: Hangup\r\nUniqueid: dlr-7\r\nCau");
//! assert!(matches!(decoder.decode(), Ok(Some(Frame::Banner(b))) if b.version == "11.0.0"));
//! assert_eq!(decoder.decode(), Ok(None)); // the Hangup is not complete yet
//! decoder.feed(b"se: 17\r\nCause-txt: User busy\r\n\r\n");
//! let Ok(Some(Frame::Message(hangup))) = decoder.decode() else { panic!("a whole message") };
//! assert!(hangup.is_event("Hangup"));
//! assert_eq!(hangup.get("cause"), Some("17")); // header names are case-insensitive
//!
//! // Encoding escapes variable values and refuses header injection without writing anything.
//! let mut wire = Vec::new();
//! Action::new("Originate")
//!     .header("Channel", "PJSIP/5550123@trunk")
//!     .variable("LEAD", "42,EVIL=1")
//!     .encode(&mut wire)?;
//! assert!(String::from_utf8_lossy(&wire).contains("Variable: LEAD=42\\,EVIL=1\r\n"));
//!
//! let injected = Action::new("Originate").header("CallerID", "x\r\nAction: Command");
//! assert!(matches!(injected.encode(&mut wire), Err(EncodeError::ForbiddenByte { .. })));
//! # Ok::<(), EncodeError>(())
//! ```

pub mod backend;
pub mod client;
pub mod codec;
pub mod telephony;
pub mod to_core;
pub mod tracker;

pub use backend::{AmiBackend, BackendConfig, BackendError, BackendEvent, ConnectionState};
pub use client::{AmiClient, AuthMode, ClientConfig, ClientError, ClientEvent, Credentials};
pub use telephony::{AmiBridge, AmiSettings, AmiTelephony};
pub use tracker::{AmiOriginate, CallProgress, CallRef, CallTracker, Outcome};

/// A deadline that never comes in practice: a day away, for timers with nothing to wait for.
pub(crate) fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86_400)
}
