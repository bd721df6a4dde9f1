//! Signed remote commands from the command centre.
//!
//! A command is `POST /internal/commands/{kill-switch,resume,reload,refresh}`
//! with `X-Timestamp` (unix seconds), `X-Correlation-ID` and
//! `X-Signature: sha256=<hex>` where the hex is HMAC-SHA256 with the shared
//! secret over `timestamp + "." + raw body`. Signing the timestamp with the
//! body means a captured request cannot be re-dated; the ±300 s window
//! bounds how long it stays valid, and the correlation ids seen in the last
//! 15 minutes (longer than the window) are refused as replays. Nothing is
//! applied before all checks pass.

use crate::config::Secret;
use crate::store::Store;
use hmac::{KeyInit, Mac};
use std::sync::Arc;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Largest accepted clock difference, seconds.
pub const MAX_SKEW_SECS: i64 = 300;
/// How long correlation ids are remembered (must exceed twice the skew).
pub const REMEMBER_MS: i64 = 15 * 60 * 1000;

/// The commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    KillSwitch,
    Resume,
    Reload,
    Refresh,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        match s {
            "kill-switch" => Some(Command::KillSwitch),
            "resume" => Some(Command::Resume),
            "reload" => Some(Command::Reload),
            "refresh" => Some(Command::Refresh),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::KillSwitch => "kill-switch",
            Command::Resume => "resume",
            Command::Reload => "reload",
            Command::Refresh => "refresh",
        }
    }
}

/// Why a command was refused (all answered 401 but `Store`, 500).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("commands are disabled: command_center.command_secret is not configured")]
    NoSecret,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("X-Timestamp {0:?} is not unix seconds")]
    BadTimestamp(String),
    #[error("X-Timestamp is {skew} s away from now (max {MAX_SKEW_SECS})")]
    Expired { skew: i64 },
    #[error("X-Correlation-ID must be 1..=128 characters of [A-Za-z0-9._:-]")]
    BadCorrelationId,
    #[error("X-Signature must be sha256=<64 hex digits>")]
    MalformedSignature,
    #[error("signature does not match")]
    BadSignature,
    #[error("correlation id {0:?} was already used (replay)")]
    Replayed(String),
    #[error("replay check: {0}")]
    Store(String),
}

/// The headers of a command request.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedHeaders<'a> {
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

/// Hex HMAC-SHA256 of `msg` with `key`.
pub fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    m.update(msg);
    hex(&m.finalize().into_bytes())
}

fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[usize::from(x >> 4)] as char);
        s.push(D[usize::from(x & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|c| {
            let hi = (*c.first()? as char).to_digit(16)?;
            let lo = (*c.get(1)? as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// The signature a sender puts in `X-Signature` (without `sha256=`).
pub fn sign_request(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut msg = Vec::with_capacity(timestamp.len() + 1 + body.len());
    msg.extend_from_slice(timestamp.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    hmac_hex(secret, &msg)
}

/// The ACK's `signature`: HMAC-SHA256 over
/// `status + "." + correlation_id + "." + maintenance_mode` (`true`/`false`),
/// so the command centre knows the ACK comes from a holder of the secret
/// and matches its command.
pub fn sign_ack(secret: &[u8], status: &str, correlation_id: &str, maintenance: bool) -> String {
    hmac_hex(
        secret,
        format!("{status}.{correlation_id}.{maintenance}").as_bytes(),
    )
}

/// Checks command signatures and remembers correlation ids.
pub struct CommandVerifier {
    secret: Option<Secret>,
    store: Arc<Store>,
}

impl CommandVerifier {
    pub fn new(secret: Option<Secret>, store: Arc<Store>) -> Self {
        CommandVerifier { secret, store }
    }

    pub fn secret(&self) -> Option<&[u8]> {
        self.secret.as_ref().map(|s| s.expose().as_bytes())
    }

    /// All checks, in an order where nothing is recorded for a request that
    /// is not authentic: an attacker cannot burn correlation ids.
    pub fn verify(
        &self,
        h: SignedHeaders<'_>,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), CommandError> {
        let secret = self.secret().ok_or(CommandError::NoSecret)?;
        let sig = h
            .signature
            .ok_or(CommandError::MissingHeader("X-Signature"))?;
        let ts = h
            .timestamp
            .ok_or(CommandError::MissingHeader("X-Timestamp"))?;
        let cid = h
            .correlation_id
            .ok_or(CommandError::MissingHeader("X-Correlation-ID"))?;
        let ts_secs: i64 = ts
            .trim()
            .parse()
            .map_err(|_| CommandError::BadTimestamp(ts.chars().take(32).collect()))?;
        let skew = (now_ms / 1000).saturating_sub(ts_secs);
        if skew.abs() > MAX_SKEW_SECS {
            return Err(CommandError::Expired { skew });
        }
        if !crate::ops::request_id::is_sane(cid) {
            return Err(CommandError::BadCorrelationId);
        }
        let tag = sig
            .trim()
            .strip_prefix("sha256=")
            .and_then(unhex)
            .filter(|t| t.len() == 32)
            .ok_or(CommandError::MalformedSignature)?;
        let mut m = HmacSha256::new_from_slice(secret).map_err(|_| CommandError::BadSignature)?;
        m.update(ts.as_bytes());
        m.update(b".");
        m.update(body);
        // verify_slice compares in constant time.
        m.verify_slice(&tag)
            .map_err(|_| CommandError::BadSignature)?;
        let fresh = self
            .store
            .remember_command_id(cid, now_ms, now_ms - REMEMBER_MS)
            .map_err(|e| CommandError::Store(e.to_string()))?;
        if !fresh {
            return Err(CommandError::Replayed(cid.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> CommandVerifier {
        CommandVerifier::new(
            Some(Secret::new("k")),
            Arc::new(Store::open_in_memory().unwrap()),
        )
    }

    /// The recipes of docs/operations.md ("Signing a command"), with the
    /// digests `openssl dgst -sha256 -hmac s3cret` printed for them.
    #[test]
    fn signatures_match_the_documented_openssl_recipe() {
        // printf '%s.%s' 1700000000 "$BODY" | openssl dgst -sha256 -hmac s3cret -hex
        assert_eq!(
            sign_request(
                b"s3cret",
                "1700000000",
                br#"{"reason":"database failover","operator":"ana"}"#
            ),
            "ea33ee370633039ef2590425f9d2fd7d16e129d04050a0c1d5bd07c2c266c6e8"
        );
        // printf '%s.%s.%s' acknowledged 3f1c-cid true | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign_ack(b"s3cret", "acknowledged", "3f1c-cid", true),
            "ebeab7ae05e7b1a7046c5da53f60b6acaab55e632a4c4c62e3fc3316d87c8be4"
        );
    }

    /// The clock-skew limit and the replay window at their exact edges,
    /// with the verifier's injected clock.
    #[test]
    fn skew_and_replay_window_edges() {
        let v = v();
        let body = br#"{"reason":"x","operator":"y"}"#;
        let ts_s: i64 = 1_700_000_000;
        let signed = |ts: i64| format!("sha256={}", sign_request(b"k", &ts.to_string(), body));
        let check = |ts: i64, cid: &str, now_ms: i64| {
            let sig = signed(ts);
            let ts = ts.to_string();
            v.verify(
                SignedHeaders {
                    signature: Some(&sig),
                    timestamp: Some(&ts),
                    correlation_id: Some(cid),
                },
                body,
                now_ms,
            )
        };
        let now = ts_s * 1000;
        // Exactly MAX_SKEW_SECS away, either side: accepted; one more: not.
        assert_eq!(check(ts_s - MAX_SKEW_SECS, "late-300", now), Ok(()));
        assert_eq!(check(ts_s + MAX_SKEW_SECS, "early-300", now), Ok(()));
        assert_eq!(
            check(ts_s - MAX_SKEW_SECS - 1, "late-301", now),
            Err(CommandError::Expired { skew: 301 })
        );
        assert_eq!(
            check(ts_s + MAX_SKEW_SECS + 1, "early-301", now),
            Err(CommandError::Expired { skew: -301 })
        );
        // The skew counts whole seconds of the receiver's clock: 999 ms past
        // the limit is still inside it.
        assert_eq!(check(ts_s - MAX_SKEW_SECS, "late-ms", now + 999), Ok(()));
        // A correlation id is remembered for REMEMBER_MS: replayed up to and
        // including that edge, accepted again one millisecond later.
        assert_eq!(check(ts_s, "cid", now), Ok(()));
        let edge = now + REMEMBER_MS;
        let later_ts = edge / 1000;
        assert_eq!(
            check(later_ts, "cid", edge),
            Err(CommandError::Replayed("cid".into()))
        );
        assert_eq!(check(later_ts, "cid", edge + 1), Ok(()));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verification_order_and_replay() {
        let v = v();
        let now = 1_700_000_000_000;
        let body = br#"{"reason":"x","operator":"y"}"#;
        let sig = format!("sha256={}", sign_request(b"k", "1700000000", body));
        let h = SignedHeaders {
            signature: Some(&sig),
            timestamp: Some("1700000000"),
            correlation_id: Some("c-1"),
        };
        // A tampered body is refused and does not burn the id.
        assert_eq!(v.verify(h, b"{}", now), Err(CommandError::BadSignature));
        assert_eq!(v.verify(h, body, now), Ok(()));
        assert_eq!(
            v.verify(h, body, now),
            Err(CommandError::Replayed("c-1".into()))
        );
        assert!(matches!(
            v.verify(
                SignedHeaders {
                    correlation_id: Some("c-2"),
                    ..h
                },
                body,
                now + 301_000
            ),
            Err(CommandError::Expired { skew: 301 })
        ));
        assert_eq!(
            v.verify(
                SignedHeaders {
                    signature: None,
                    ..h
                },
                body,
                now
            ),
            Err(CommandError::MissingHeader("X-Signature"))
        );
        assert_eq!(
            v.verify(
                SignedHeaders {
                    signature: Some("sha256=zz"),
                    correlation_id: Some("c-3"),
                    ..h
                },
                body,
                now
            ),
            Err(CommandError::MalformedSignature)
        );
        let none = CommandVerifier::new(None, Arc::new(Store::open_in_memory().unwrap()));
        assert_eq!(none.verify(h, body, now), Err(CommandError::NoSecret));
    }
}
