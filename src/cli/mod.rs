//! One module per subcommand.

pub mod client;
pub mod compare;
pub mod import;
pub mod plan;
pub mod run;
pub mod simulate;
pub mod status;
pub mod swarm;
