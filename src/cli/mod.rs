//! One module per subcommand.

pub mod client;
pub mod compare;
pub mod import;
pub mod run;
pub mod plan;
pub mod simulate;
pub mod status;
