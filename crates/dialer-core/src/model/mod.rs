//! The domain model: typed, serde-serializable, validated at the boundary.

pub mod blacklist;
pub mod campaign;
pub mod ids;
pub mod outcome;
pub mod phone;
mod phone_fast;
pub mod record;
pub mod variable;
