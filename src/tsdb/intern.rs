//! The symbol table: every label name and value string is stored once, and
//! series and postings refer to it by a `u32` id.
//!
//! Symbols are reference counted by the series that use them (one count per
//! series per occurrence), so retention frees the strings of series it drops
//! and reuses their ids: a target that churns pod names does not grow the
//! table forever. An id is only reused once no series and no postings entry
//! refers to it (the head removes postings before it releases symbols).

use std::collections::HashMap;
use std::sync::Arc;

/// A symbol id.
pub type Sym = u32;

/// Label strings come from scraped targets: a seeded hash, but a fast one
/// (every new series interns all its names and values).
type StrBuild = foldhash::quality::RandomState;

#[derive(Debug, Default)]
pub struct Symbols {
    ids: HashMap<Arc<str>, Sym, StrBuild>,
    strs: Vec<Option<Arc<str>>>,
    refs: Vec<u32>,
    free: Vec<Sym>,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s` if some live series uses it.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// The string of a live id.
    pub fn resolve(&self, id: Sym) -> Option<&str> {
        self.strs.get(id as usize)?.as_deref()
    }

    /// Interns `s` and takes one reference on it.
    pub fn acquire(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            if let Some(r) = self.refs.get_mut(id as usize) {
                *r = r.saturating_add(1);
            }
            return id;
        }
        let arc: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                if let (Some(slot), Some(r)) = (
                    self.strs.get_mut(id as usize),
                    self.refs.get_mut(id as usize),
                ) {
                    *slot = Some(arc.clone());
                    *r = 1;
                }
                id
            }
            None => {
                let id = self.strs.len() as Sym;
                self.strs.push(Some(arc.clone()));
                self.refs.push(1);
                id
            }
        };
        self.ids.insert(arc, id);
        id
    }

    /// Drops one reference; the string is freed and the id recycled at zero.
    pub fn release(&mut self, id: Sym) {
        let Some(r) = self.refs.get_mut(id as usize) else {
            return;
        };
        if *r == 0 {
            return;
        }
        *r -= 1;
        if *r == 0 {
            if let Some(s) = self.strs.get_mut(id as usize).and_then(Option::take) {
                self.ids.remove(&s);
            }
            self.free.push(id);
        }
    }

    /// Number of live symbols.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Estimated heap bytes: the map, the id-indexed vectors and the strings.
    pub fn memory_bytes(&self) -> usize {
        let strings: usize = self
            .strs
            .iter()
            .flatten()
            .map(|s| super::mem::block(s.len() + 2 * std::mem::size_of::<usize>()))
            .sum();
        super::mem::hashmap_bytes::<Arc<str>, Sym>(self.ids.capacity())
            + self.strs.capacity() * std::mem::size_of::<Option<Arc<str>>>()
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
            + strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcounted_ids_are_recycled() {
        let mut s = Symbols::new();
        let a = s.acquire("job");
        let b = s.acquire("node");
        assert_eq!(s.acquire("job"), a);
        assert_ne!(a, b);
        assert_eq!(s.resolve(a), Some("job"));
        s.release(a);
        assert_eq!(s.lookup("job"), Some(a), "one reference left");
        s.release(a);
        assert_eq!(s.lookup("job"), None);
        assert_eq!(s.resolve(a), None);
        let c = s.acquire("instance");
        assert_eq!(c, a, "freed id reused");
        assert_eq!(s.resolve(c), Some("instance"));
        assert_eq!(s.len(), 2);
        // Releasing an unknown or dead id is harmless.
        s.release(999);
        s.release(b);
        s.release(b);
        assert_eq!(s.len(), 1);
    }
}
