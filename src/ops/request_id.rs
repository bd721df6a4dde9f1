//! Request correlation ids: the `X-Request-ID` a client (or proxy) sent when
//! it is sane, a fresh UUID v4 otherwise. The id is put in the request's
//! extensions (handlers read it with `Extension<RequestId>`, e.g. to stamp
//! the notifications an API call causes), in the tracing span, in the
//! response header and in our JSON error bodies.

use std::sync::Arc;

/// Header carrying the id both ways.
pub const HEADER: &str = "x-request-id";

/// Longest id accepted from a client: long enough for any UUID/ULID/trace
/// id, short enough that logs cannot be flooded through it.
pub const MAX_LEN: usize = 128;

/// The current request's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new random id.
    pub fn generate() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string().into())
    }

    /// The client's id when it is 1..=128 characters of `[A-Za-z0-9._:-]`
    /// (nothing that could forge a log line or a header), else a new one.
    pub fn accept_or_generate(client: Option<&str>) -> Self {
        match client {
            Some(v) if is_sane(v) => RequestId(v.into()),
            _ => Self::generate(),
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An id safe to echo in headers and logs (also the rule for command
/// correlation ids).
pub(crate) fn is_sane(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_replaces_others() {
        assert_eq!(
            RequestId::accept_or_generate(Some("abc-123:x")).as_str(),
            "abc-123:x"
        );
        for bad in ["", "a b", "x\ny", &"a".repeat(129), "ü"] {
            let id = RequestId::accept_or_generate(Some(bad));
            assert_ne!(id.as_str(), bad);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok_and(|u| u.get_version_num() == 4));
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
