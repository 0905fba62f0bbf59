//! # dialer-core
//!
//! The pure scheduling and pacing core of the outbound dialer. No I/O, no clock, no unseeded
//! randomness.
pub mod model;
pub mod rules;

pub use model::blacklist::{Blacklist, BlacklistEntry, BlacklistScope, Direction};
pub use model::campaign::*;
pub use model::ids::*;
pub use model::outcome::*;
pub use model::phone::{PhoneError, PhoneNumber};
pub use model::record::*;
pub mod engine;
pub mod pacing;
#[cfg(feature = "proptest")]
pub mod testing;

pub use engine::*;
pub use rules::disposition::{Disposition, DispositionError, Respool};
pub use rules::eligibility::SkipReason;
