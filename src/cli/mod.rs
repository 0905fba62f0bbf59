//! One module per subcommand.

pub mod compare;
pub mod import;
pub mod run;
pub mod plan;
pub mod simulate;
pub mod status;
