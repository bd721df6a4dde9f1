//! URL query encoding, shared by scrape URLs (`params`, `__param_*`) and the
//! templates' `urlquery`/`urlQueryEscape`.

/// Go's `url.QueryEscape`: RFC 3986 unreserved bytes stay, space becomes
/// `+`, everything else is percent-encoded.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
