//! One module per subcommand.

pub mod compare;
pub mod import;
pub mod run;
pub mod simulate;
pub mod status;
pub mod swarm;
