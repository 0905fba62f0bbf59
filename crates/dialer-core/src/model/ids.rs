//! Identifiers. Newtypes so a record id can never be passed where a call id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        id_type!(@ $(#[$doc])* #[derive(PartialEq)] $name, $inner);
    };
    // Text ids compare equal by their text; `text_id!` adds `PartialEq`.
    ($(#[$doc:meta])* text $name:ident, $inner:ty) => {
        id_type!(@ $(#[$doc])* $name, $inner);
    };
    (@ $(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        // A text id's hand-written `PartialEq` is equality of the text, which is what the
        // derived `Hash` hashes.
        #[allow(clippy::derived_hash_with_manual_eq)]
        #[derive(Debug, Clone, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A campaign's name, unique in a deployment. Shared text: it is copied into most
    /// outputs, and a copy is a reference count, not an allocation.
    text CampaignId,
    Arc<str>
);
id_type!(
    /// An agent's login name (shared text, like [`CampaignId`]).
    text AgentId,
    Arc<str>
);
id_type!(
    /// A spool record. Assigned by the store.
    RecordId,
    u64
);
id_type!(
    /// A scheduled call (callback). Assigned by the store.
    ScheduleId,
    u64
);
id_type!(
    /// A dialer task. Assigned by the store.
    TaskId,
    u64
);

/// One dial attempt, minted by the engine. Also names the attempt in the ledger and is the
/// seed of the backend's channel ids, so every event of a call can be traced back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

macro_rules! text_id {
    ($name:ident) => {
        /// Equal when the text is: copies of one id share their text, so the pointers are
        /// compared first and the bytes only when they differ (ids are compared on every
        /// agent and call lookup).
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.into())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s.into())
            }
        }

        impl $name {
            /// The text of the id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

text_id!(CampaignId);
text_id!(AgentId);
