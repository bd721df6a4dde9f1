//! Scheduled probes written into the head.
