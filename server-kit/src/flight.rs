//! One fetch at a time of a document a server caches from a peer (an upstream's discovery
//! document or keys, a backend's JWKS, a permission service's answer), and the memory of a
//! failed one.
//!
//! A [`Flight`] holds the value last fetched (with the time of the injected clock it was
//! fetched at) and the failure of the last fetch, if it failed. A caller that can use the cached
//! value takes it at once; so does a caller that finds a failure younger than the caller's
//! `remember_secs`, as the caller's error type says a remembered failure
//! ([`Remembered::remembered`], with when the peer is tried again). Any other caller waits for its turn to fetch (an async mutex per document, so the
//! callers of other upstreams and documents never wait); whoever finds, once its turn comes, that
//! a fetch finished while it waited takes that fetch's outcome instead of fetching again. So
//! however many logins need a document at once, it is fetched once, and a dead or frozen
//! upstream costs one wait of its timeout per failure window, not one per login. A success
//! clears the failure; a fetch whose caller goes away leaves no outcome, and the next caller in
//! line fetches.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Seconds since the Unix epoch, as the caller's injected clock reads them.
pub type UnixTime = i64;

/// An error type a [`Flight`] can remember: what a failure said, and the error a later caller
/// gets from the memory of it.
pub trait Remembered: Sized {
    /// What this failure says, kept for the callers after it.
    fn description(&self) -> String;
    /// The error of a remembered failure that said `description`; the peer is tried again in
    /// `retry_in_secs` (0: at the next call).
    fn remembered(description: String, retry_in_secs: u64) -> Self;
}

/// A cached document, fetched by one caller at a time.
pub struct Flight<T> {
    state: Mutex<State<T>>,
    turn: tokio::sync::Mutex<()>,
}

/// What the fetches so far left (never held across an await).
struct State<T> {
    /// The value of the last successful fetch, and when it was fetched.
    value: Option<(Arc<T>, UnixTime)>,
    /// The failure of the last fetch, if it failed.
    failure: Option<Failure>,
    /// How many fetches have finished.
    finished: u64,
}

/// A failed fetch, remembered.
struct Failure {
    /// What the error said.
    description: String,
    /// Until when callers are answered with it instead of fetching again.
    until: UnixTime,
}

impl<T> Default for Flight<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                value: None,
                failure: None,
                finished: 0,
            }),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T> std::fmt::Debug for Flight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight").finish_non_exhaustive()
    }
}

impl Failure {
    /// The error a caller gets from this failure at `now`.
    fn error<E: Remembered>(&self, now: UnixTime) -> E {
        let left = u64::try_from(self.until - now).unwrap_or(0);
        E::remembered(self.description.clone(), left)
    }
}

impl<T> State<T> {
    /// The cached value, if `usable` accepts the time it was fetched at.
    fn usable(&self, usable: impl Fn(UnixTime) -> bool) -> Option<Arc<T>> {
        self.value
            .as_ref()
            .filter(|(_, at)| usable(*at))
            .map(|(value, _)| value.clone())
    }

    /// The remembered failure, while it is remembered at `now`.
    fn remembered<E: Remembered>(&self, now: UnixTime) -> Option<E> {
        self.failure
            .as_ref()
            .filter(|failure| now < failure.until)
            .map(|failure| failure.error(now))
    }

    /// The outcome of the fetch that finished last.
    fn last_outcome<E: Remembered>(&self, now: UnixTime) -> Option<Result<Arc<T>, E>> {
        if let Some(failure) = &self.failure {
            return Some(Err(failure.error(now)));
        }
        self.value.as_ref().map(|(value, _)| Ok(value.clone()))
    }
}

