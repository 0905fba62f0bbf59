//! # dialer
//!
//! The runtime that wires the pure core ([`dialer_core`]) to a spool ([`spool_store`]) and a
//! telephone backend ([`backend_ami`], or the simulator [`backend_sim`]).

pub mod runtime;

pub use backend_ami;
pub use backend_sim;
pub use dialer_core;
pub use spool_store;
