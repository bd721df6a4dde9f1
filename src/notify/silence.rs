//! Silences: matchers plus a time window that mute matching alerts.
//!
//! Semantics follow Alertmanager 0.25: a silence is pending before
//! `startsAt`, active until `endsAt`, expired after; an update that changes
//! the matchers or the start of an active silence expires the old one and
//! creates a new id; expiring sets `endsAt` to now. Every change is written
//! to the store so silences survive a restart.

use crate::model::{MatchType, Matcher, Timestamp};
use crate::notify::matchers::matches_all;
use crate::store::Store;
use parking_lot::RwLock;
use serde_json::json;
use std::sync::Arc;

/// Expired silences are kept this long (Alertmanager's `--data.retention`
/// default), then forgotten.
pub const RETENTION_MS: i64 = 120 * 3600 * 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

/// A silence's state at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if self.ends_at <= now {
            SilenceState::Expired
        } else if self.starts_at > now {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// The API v2 `gettableSilence` shape.
    pub fn to_json(&self, now: Timestamp) -> serde_json::Value {
        json!({
            "id": self.id,
            "matchers": self.matchers.iter().map(matcher_json).collect::<Vec<_>>(),
            "startsAt": crate::model::time::rfc3339_millis(self.starts_at),
            "endsAt": crate::model::time::rfc3339_millis(self.ends_at),
            "updatedAt": crate::model::time::rfc3339_millis(self.updated_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(now).as_str()},
        })
    }

    /// Parses the stored/API JSON body back (the inverse of `to_json`).
    pub fn from_json(v: &serde_json::Value) -> Result<Silence, SilenceError> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let t = |k: &str| -> Result<Timestamp, SilenceError> {
            let raw = s(k);
            crate::model::time::parse_rfc3339(&raw)
                .ok_or_else(|| SilenceError::Invalid(format!("{k}: invalid time {raw:?}")))
        };
        let mut matchers = Vec::new();
        for m in v
            .get("matchers")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
        {
            matchers.push(matcher_from_json(m)?);
        }
        Ok(Silence {
            id: s("id"),
            matchers,
            starts_at: t("startsAt")?,
            ends_at: t("endsAt")?,
            updated_at: t("updatedAt").unwrap_or(0),
            created_by: s("createdBy"),
            comment: s("comment"),
        })
    }
}

/// `{name, value, isRegex, isEqual}`.
pub fn matcher_json(m: &Matcher) -> serde_json::Value {
    json!({
        "name": m.name,
        "value": m.value,
        "isRegex": matches!(m.kind, MatchType::RegexMatch | MatchType::RegexNoMatch),
        "isEqual": matches!(m.kind, MatchType::Equal | MatchType::RegexMatch),
    })
}

