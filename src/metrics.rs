//! own metrics
