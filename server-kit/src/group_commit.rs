//! Group commit: requests that must not be answered before their writes are durable wait here
//! for a flush instead of each running one. One thread flushes; every waiter that arrived before
//! a flush started is released by it, so under load one `fsync` covers a batch of requests and no
//! async worker blocks on the disk. A waiter whose writes are already durable returns at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

use crate::store::Store;
use crate::{Error, Result};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Default)]
struct Queue {
    waiters: Vec<Waiter>,
    stopping: bool,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Writes known durable (the store's write count read before the last successful flush).
    durable: AtomicU64,
    /// Flushes run, for tests and metrics.
    flushes: AtomicU64,
}

/// The flusher of one store. Dropping it runs the queued flush, then stops and joins its thread
/// (so the store is released when the drop returns).
#[derive(Debug)]
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flushing thread for `store`.
    pub fn start(store: Arc<dyn Store>) -> Result<Self> {
        let shared = Arc::new(Shared {
            store,
            queue: Mutex::default(),
            wake: Condvar::new(),
            durable: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-flush".into())
            .spawn(move || flush_loop(&worker))
            .map_err(|e| Error::Server(format!("flush thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Returns once every write applied before this call is durable.
    pub async fn durable(&self) -> Result<()> {
        if self.shared.durable.load(Ordering::SeqCst) >= self.shared.store.writes() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut queue = self
                .shared
                .queue
                .lock()
                .map_err(|_| Error::Storage("flush queue poisoned".into()))?;
            queue.waiters.push(tx);
        }
        self.shared.wake.notify_one();
        rx.await
            .map_err(|_| Error::Storage("flush thread stopped".into()))?
            .map_err(Error::Storage)
    }

    /// How many flushes have run.
    pub fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::SeqCst)
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.stopping = true;
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn flush_loop(shared: &Shared) {
    loop {
        let batch = {
            let Ok(mut queue) = shared.queue.lock() else {
                return;
            };
            while queue.waiters.is_empty() && !queue.stopping {
                queue = match shared.wake.wait(queue) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
            if queue.waiters.is_empty() {
                return;
            }
            std::mem::take(&mut queue.waiters)
        };
        // Read the count first: everything counted is applied, so this flush covers it.
        let writes = shared.store.writes();
        let outcome = shared.store.flush().map_err(|e| e.to_string());
        shared.flushes.fetch_add(1, Ordering::SeqCst);
        if outcome.is_ok() {
            shared.durable.fetch_max(writes, Ordering::SeqCst);
        }
        for waiter in batch {
            let _ = waiter.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::{SqliteStore, Tree};

    const T: Tree = Tree::new("t");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_share_flushes_and_clean_stores_do_not_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let commit = Arc::new(GroupCommit::start(store.clone()).unwrap());

        commit.durable().await.unwrap();
        assert_eq!(commit.flushes(), 0, "nothing written, nothing to flush");

        store.put(T, "a", b"1").unwrap();
        commit.durable().await.unwrap();
        assert_eq!(commit.flushes(), 1);
        commit.durable().await.unwrap();
        assert_eq!(commit.flushes(), 1, "already durable");

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let (store, commit) = (store.clone(), commit.clone());
            tasks.spawn(async move {
                store.put(T, &format!("k{i}"), b"v").unwrap();
                commit.durable().await.unwrap();
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let flushes = commit.flushes() - 1;
        assert!((1..=64).contains(&flushes), "{flushes} flushes");
        assert!(commit.shared.durable.load(Ordering::SeqCst) >= store.writes());
    }

    #[test]
    fn durable_writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
            let commit = GroupCommit::start(store.clone()).unwrap();
            store.put(T, "k", b"v").unwrap();
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(commit.durable())
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.get(T, "k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
