//! The sans-IO engine: one input type in, one output type out.

mod dialer_engine;
pub mod input;
pub mod output;
pub mod reject;
pub mod status;

pub use dialer_engine::{AgentState, Engine, EngineConfig};
pub use input::{
    AgentEvent, CallEvent, Command, Input, InputKind, PbxFault, RefusalCause, TelephonyHealth,
};
pub use output::{DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate};
pub use reject::{InputName, RejectReason};
pub use status::{
    AbandonPosition, AgentStatus, CallState, CallStatus, CampaignStatus, DialingPaused,
    EngineStatus, TelephonyStatus,
};
