//! Modules take turns: while a test of one module runs a server, tests of other modules wait
//! before starting theirs, so tests overlap only with tests of their own module, as when each
//! module was a test binary of its own (cargo runs binaries one after another). A storm, a
//! memory bound or a stall time-out was written for the company of its own module's tests,
//! not for any two of the suite's at once on two cores.

use std::sync::{Condvar, Mutex};

/// The module whose tests hold turns, and how many turns are held.
static TURNS: Mutex<(Option<String>, usize)> = Mutex::new((None, 0));
static TURN_ENDED: Condvar = Condvar::new();

/// Held while a test's server runs (a field of `Server`).
pub struct Turn(());

impl Turn {
    /// Waits until no other module's test holds a turn. The module is the first part of the
    /// test's name, which is its thread's name; a server started from another thread (a
    /// runtime's worker, or a single test thread) takes no turn.
    pub fn take() -> Option<Turn> {
        let thread = std::thread::current();
        let (module, _) = thread.name()?.split_once("::")?;
        let mut turns = TURNS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while turns.0.as_deref().is_some_and(|holder| holder != module) {
            turns = TURN_ENDED
                .wait(turns)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        turns.0 = Some(module.to_owned());
        turns.1 += 1;
        Some(Turn(()))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = TURNS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        turns.1 -= 1;
        if turns.1 == 0 {
            turns.0 = None;
            TURN_ENDED.notify_all();
        }
    }
}
