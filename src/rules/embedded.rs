//! The rule files bundled with klaxon, compiled in by `build.rs` from the
//! repository's `rules/` and `recording_rules/` folders, so the embedded
//! default config has its rules even when the binary runs elsewhere.

include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));
