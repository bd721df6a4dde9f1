//! One-shot probe runner for `klaxon probe`.
