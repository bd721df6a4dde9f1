//! Network clients below the stages: protocol plumbing that more than one
//! stage speaks and that knows nothing of klaxon's own types.

pub mod dns;
pub mod pg_dsn;
