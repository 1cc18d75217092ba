//! Background garbage collection. Each server says which of its records have expired; this
//! module pages through a tree removing them, and runs a server's whole sweep on an interval on
//! a blocking thread, away from the request workers.
//!
//! A record is removed by compare-and-swap against the exact bytes that were judged expired, so
//! one that changed in between (a refresh, a redemption, a status change) stays for the next
//! sweep: a sweep never undoes a write it did not see.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::Result;
use crate::store::{Store, Tree};

/// Records read per page.
const PAGE: usize = 512;

/// `[cleanup]`: how often the background sweep runs and how long expired records stay readable.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupConfig {
    /// Seconds between sweeps; 0 switches the background sweep off.
    pub interval_secs: u64,
    /// Seconds an expired (or finished and expired) record is kept before it is removed, so a
    /// client polling it late still reads its final state.
    pub keep_expired_secs: i64,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            keep_expired_secs: 3600,
        }
    }
}

impl CleanupConfig {
    /// Refuses a negative retention.
    pub fn validate(&self) -> Result<()> {
        if self.keep_expired_secs < 0 {
            return Err(crate::Error::Config(
                "cleanup.keep_expired_secs must not be negative".into(),
            ));
        }
        Ok(())
    }

    /// The background sweep, unless switched off.
    pub fn start(&self, service: &'static str, sweep: Arc<Sweep>) -> Option<Sweeper> {
        (self.interval_secs > 0)
            .then(|| Sweeper::start(service, Duration::from_secs(self.interval_secs), sweep))
    }
}

/// Removes every record of `tree` for which `expired(key, value)` holds; returns what went.
pub fn remove_where(
    store: &dyn Store,
    tree: Tree,
    mut expired: impl FnMut(&str, &[u8]) -> bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut removed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan_page(tree, after.as_deref(), PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok(removed);
        };
        after = Some(last.clone());
        let full = page.len() == PAGE;
        for (key, value) in page {
            if expired(&key, &value) && store.compare_and_swap(tree, &key, Some(&value), None)? {
                removed.push((key, value));
            }
        }
        if !full {
            return Ok(removed);
        }
    }
}

/// The integer field `field` (a Unix time) of a JSON object record; `None` when the record is
/// not an object or has no such integer.
pub fn json_time(value: &[u8], field: &str) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(value)
        .ok()?
        .get(field)?
        .as_i64()
}

/// Removes the records of `tree` whose JSON field `field` is a time before `cutoff`; records
/// without it are kept.
pub fn remove_expired(store: &dyn Store, tree: Tree, field: &str, cutoff: i64) -> Result<usize> {
    Ok(remove_where(store, tree, |_, value| {
        json_time(value, field).is_some_and(|t| t < cutoff)
    })?
    .len())
}

/// A server's sweep: returns how many records it removed.
pub type Sweep = dyn Fn() -> Result<usize> + Send + Sync;

/// The background task running a sweep every `interval`. [`Sweeper::stop`] ends it after the
/// pass in progress, if any; dropping it without stopping aborts it.
#[derive(Debug)]
pub struct Sweeper {
    task: Option<tokio::task::JoinHandle<()>>,
    passes: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
}

impl Sweeper {
    /// Runs `sweep` every `interval` (the first time one interval after the start), logging
    /// what each pass removed under `service`.
    pub fn start(service: &'static str, interval: Duration, sweep: Arc<Sweep>) -> Self {
        let (tx, passes) = watch::channel(0u64);
        let (stop, mut stopping) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + interval,
                interval.max(Duration::from_millis(1)),
            );
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopping.changed() => return,
                }
                let sweep = sweep.clone();
                let started = Instant::now();
                match tokio::task::spawn_blocking(move || sweep()).await {
                    Ok(Ok(removed)) => tracing::info!(
                        target: "cleanup",
                        service,
                        removed,
                        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                        "expired records removed"
                    ),
                    Ok(Err(e)) => {
                        tracing::error!(target: "cleanup", service, error = %e, "sweep failed")
                    }
                    Err(e) => {
                        tracing::error!(target: "cleanup", service, error = %e, "sweep panicked")
                    }
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Self {
            task: Some(task),
            passes,
            stop,
        }
    }

    /// Counts finished passes: a test waits on it for the next one.
    pub fn passes(&self) -> watch::Receiver<u64> {
        self.passes.clone()
    }

    /// Stops the task and returns once it has ended, the pass in progress finished, and with it
    /// every reference the sweep held to the store released.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    const CODES: Tree = Tree::new("codes");

    #[test]
    fn removes_expired_records_across_pages_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let store: &dyn Store = &store;
        for i in 0..(PAGE * 2 + 7) {
            let at = if i % 3 == 0 { 100 } else { 900 };
            store
                .put_json(
                    CODES,
                    &format!("{i:05}"),
                    &serde_json::json!({ "expires_at": at }),
                )
                .unwrap();
        }
        store.put(CODES, "no-expiry", b"{}").unwrap();
        let expected = (0..(PAGE * 2 + 7)).filter(|i| i % 3 == 0).count();
        assert_eq!(
            remove_expired(store, CODES, "expires_at", 500).unwrap(),
            expected
        );
        let left = store.scan_prefix(CODES, "").unwrap();
        assert_eq!(left.len(), PAGE * 2 + 7 - expected + 1);
        assert!(
            left.iter()
                .all(|(_, v)| json_time(v, "expires_at").is_none_or(|t| t == 900))
        );
        assert_eq!(remove_expired(store, CODES, "expires_at", 500).unwrap(), 0);
    }

    #[tokio::test]
    async fn the_sweeper_runs_again_and_again() {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = runs.clone();
        let sweeper = Sweeper::start(
            "test",
            Duration::from_millis(5),
            Arc::new(move || Ok(counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst))),
        );
        let mut passes = sweeper.passes();
        passes.wait_for(|n| *n >= 3).await.unwrap();
        assert!(runs.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        // Stopped, it holds nothing of the sweep any more.
        sweeper.stop().await;
        assert_eq!(Arc::strong_count(&runs), 1);
    }
}
