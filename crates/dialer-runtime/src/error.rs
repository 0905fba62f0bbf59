//! Typed errors of the runtime and of the operations on a [`crate::Dialer`].

use dialer_core::{ConfigError, RejectReason};

/// Why an operation on a running dialer was refused or failed. Nothing changed, in memory or
/// on disk, unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A dialing rule refused it (unknown campaign or record, record in flight, blacklisted
    /// number...).
    #[error("{0}")]
    Rejected(#[from] RejectReason),
    /// The spool refused it (duplicate destination, duplicate schedule, unknown record...) or
    /// failed.
    #[error("{0}")]
    Store(#[from] spool_store::StoreError),
    /// A campaign setting cannot work.
    #[error("{0}")]
    InvalidCampaign(#[from] ConfigError),
    /// Bad input that is neither a rule nor a setting (an empty number list, an unknown zone).
    #[error("{0}")]
    Invalid(String),
    /// The dialer has stopped (or is stopping) and takes no more operations.
    #[error("the dialer has stopped")]
    Stopped,
    /// The dialer's request queue is full; nothing was done, try again.
    #[error("the dialer is busy (its request queue is full); try again")]
    Busy,
}

impl OpError {
    /// Whether the spool refused the operation for a reason in the request (as opposed to the
    /// database failing).
    pub fn is_refusal(&self) -> bool {
        use spool_store::StoreError as S;
        match self {
            OpError::Store(e) => !matches!(
                e,
                S::Sqlite(_) | S::Migration(_) | S::Corrupt(_) | S::IdOutOfRange { .. }
            ),
            OpError::Stopped | OpError::Busy => false,
            _ => true,
        }
    }
}

/// Why the dialer could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the spool failed: {0}")]
    Store(#[from] spool_store::StoreError),
    #[error("campaign `{campaign}`: {source}")]
    Campaign {
        campaign: String,
        #[source]
        source: ConfigError,
    },
    #[error("the abandonment guard cannot be turned off outside simulations")]
    GuardDisabled,
    #[error("the spool failed while dialing: {0}")]
    Driver(#[from] crate::driver::DriverError<spool_store::StoreError>),
}
