//! The closed-loop driver every `e2ei-bench` mode shares: `n` jobs, at most `concurrency` at a
//! time, each timed; failures counted (the first kept). After the first failure no new job
//! starts (the rest count as skipped), so a server that stops answering ends the run in one
//! job's timeout rather than `n` of them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// What a run of jobs produced.
#[derive(Debug)]
pub struct Outcome {
    /// Latency of each successful job.
    pub latencies: Vec<Duration>,
    /// Failed jobs.
    pub errors: usize,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// Jobs not started because an earlier one failed (included in `errors`).
    pub skipped: usize,
    /// Wall time from the first start to the last finish.
    pub wall: Duration,
}

impl Outcome {
    /// Successful jobs per second of wall time.
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs `job(0..n)` with at most `concurrency` in flight.
pub async fn drive<F, Fut>(n: usize, concurrency: usize, job: F) -> Result<Outcome>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..n {
        let (gate, failed, work) = (gate.clone(), failed.clone(), job(i));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            if failed.load(Ordering::SeqCst) {
                return (Duration::ZERO, None);
            }
            let t = Instant::now();
            let result = work.await;
            if result.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            (t.elapsed(), Some(result))
        });
    }
    let mut out = Outcome {
        latencies: Vec::with_capacity(n),
        errors: 0,
        first_error: None,
        skipped: 0,
        wall: Duration::ZERO,
    };
    while let Some(joined) = tasks.join_next().await {
        match joined.context("bench job")? {
            (elapsed, Some(Ok(()))) => out.latencies.push(elapsed),
            (_, Some(Err(e))) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
            (_, None) => {
                out.errors += 1;
                out.skipped += 1;
            }
        }
    }
    out.wall = started.elapsed();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn bounds_concurrency_and_times_every_job() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = drive(20, 3, |_| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!((out.latencies.len(), out.errors), (20, 0));
        assert!((1..=3).contains(&peak.load(Ordering::SeqCst)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failure_stops_new_jobs_and_keeps_the_first_message() {
        let ran = Arc::new(AtomicUsize::new(0));
        let out = drive(10, 1, |i| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                if i == 3 {
                    Err(format!("job {i} failed"))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 4);
        assert_eq!(out.latencies.len(), 3);
        assert_eq!((out.errors, out.skipped), (7, 6));
        assert_eq!(out.first_error.as_deref(), Some("job 3 failed"));
    }
}
