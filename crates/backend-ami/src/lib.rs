//! backend-ami (under construction).
pub mod codec;
