//! Network clients below the stages: protocol plumbing that more than one
//! stage speaks and that knows nothing of klaxon's own types.

pub mod dns;
pub mod pg_dsn;

/// reqwest's Display hides the cause ("error sending request"); the chain
/// says what actually went wrong (connection refused, TLS, ...).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
