//! The sessions behind open WebSocket connections. A connection outlives the
//! request that opened it, so its session is watched: once a second this
//! process asks the database, in one statement for all of them, which of the
//! watched sessions are still open, and ends the connections of the others
//! (logged out on any instance, or run out). A logout on this instance ends
//! them at once. The check runs only while some connection is open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::Store;

/// How often the watched sessions are checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Every session with an open connection in this process.
#[derive(Default)]
pub struct SessionWatch {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Token hash to its connections' count and the signal that ends them.
    sessions: HashMap<Vec<u8>, (usize, watch::Sender<bool>)>,
    checking: bool,
}

/// One connection's hold on its session: it learns when the session ends,
/// and stops the watch when dropped.
pub struct Watched {
    token_hash: Vec<u8>,
    ended: watch::Receiver<bool>,
    state: Weak<Mutex<State>>,
}

impl Watched {
    /// Completes once the session has ended.
    pub async fn ended(&mut self) {
        // A signal gone means the session's entry was removed: ended too.
        let _ = self.ended.wait_for(|ended| *ended).await;
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let Some(state) = self.state.upgrade() else { return };
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((count, _)) = state.sessions.get_mut(&self.token_hash) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.sessions.remove(&self.token_hash);
            }
        }
    }
}

impl SessionWatch {
    /// Watches the session of `token_hash` for one more connection, checking
    /// it against `store` from now on.
    pub fn watch(&self, token_hash: Vec<u8>, store: &Arc<Store>, clock: &Arc<dyn Clock>) -> Watched {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (count, signal) = state.sessions.entry(token_hash.clone()).or_insert_with(|| (0, watch::channel(false).0));
        *count += 1;
        let ended = signal.subscribe();
        if !state.checking {
            state.checking = true;
            tokio::spawn(check(Arc::downgrade(&self.state), store.clone(), clock.clone()));
        }
        Watched { token_hash, ended, state: Arc::downgrade(&self.state) }
    }

    /// Ends the connections of a session that has ended.
    pub fn end(&self, token_hash: &[u8]) {
        end(&self.state, token_hash);
    }
}

fn end(state: &Mutex<State>, token_hash: &[u8]) {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, signal)) = state.sessions.remove(token_hash) {
        signal.send_replace(true);
    }
}

/// Checks the watched sessions every second while there are any.
async fn check(state: Weak<Mutex<State>>, store: Arc<Store>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let watched: Vec<Vec<u8>> = {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            if state.sessions.is_empty() {
                state.checking = false;
                return;
            }
            state.sessions.keys().cloned().collect()
        };
        match store.open_sessions(&watched, clock.now()).await {
            Ok(open) => {
                for token_hash in watched.iter().filter(|hash| !open.contains(*hash)) {
                    end(&state, token_hash);
                }
            }
            // The connections stay until the database answers again.
            Err(error) => tracing::warn!(error = %error, "cannot check the sessions of open connections"),
        }
    }
}
