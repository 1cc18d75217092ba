//! How many threads a server process does its work on (`[runtime]`).
//!
//! By default a server plans for every CPU the system gives the process: its CPU affinity and
//! its cgroup quota, so a replica in a container with a CPU limit sizes itself. Replicas run as
//! plain processes on one machine share its cores instead; each is told its share with `cpus`,
//! so that together they do not plan for more cores than there are (on two cores, three
//! replicas of each server each planning for both ran 3 % fewer enrollments a second than with
//! `cpus = 1`: see `docs/benchmarks.md`). A thread that waits on the database hands its place
//! to another meanwhile, so a server may hold more threads than `cpus`, not keep more busy.

use serde::Deserialize;

use crate::{Error, Result};

/// The largest `cpus` accepted: more threads than this is a typo, not a machine.
const MOST_CPUS: usize = 1024;

/// `[runtime]`: the CPUs a server process plans for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// CPUs this process plans for: its request workers, and whatever else sizes itself by the
    /// machine (the authz-server's password checks). 0: every CPU the system gives it.
    pub cpus: usize,
}

impl RuntimeConfig {
    /// The CPUs the system gives this process (its affinity and cgroup quota; at least one).
    pub fn given() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    /// The CPUs planned for (at least one).
    pub fn cpus(&self) -> usize {
        if self.cpus == 0 {
            Self::given()
        } else {
            self.cpus
        }
    }

    /// Refuses a count no machine has.
    pub fn validate(&self) -> Result<()> {
        if self.cpus > MOST_CPUS {
            return Err(Error::Config(format!(
                "runtime.cpus must be at most {MOST_CPUS} (0: every CPU the process may use)"
            )));
        }
        Ok(())
    }

    /// Runs a server's `future` to completion on a runtime with one request worker per CPU
    /// planned for; refuses a count [`RuntimeConfig::validate`] refuses before making any thread.
    pub fn block_on<T, E, F>(&self, future: F) -> std::result::Result<T, E>
    where
        F: std::future::Future<Output = std::result::Result<T, E>>,
        E: From<std::io::Error>,
    {
        self.validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let given = Self::given();
        if self.cpus > given {
            tracing::warn!(
                cpus = self.cpus,
                given,
                "runtime.cpus is more than the CPUs this process may use: its threads share them"
            );
        }
        io_kit::process::block_on_with_workers(self.cpus(), future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_kept_and_the_default_is_what_the_system_gives() {
        let share = RuntimeConfig { cpus: 1 };
        assert_eq!(share.cpus(), 1);
        share.validate().unwrap();
        let default = RuntimeConfig::default();
        assert_eq!(
            default.cpus(),
            std::thread::available_parallelism().unwrap().get()
        );
        default.validate().unwrap();
    }

    #[test]
    fn a_count_no_machine_has_is_refused() {
        let e = RuntimeConfig { cpus: 100_000 }.validate().unwrap_err();
        assert!(e.to_string().contains("runtime.cpus"), "{e}");
    }

    #[test]
    fn a_count_no_machine_has_makes_no_runtime() {
        let refused = RuntimeConfig { cpus: 1 << 40 }
            .block_on(async { Ok::<_, std::io::Error>(()) })
            .unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
        assert!(refused.to_string().contains("runtime.cpus"), "{refused}");
    }

    #[test]
    fn the_runtime_has_one_worker_per_cpu_planned_for() {
        let workers = RuntimeConfig { cpus: 3 }
            .block_on(async {
                Ok::<_, std::io::Error>(tokio::runtime::Handle::current().metrics().num_workers())
            })
            .unwrap();
        assert_eq!(workers, 3);
    }
}
