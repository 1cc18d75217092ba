//! Password checks (argon2id, 19 MiB of memory each) on a fixed set of worker threads
//! (`[password_checks]`), so a burst of logins cannot take the server's CPU:
//!
//! - a check is admitted only while the checks running or waiting stay within `workers + queue`
//!   in total, within `per_address` for the client's address and within `per_user` for the
//!   handle; otherwise it is refused at once (429 with `Retry-After`), before any hashing — a
//!   burst is refused fast, not queued, and a few accounts (whose right passwords give their
//!   failed-login tokens back) cannot fill the queue;
//! - a free worker takes the waiting check whose address has the fewest checks running (the
//!   oldest among those), so an address flooding the queue holds the workers only while nobody
//!   else waits: another client's check runs as soon as a worker is free;
//! - a check whose client has gone away is skipped.
//!
//! The allocator keeps at most one argon2 buffer per worker rather than one per thread that
//! ever ran a check.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};

use proto::secret::SecretString;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::users::User;

/// How many password checks may run and wait (`[password_checks]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordChecks {
    /// Worker threads (0: one per CPU the server plans for, `[runtime] cpus`).
    pub workers: usize,
    /// Checks that may wait for a worker, all addresses together.
    pub queue: usize,
    /// Checks one client address may have running or waiting at once.
    pub per_address: usize,
    /// Checks for one handle that may be running or waiting at once.
    pub per_user: usize,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        Self {
            workers: 0,
            queue: 64,
            per_address: 16,
            per_user: 2,
        }
    }
}

impl PasswordChecks {
    /// The worker threads, on a server planning for `cpus` CPUs.
    fn workers(&self, cpus: usize) -> usize {
        if self.workers == 0 {
            cpus
        } else {
            self.workers
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A check waiting for a worker.
struct Waiting {
    ip: IpAddr,
    handle: String,
    job: Job,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").field("ip", &self.ip).finish()
    }
}

/// The checks admitted and not finished.
#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Checks running, per address.
    running: HashMap<IpAddr, usize>,
    /// Checks running or waiting, per address.
    held: HashMap<IpAddr, usize>,
    /// Checks running or waiting, per handle.
    held_by_user: HashMap<String, usize>,
    /// Checks running or waiting.
    total: usize,
    closed: bool,
}

impl Queue {
    /// The waiting check to run next: of the address with the fewest checks running, the
    /// oldest.
    fn next(&self) -> Option<usize> {
        let running = |ip: &IpAddr| self.running.get(ip).copied().unwrap_or(0);
        self.waiting
            .iter()
            .enumerate()
            .min_by_key(|(index, w)| (running(&w.ip), *index))
            .map(|(index, _)| index)
    }

    fn finished(&mut self, ip: IpAddr, handle: &str) {
        for table in [&mut self.running, &mut self.held] {
            release(table, &ip);
        }
        release(&mut self.held_by_user, handle);
        self.total -= 1;
    }
}

/// One place fewer for `key` in `table` (the entry goes when it reaches zero).
fn release<K, Q>(table: &mut HashMap<K, usize>, key: &Q)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(n) = table.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            table.remove(key);
        }
    }
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    total_cap: usize,
    per_address_cap: usize,
    per_user_cap: usize,
}