impl<T> Flight<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of the last successful fetch, however old (what a caller may fall back to
    /// when a fetch fails).
    pub fn last_value(&self) -> Option<Arc<T>> {
        self.state().value.as_ref().map(|(value, _)| value.clone())
    }

    /// The document at `now`: the cached value if `usable` accepts the time it was fetched at;
    /// else the remembered failure while it is younger than `remember_secs`; else the outcome of
    /// a fetch — the one in progress, or `fetch` run by this caller when its turn comes.
    pub async fn get<E, F, Fut>(
        &self,
        now: UnixTime,
        remember_secs: i64,
        usable: impl Fn(UnixTime) -> bool,
        fetch: F,
    ) -> Result<Arc<T>, E>
    where
        E: Remembered,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let seen = {
            let state = self.state();
            if let Some(value) = state.usable(&usable) {
                return Ok(value);
            }
            if let Some(error) = state.remembered(now) {
                return Err(error);
            }
            state.finished
        };
        let _turn = self.turn.lock().await;
        {
            let state = self.state();
            if state.finished != seen
                && let Some(outcome) = state.last_outcome(now)
            {
                return outcome;
            }
        }
        let outcome = fetch().await;
        let mut state = self.state();
        state.finished += 1;
        match outcome {
            Ok(value) => {
                let value = Arc::new(value);
                state.value = Some((value.clone(), now));
                state.failure = None;
                Ok(value)
            }
            Err(error) => {
                state.failure = Some(Failure {
                    description: error.description(),
                    until: now.saturating_add(remember_secs),
                });
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    /// A peer that is down, as a caller's error type says it.
    #[derive(Debug)]
    struct Down(String);

    impl Remembered for Down {
        fn description(&self) -> String {
            self.0.clone()
        }

        fn remembered(description: String, retry_in_secs: u64) -> Self {
            if retry_in_secs == 0 {
                return Self(description);
            }
            Self(format!(
                "{description} (it failed moments ago; it is tried again in {retry_in_secs} s)"
            ))
        }
    }

    type Result<T, E = Down> = std::result::Result<T, E>;

    fn description(result: Result<Arc<u32>>) -> String {
        match result {
            Err(Down(description)) => description,
            other => panic!("not down: {other:?}"),
        }
    }

    /// A hundred callers that all need a fetch (nothing cached is ever usable here, so a caller
    /// that did not wait for the one fetch would fetch again): `fetch` runs once, when all of
    /// them are waiting, and every caller gets its outcome.
    async fn hundred_callers(outcome: fn() -> Result<u32>) -> (usize, Vec<Result<Arc<u32>>>) {
        let flight = Arc::new(Flight::<u32>::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let (flight, fetches, entered) = (flight.clone(), fetches.clone(), entered.clone());
                tokio::spawn(async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    flight
                        .get(
                            NOW,
                            10,
                            |_| false,
                            || async {
                                fetches.fetch_add(1, Ordering::SeqCst);
                                // On this single-threaded runtime a caller runs without a pause from
                                // entering until it waits for its turn: once all have entered, all
                                // wait.
                                while entered.load(Ordering::SeqCst) < 100 {
                                    tokio::task::yield_now().await;
                                }
                                outcome()
                            },
                        )
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for caller in callers {
            results.push(caller.await.unwrap());
        }
        (fetches.load(Ordering::SeqCst), results)
    }

    #[tokio::test]
    async fn a_hundred_callers_needing_a_fetch_share_one() {
        let (fetches, results) = hundred_callers(|| Ok(7)).await;
        assert_eq!(fetches, 1);
        assert!(results.iter().all(|r| matches!(r, Ok(v) if **v == 7)));
    }

    #[tokio::test]
    async fn a_hundred_callers_share_one_failure_and_ninety_nine_hear_it_was_remembered() {
        let (fetches, results) =
            hundred_callers(|| Err(Down("down: connection failed".into()))).await;
        assert_eq!(fetches, 1);
        let descriptions: Vec<String> = results.into_iter().map(description).collect();
        let plain = descriptions
            .iter()
            .filter(|d| *d == "down: connection failed")
            .count();
        let remembered = descriptions
            .iter()
            .filter(|d| {
                *d == "down: connection failed (it failed moments ago; it is tried again in 10 s)"
            })
            .count();
        assert_eq!((plain, remembered), (1, 99), "{descriptions:?}");
    }

    #[tokio::test]
    async fn a_failure_is_remembered_for_its_window_and_a_success_clears_it() {
        let flight = Flight::<u32>::default();
        let fetches = AtomicUsize::new(0);
        let fetch = |outcome: Result<u32>| {
            fetches.fetch_add(1, Ordering::SeqCst);
            async move { outcome }
        };
        let fresh = |_: UnixTime| true;
        let failed = flight
            .get(NOW, 10, fresh, || {
                fetch(Err(Down("discovery: timed out".into())))
            })
            .await;
        assert_eq!(description(failed), "discovery: timed out");
        let again = flight.get(NOW + 4, 10, fresh, || fetch(Ok(1))).await;
        assert_eq!(
            description(again),
            "discovery: timed out (it failed moments ago; it is tried again in 6 s)"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Once the window is over the upstream is tried again; the success is cached.
        let value = flight.get(NOW + 10, 10, fresh, || fetch(Ok(2))).await;
        assert_eq!(*value.unwrap(), 2);
        let cached = flight.get(NOW + 11, 10, fresh, || fetch(Ok(3))).await;
        assert_eq!(*cached.unwrap(), 2);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // The success cleared the failure: a stale value is fetched again at once.
        let refetched = flight.get(NOW + 11, 10, |_| false, || fetch(Ok(4))).await;
        assert_eq!(*refetched.unwrap(), 4);
        // Without a window (failure_cache_secs = 0) every caller tries again.
        let failed = flight
            .get(
                NOW + 12,
                0,
                |_| false,
                || fetch(Err(Down("keys: 500".into()))),
            )
            .await;
        assert_eq!(description(failed), "keys: 500");
        let value = flight.get(NOW + 12, 0, |_| false, || fetch(Ok(5))).await;
        assert_eq!(*value.unwrap(), 5);
        assert_eq!(fetches.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_fetch_whose_caller_went_away_leaves_the_next_caller_to_fetch() {
        let flight = Flight::<u32>::default();
        let abandoned = flight.get::<Down, _, _>(NOW, 10, |_| false, std::future::pending);
        // Polled once, the abandoned caller holds the turn; dropped, it leaves no outcome.
        assert!(pending_after_one_poll(abandoned).await);
        let value: Result<_> = flight.get(NOW, 10, |_| false, || async { Ok(9) }).await;
        assert_eq!(*value.unwrap(), 9);
    }

    /// Polls `future` once and drops it; whether it was still pending.
    async fn pending_after_one_poll<F: Future>(future: F) -> bool {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_pending()))
            .await
    }
}
