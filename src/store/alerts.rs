//! Alert state across restarts (issue 4): which alerts of which rule are
//! active, since when, and their keep_firing_for state. Filled in by the
//! rules stage.

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "";
