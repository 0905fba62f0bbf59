//! The sans-IO engine: one input type in, one output type out.

mod agent;
mod agents;
mod books;
mod call_events;
mod calls;
mod campaigns;
mod commands;
mod config;
mod coordinator;
mod dialing;
pub mod input;
pub mod output;
pub mod reject;
pub mod status;
mod telephony;
mod timers;

pub use agent::AgentState;
pub use config::EngineConfig;
pub use coordinator::Engine;
pub use input::{
    AgentEvent, CallEvent, Command, Input, InputKind, PbxFault, RefusalCause, TelephonyHealth,
};
pub use output::{DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate};
pub use reject::{InputName, RejectReason};
pub use status::{
    AbandonPosition, AgentStatus, CallState, CallStatus, CampaignStatus, DialingPaused,
    EngineStatus, TelephonyStatus,
};
