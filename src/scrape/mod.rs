//! scrape
pub mod relabel;
