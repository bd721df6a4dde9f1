//! The routing tree: which routes (and so receivers and grouping settings)
//! an alert goes to.
//!
//! As Alertmanager: an alert enters at the root and descends into the first
//! child whose matchers accept it; with `continue: true` on that child the
//! following siblings are tried as well. A node none of whose children take
//! the alert takes it itself. Children inherit unset settings from their
//! parent at load time, so a matched node is self-contained.

use crate::model::{Labels, Matcher};
use crate::notify::matchers::{matchers_string, matches_all};
use std::time::Duration;

/// How a route groups its alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// `group_by: [...]` names.
    Labels(Vec<String>),
    /// `group_by: ['...']`: every label, i.e. one group per alert.
    All,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy::Labels(Vec::new())
    }
}

impl GroupBy {
    /// The group labels of an alert under this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => Labels::from_pairs(
                names
                    .iter()
                    .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.to_string()))),
            ),
        }
    }
}

/// One node of the tree, with inherited settings filled in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Route {
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Sorted as Alertmanager sorts them (the key depends on it).
    pub matchers: Vec<Matcher>,
    pub continue_: bool,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<Route>,
    /// Alertmanager's route key: the parent's key, `/`, this node's
    /// matchers (`{}` for the root). The prefix of every group key.
    pub key: String,
    /// Position among its siblings (for a unique id when siblings share a key).
    pub index: usize,
}

impl Route {
    /// Fills `key` and `index` for this node and its descendants.
    pub fn assign_keys(&mut self, parent_key: Option<&str>) {
        let own = matchers_string(&self.matchers);
        self.key = match parent_key {
            Some(p) => format!("{p}/{own}"),
            None => own,
        };
        let key = self.key.clone();
        for (i, c) in self.routes.iter_mut().enumerate() {
            c.index = i;
            c.assign_keys(Some(&key));
        }
    }

    /// The routes that take `labels`, in tree order; empty only when the
    /// root's own matchers reject it (a root has none, so never for it).
    pub fn match_labels<'a>(&'a self, labels: &Labels) -> Vec<&'a Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !matches_all(&self.matchers, labels) {
            return false;
        }
        let before = out.len();
        for c in &self.routes {
            let took = c.collect(labels, out);
            if took && !c.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Labels;
    use crate::notify::config::load_str;

    fn receivers(yaml: &str, labels: &[(&str, &str)]) -> Vec<String> {
        let c = load_str(yaml, "t.yml", None).unwrap();
        let l = Labels::from_pairs(labels.iter().copied());
        c.route
            .match_labels(&l)
            .iter()
            .map(|r| r.receiver.clone())
            .collect()
    }

    #[test]
    fn upstream_routing_testdata() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/upstream/alertmanager/cli/testdata/"
        );
        let Ok(routing) = std::fs::read_to_string(format!("{dir}conf.routing.yml")) else {
            assert!(std::env::var("CI").is_err(), "shared data missing under CI");
            return;
        };
        let reverted = std::fs::read_to_string(format!("{dir}conf.routing-reverted.yml")).unwrap();
        assert_eq!(receivers(&routing, &[("test", "1")]), ["test1"]);
        assert_eq!(receivers(&routing, &[("test", "2")]), ["test1", "test2"]);
        assert_eq!(receivers(&reverted, &[("test", "2")]), ["test2", "test1"]);
        assert_eq!(receivers(&routing, &[("test", "volovina")]), ["default"]);
    }

    #[test]
    fn nested_fallback_and_continue() {
        let y = "route:\n  receiver: root\n  routes:\n  - matchers: [team=a]\n    receiver: a\n    routes:\n    - matchers: [sev=page]\n      receiver: a-pager\n  - matchers: [team=~a|b]\n    receiver: ab\n  - matchers: [team=a]\n    continue: true\n    receiver: never\nreceivers: [{name: root}, {name: a}, {name: a-pager}, {name: ab}, {name: never}]\n";
        assert_eq!(receivers(y, &[("team", "a"), ("sev", "page")]), ["a-pager"]);
        assert_eq!(receivers(y, &[("team", "a")]), ["a"]);
        assert_eq!(receivers(y, &[("team", "b")]), ["ab"]);
        assert_eq!(receivers(y, &[("team", "c")]), ["root"]);
        let c = load_str(y, "t.yml", None).unwrap();
        assert_eq!(
            c.route.routes[0].routes[0].key,
            "{}/{team=\"a\"}/{sev=\"page\"}"
        );
    }
}
