//! The sans-IO engine: one input type in, one output type out.

mod dialer_engine;
pub mod input;
pub mod output;

pub use dialer_engine::{AgentState, Engine, EngineConfig};
pub use input::{AgentEvent, CallEvent, Command, Input, InputKind};
pub use output::{DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate};
