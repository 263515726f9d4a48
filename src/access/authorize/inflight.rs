//! Questions to `--authorize-url` in flight, merged (DESIGN.md §17): after a drain or a restart a
//! crowd of browsers with the same cookie comes back within a second, every one of them misses
//! the cache (no answer yet), and the backend would get them all. Here the first asks; the
//! others with the same key wait for its answer, failure included (nothing is kept of a failure:
//! the next one after it asks again).
//!
//! The question runs in a task of its own, so that it ends (within `--authorize-timeout`) even
//! when the client that asked goes away: the waiters still get it. A waiter that goes away only
//! drops its share. The entry goes when the task ends, however it ends (a guard's `Drop`), so
//! none is left behind: the map holds only questions being asked.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use prometheus_client::metrics::counter::Counter;

use super::cache::Key;

/// One question being asked: every waiter polls a share of the task's answer.
type Flight<T> = Shared<BoxFuture<'static, Option<T>>>;
type Flights<T> = Arc<Mutex<HashMap<Key, Flight<T>>>>;

/// The questions being asked, by key, and how many requests waited for one instead of asking.
#[derive(Debug)]
pub struct InFlight<T> {
    flights: Flights<T>,
    merged: Counter,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight {
            flights: Arc::default(),
            merged: Counter::default(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> InFlight<T> {
    /// `sse_broadcast_authorize_merged_total`: requests that waited for a question in flight.
    pub fn merged(&self) -> Counter {
        self.merged.clone()
    }

    /// The answer to the question `key` names: the one in flight if there is one, else the one
    /// `ask` makes, asked in a task of its own. `None` when the task gave none (a panic).
    pub async fn answer<F>(&self, key: Key, ask: impl FnOnce() -> F) -> Option<T>
    where
        F: Future<Output = Option<T>> + Send + 'static,
    {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            match flights.get(&key) {
                Some(flight) => {
                    self.merged.inc();
                    flight.clone()
                }
                None => {
                    let landing = Landing {
                        flights: self.flights.clone(),
                        key,
                    };
                    let question = ask();
                    // The guard removes the entry when the task ends; it waits for this lock, so
                    // the entry is in the map before it can go.
                    let task = tokio::spawn(async move {
                        let _landing = landing;
                        question.await
                    });
                    let flight = task.map(|joined| joined.ok().flatten()).boxed().shared();
                    flights.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.flights.lock().unwrap().len()
    }
}

/// Takes a question's entry out of the map when its task ends, answered, failed or panicked.
struct Landing<T> {
    flights: Flights<T>,
    key: Key,
}

impl<T> Drop for Landing<T> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn the_same_question_is_asked_once_and_the_entry_goes() {
        let flights = Arc::new(InFlight::<u32>::default());
        let (answer, answered) = oneshot::channel();
        let first = tokio::spawn({
            let flights = flights.clone();
            async move {
                flights
                    .answer([1; 32], || async { answered.await.ok() })
                    .await
            }
        });
        while flights.len() == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let flights = flights.clone();
            async move {
                flights
                    .answer([1; 32], || async { panic!("asked twice") })
                    .await
            }
        });
        while flights.merged.get() == 0 {
            tokio::task::yield_now().await;
        }
        let other = flights.answer([2; 32], || async { Some(2) });
        assert_eq!(other.await, Some(2));
        // The first one's client goes away: the question is still answered for the second.
        first.abort();
        answer.send(7).unwrap();
        assert_eq!(second.await.unwrap(), Some(7));
        assert_eq!(flights.merged.get(), 1);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_question_that_panics_answers_none_and_leaves_nothing() {
        let flights = InFlight::<u32>::default();
        let answer = flights.answer([1; 32], || async { panic!("the backend call failed") });
        assert_eq!(answer.await, None);
        assert_eq!(flights.len(), 0);
        assert_eq!(flights.answer([1; 32], || async { Some(3) }).await, Some(3));
    }
}
