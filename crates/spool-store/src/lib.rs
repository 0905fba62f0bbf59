//! spool-store (under construction).