impl Shared {
    /// Admits `job`, a check of `handle` for a client at `ip`, or refuses at once.
    fn admit(&self, ip: IpAddr, handle: &str, job: Job) -> Result<()> {
        let busy = |whom: &str| Error::RateLimited {
            description: format!("too many password checks in progress {whom}; retry after 1 s"),
            retry_after_secs: 1,
        };
        let mut queue = self.lock()?;
        if queue.total >= self.total_cap {
            return Err(busy("on this server"));
        }
        let mine = queue.held.get(&ip).copied().unwrap_or(0);
        if mine >= self.per_address_cap {
            return Err(busy("from this address"));
        }
        let users = queue.held_by_user.get(handle).copied().unwrap_or(0);
        if users >= self.per_user_cap {
            return Err(busy("for this user"));
        }
        queue.held.insert(ip, mine + 1);
        queue.held_by_user.insert(handle.to_owned(), users + 1);
        queue.total += 1;
        queue.waiting.push_back(Waiting {
            ip,
            handle: handle.to_owned(),
            job,
        });
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Queue>> {
        self.queue
            .lock()
            .map_err(|_| Error::Internal("password queue poisoned".into()))
    }

    /// A worker: runs the next check until the pool is dropped.
    fn work(&self) {
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        loop {
            if let Some(index) = queue.next() {
                let Some(Waiting { ip, handle, job }) = queue.waiting.remove(index) else {
                    continue;
                };
                *queue.running.entry(ip).or_insert(0) += 1;
                drop(queue);
                job();
                queue = match self.queue.lock() {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
                queue.finished(ip, &handle);
            } else if queue.closed {
                return;
            } else {
                queue = match self.ready.wait(queue) {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
            }
        }
    }
}

/// Stops the workers when the last handle of the pool goes.
#[derive(Debug)]
struct Workers(Arc<Shared>);

impl Drop for Workers {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.0.queue.lock() {
            queue.closed = true;
        }
        self.0.ready.notify_all();
    }
}

/// The worker pool.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    workers: Arc<Workers>,
    threads: usize,
}

impl PasswordPool {
    /// The workers and bounds of `config`, on a server planning for `cpus` CPUs.
    pub fn new(config: &PasswordChecks, cpus: usize) -> Result<Self> {
        let workers = config.workers(cpus).max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            ready: Condvar::new(),
            total_cap: workers + config.queue,
            per_address_cap: config.per_address.max(1),
            per_user_cap: config.per_user.max(1),
        });
        for i in 0..workers {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || shared.work())
                .map_err(|e| Error::Internal(format!("password worker: {e}")))?;
        }
        Ok(Self {
            workers: Arc::new(Workers(shared)),
            threads: workers,
        })
    }

    /// The worker threads checking passwords.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Checks `handle`'s password on a worker for a client at `ip`, or refuses at once
    /// (`RateLimited`) when the server or this address has no room for another check.
    pub async fn check(
        &self,
        ip: IpAddr,
        store: Arc<dyn Store>,
        handle: String,
        password: SecretString,
    ) -> Result<User> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let admitted_as = handle.clone();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                // The client went away while the check waited.
                return;
            }
            let _ = tx.send(crate::users::authenticate(
                store.as_ref(),
                &handle,
                &password,
            ));
        });
        self.workers.0.admit(ip, &admitted_as, job)?;
        rx.await
            .map_err(|_| Error::Internal("password worker failed".into()))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shared(total_cap: usize, per_address_cap: usize) -> Shared {
        Shared {
            queue: Mutex::default(),
            ready: Condvar::new(),
            total_cap,
            per_address_cap,
            per_user_cap: 100,
        }
    }

    fn nothing() -> Job {
        Box::new(|| {})
    }

    #[test]
    fn workers_follow_the_cpus_planned_for_unless_set() {
        let default = PasswordChecks::default();
        assert_eq!(default.workers(1), 1);
        assert_eq!(default.workers(3), 3);
        let set = PasswordChecks {
            workers: 2,
            ..PasswordChecks::default()
        };
        assert_eq!(set.workers(1), 2);
        assert_eq!(PasswordPool::new(&default, 3).unwrap().threads(), 3);
    }

    #[test]
    fn one_address_holds_its_share_and_the_total_is_capped() {
        let pool = shared(4, 2);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let c: IpAddr = [192, 0, 2, 3].into();
        pool.admit(a, "u", nothing()).unwrap();
        pool.admit(a, "u", nothing()).unwrap();
        let refused = pool.admit(a, "u", nothing()).unwrap_err();
        assert!(
            refused.to_string().contains("from this address"),
            "{refused}"
        );
        pool.admit(b, "u", nothing()).unwrap();
        pool.admit(b, "u", nothing()).unwrap();
        let refused = pool.admit(c, "u", nothing()).unwrap_err();
        assert!(refused.to_string().contains("on this server"), "{refused}");
        // A finished check frees its place for its address and in the total.
        let mut queue = pool.queue.lock().unwrap();
        let first = queue.waiting.pop_front().unwrap();
        *queue.running.entry(first.ip).or_insert(0) += 1;
        queue.finished(first.ip, &first.handle);
        drop(queue);
        pool.admit(a, "u", nothing()).unwrap();
        assert!(pool.admit(c, "u", nothing()).is_err());
    }

    #[test]
    fn one_user_has_at_most_its_checks_in_flight_from_anywhere() {
        let pool = Shared {
            per_user_cap: 2,
            ..shared(100, 100)
        };
        for i in 1..=2 {
            pool.admit([192, 0, 2, i].into(), "alice", nothing())
                .unwrap();
        }
        let refused = pool
            .admit([192, 0, 2, 3].into(), "alice", nothing())
            .unwrap_err();
        assert!(refused.to_string().contains("for this user"), "{refused}");
        pool.admit([192, 0, 2, 3].into(), "bob", nothing()).unwrap();
    }

    #[test]
    fn the_next_check_is_of_the_address_with_the_fewest_running() {
        let pool = shared(100, 100);
        let flood: IpAddr = [192, 0, 2, 1].into();
        let user: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..10 {
            pool.admit(flood, "u", nothing()).unwrap();
        }
        pool.admit(user, "v", nothing()).unwrap();
        let mut queue = pool.queue.lock().unwrap();
        // Alone, the flood's oldest check goes first.
        assert_eq!(queue.next(), Some(0));
        // With one of the flood's checks running, the user's check overtakes the flood.
        let first = queue.waiting.pop_front().unwrap();
        *queue.running.entry(first.ip).or_insert(0) += 1;
        let next = queue.next().unwrap();
        assert_eq!(queue.waiting[next].ip, user);
    }
}
