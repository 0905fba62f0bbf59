//! backend-sim (under construction).
