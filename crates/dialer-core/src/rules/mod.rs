//! The dialing rules, each a pure function of its inputs.

pub mod calling_window;
pub mod disposition;
pub mod eligibility;
pub mod next_step;
pub mod ordering;
pub mod schedule;
