//! Password checks (argon2id, 19 MiB of memory each) on a fixed set of worker threads: a burst
//! of logins queues instead of spawning blocking threads, and the allocator keeps at most one
//! argon2 buffer per worker rather than one per thread that ever ran a check.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use proto::secret::SecretString;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::users::User;

type Job = Box<dyn FnOnce() + Send>;

/// The worker pool.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    jobs: mpsc::Sender<Job>,
}

impl PasswordPool {
    /// `workers` threads (at least one).
    pub fn new(workers: usize) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("password worker: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Checks `handle`'s password on a worker.
    pub async fn check(
        &self,
        store: Arc<dyn Store>,
        handle: String,
        password: SecretString,
    ) -> Result<User> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(crate::users::authenticate(
                store.as_ref(),
                &handle,
                &password,
            ));
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Internal("password workers stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("password worker failed".into()))?
    }
}
