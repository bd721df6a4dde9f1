//! scrape
pub mod parser;