pub fn matcher_from_json(m: &serde_json::Value) -> Result<Matcher, SilenceError> {
    let name = m.get("name").and_then(|x| x.as_str());
    let value = m.get("value").and_then(|x| x.as_str());
    let (Some(name), Some(value)) = (name, value) else {
        return Err(SilenceError::Invalid("matcher needs name and value".into()));
    };
    let is_regex = m.get("isRegex").and_then(|x| x.as_bool()).unwrap_or(false);
    // Absent isEqual means "=" (clients older than the field).
    let is_equal = m.get("isEqual").and_then(|x| x.as_bool()).unwrap_or(true);
    let kind = match (is_regex, is_equal) {
        (false, true) => MatchType::Equal,
        (false, false) => MatchType::NotEqual,
        (true, true) => MatchType::RegexMatch,
        (true, false) => MatchType::RegexNoMatch,
    };
    Matcher::new(kind, name, value).map_err(|e| SilenceError::Invalid(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    /// Alertmanager's message, without the id.
    #[error("silence not found")]
    NotFound(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// All silences, in memory and (when given) in the store.
pub struct Silences {
    items: RwLock<Vec<Silence>>,
    store: Option<Arc<Store>>,
    /// Serializes changes. A change is stored first and applied to `items`
    /// after: the list (read by every flush and API call) is never locked
    /// while the store writes.
    writes: parking_lot::Mutex<()>,
}

fn new_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        // No urandom: time and a per-process counter still give unique ids.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&(crate::model::now_millis() as u64).to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Silences {
    /// Loads the stored silences (dropping those past retention).
    pub fn new(store: Option<Arc<Store>>) -> Result<Silences, SilenceError> {
        let mut items = Vec::new();
        let now = crate::model::now_millis();
        if let Some(st) = &store {
            for (id, body) in crate::store::silences::load_all(st)? {
                let parsed = serde_json::from_str::<serde_json::Value>(&body)
                    .map_err(|e| SilenceError::Invalid(e.to_string()))
                    .and_then(|v| Silence::from_json(&v));
                match parsed {
                    Ok(s) if s.ends_at + RETENTION_MS > now => items.push(s),
                    Ok(_) => crate::store::silences::delete(st, &id)?,
                    Err(e) => tracing::warn!(id, error = %e, "skipping unreadable stored silence"),
                }
            }
        }
        Ok(Silences {
            items: RwLock::new(items),
            store,
            writes: Default::default(),
        })
    }

    /// Where the silences persist, if anywhere.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// Puts `s` in place of the silence with its id (or adds it).
    fn apply(&self, s: Silence) {
        let mut items = self.items.write();
        match items.iter_mut().find(|p| p.id == s.id) {
            Some(p) => *p = s,
            None => items.push(s),
        }
    }

    /// Replaces the list by the store's: with a store shared by an HA
    /// pair, silences the other replica created or expired appear here.
    pub fn reload(&self) -> Result<(), SilenceError> {
        let Some(st) = &self.store else {
            return Ok(());
        };
        let fresh = Self::new(Some(st.clone()))?;
        *self.items.write() = fresh.items.into_inner();
        Ok(())
    }

    fn persist(&self, s: &Silence) -> Result<(), SilenceError> {
        if let Some(st) = &self.store {
            crate::store::silences::put(st, &s.id, &s.to_json(0).to_string())?;
        }
        Ok(())
    }

    fn validate(s: &Silence) -> Result<(), SilenceError> {
        if s.matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "at least one matcher required".into(),
            ));
        }
        if s.matchers.iter().all(|m| m.matches("")) {
            return Err(SilenceError::Invalid(
                "at least one matcher must not match the empty string".into(),
            ));
        }
        if s.ends_at < s.starts_at {
            return Err(SilenceError::Invalid(
                "end time must not be before start time".into(),
            ));
        }
        Ok(())
    }

    /// Creates or updates a silence (`id` empty = create); returns its id.
    pub fn set(&self, mut s: Silence, now: Timestamp) -> Result<String, SilenceError> {
        Self::validate(&s)?;
        if s.ends_at <= now {
            return Err(SilenceError::Invalid(
                "end time can't be in the past".into(),
            ));
        }
        let _serial = self.writes.lock();
        if !s.id.is_empty() {
            let Some(mut prev) = self.get(&s.id) else {
                return Err(SilenceError::NotFound(s.id));
            };
            let state = prev.state(now);
            let in_place = prev.matchers == s.matchers
                && match state {
                    SilenceState::Active => s.starts_at == prev.starts_at,
                    SilenceState::Pending => s.starts_at >= now,
                    SilenceState::Expired => false,
                };
            if in_place {
                s.updated_at = now;
                self.persist(&s)?;
                self.apply(s.clone());
                return Ok(s.id);
            }
            if state != SilenceState::Expired {
                expire_in_place(&mut prev, now);
                self.persist(&prev)?;
                self.apply(prev);
            }
        }
        s.id = new_id();
        s.starts_at = s.starts_at.max(now);
        s.updated_at = now;
        self.persist(&s)?;
        self.apply(s.clone());
        Ok(s.id)
    }

    /// Expires a silence now.
    pub fn expire(&self, id: &str, now: Timestamp) -> Result<(), SilenceError> {
        let _serial = self.writes.lock();
        let Some(mut s) = self.get(id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        if s.state(now) == SilenceState::Expired {
            return Err(SilenceError::AlreadyExpired(id.to_string()));
        }
        expire_in_place(&mut s, now);
        self.persist(&s)?;
        self.apply(s);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.items.read().iter().find(|s| s.id == id).cloned()
    }

    pub fn list(&self) -> Vec<Silence> {
        self.items.read().clone()
    }

    /// Ids of the active silences that match `labels`.
    pub fn mutes(&self, labels: &crate::model::Labels, now: Timestamp) -> Vec<String> {
        self.items
            .read()
            .iter()
            .filter(|s| s.state(now) == SilenceState::Active && matches_all(&s.matchers, labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Forgets silences expired longer than retention ago.
    pub fn gc(&self, now: Timestamp) -> Result<usize, SilenceError> {
        let mut items = self.items.write();
        let (keep, drop_): (Vec<_>, Vec<_>) = std::mem::take(&mut *items)
            .into_iter()
            .partition(|s| s.ends_at + RETENTION_MS > now);
        *items = keep;
        drop(items);
        if let Some(st) = &self.store {
            for s in &drop_ {
                crate::store::silences::delete(st, &s.id)?;
            }
        }
        Ok(drop_.len())
    }
}

fn expire_in_place(s: &mut Silence, now: Timestamp) {
    if s.starts_at > now {
        s.starts_at = now;
    }
    s.ends_at = now;
    s.updated_at = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn sil(m: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers: crate::notify::matchers::parse_matchers(m).unwrap(),
            starts_at: start,
            ends_at: end,
            updated_at: 0,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn states_mute_and_expire() {
        let s = Silences::new(None).unwrap();
        let id = s.set(sil("a=1", 1000, 5000), 1000).unwrap();
        let pend = s.set(sil("a=1", 3000, 5000), 1000).unwrap();
        let l = Labels::from_pairs([("a", "1")]);
        assert_eq!(s.mutes(&l, 2000), std::slice::from_ref(&id));
        assert_eq!(s.mutes(&l, 3000).len(), 2);
        assert!(s.mutes(&Labels::from_pairs([("a", "2")]), 2000).is_empty());
        assert_eq!(s.get(&pend).unwrap().state(2000), SilenceState::Pending);
        s.expire(&id, 2500).unwrap();
        assert!(s.mutes(&l, 2600).is_empty());
        assert!(matches!(
            s.expire(&id, 2600),
            Err(SilenceError::AlreadyExpired(_))
        ));
        assert!(matches!(
            s.expire("nope", 2600),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn update_in_place_or_replace() {
        let s = Silences::new(None).unwrap();
        let id = s.set(sil("a=1", 1000, 5000), 1000).unwrap();
        let mut u = s.get(&id).unwrap();
        u.comment = "new".into();
        u.ends_at = 9000;
        assert_eq!(s.set(u, 2000).unwrap(), id);
        let mut u = s.get(&id).unwrap();
        u.matchers = crate::notify::matchers::parse_matchers("a=2").unwrap();
        let id2 = s.set(u, 2000).unwrap();
        assert_ne!(id2, id);
        assert_eq!(s.get(&id).unwrap().state(2000), SilenceState::Expired);
    }

    #[test]
    fn invalid_silences_rejected() {
        let s = Silences::new(None).unwrap();
        assert!(s.set(sil("a=~.*", 0, 5000), 1000).is_err());
        assert!(s.set(sil("a=1", 0, 500), 1000).is_err());
        assert!(s.set(sil("a=1", 3000, 2000), 1000).is_err());
    }

    #[test]
    fn persisted_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let st = Arc::new(Store::open(dir.path()).unwrap());
        let now = crate::model::now_millis();
        let id = {
            let s = Silences::new(Some(st.clone())).unwrap();
            s.set(sil(r#"job=~"a|b""#, now, now + 60_000), now).unwrap()
        };
        let s = Silences::new(Some(st)).unwrap();
        let got = s.get(&id).unwrap();
        assert_eq!(got.matchers[0].kind, MatchType::RegexMatch);
        assert_eq!(got.created_by, "me");
        assert_eq!(
            s.mutes(&Labels::from_pairs([("job", "b")]), now + 1).len(),
            1
        );
    }
}
