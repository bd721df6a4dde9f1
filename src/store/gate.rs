//! Who uses the SQLite connection next. Waiting happens here, not on the
//! connection's mutex: a waiter gives up once nobody got through for a
//! whole timeout (a call stuck on a frozen disk does not hold every other
//! caller forever, while a long queue that moves is just waited out), and a
//! priority waiter goes before every plain one, however many queued first.

use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    held: bool,
    priority_waiting: usize,
    /// Passes handed out so far: progress.
    passes: u64,
}

/// The right to use the connection, given back on drop.
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.state.lock().held = false;
        self.0.freed.notify_all();
    }
}

impl Gate {
    /// Waits until the connection is free (and, for a plain caller, no
    /// priority caller waits); gives up when no pass was handed out for
    /// `timeout`.
    pub(crate) fn enter(&self, priority: bool, timeout: Duration) -> Option<Pass<'_>> {
        let mut st = self.state.lock();
        if priority {
            st.priority_waiting += 1;
        }
        let mut seen = st.passes;
        let mut deadline = Instant::now() + timeout;
        let pass = loop {
            let blocked = st.held || (!priority && st.priority_waiting > 0);
            if !blocked {
                st.held = true;
                st.passes += 1;
                break Some(Pass(self));
            }
            if self.freed.wait_until(&mut st, deadline).timed_out() {
                let blocked = st.held || (!priority && st.priority_waiting > 0);
                if !blocked {
                    continue;
                }
                if st.passes == seen {
                    break None;
                }
                // Others got through: the store moves, keep waiting.
                seen = st.passes;
                deadline = Instant::now() + timeout;
            }
        };
        if priority {
            st.priority_waiting -= 1;
        }
        drop(st);
        if pass.is_none() {
            // A priority caller giving up may unblock plain ones.
            self.freed.notify_all();
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn priority_goes_before_plain_waiters_and_waits_time_out() {
        let g = Arc::new(Gate::default());
        let far = || Duration::from_secs(10);
        let first = g.enter(false, far()).unwrap();
        assert!(g.enter(false, Duration::from_millis(20)).is_none());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (name, prio, delay) in [("plain", false, 0), ("prio", true, 50)] {
            let (g, order) = (g.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                let _p = g.enter(prio, far()).unwrap();
                order.lock().push(name);
            }));
        }
        std::thread::sleep(Duration::from_millis(150));
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock(), ["prio", "plain"]);
    }
}
