//! `e2ei-bench`: enrollment throughput and latency against both servers (as their own
//! processes), and the crypto floor of one enrollment on this machine. Output as a table, or as
//! JSON with `--json`. Bounded: at most `--devices` enrollments, and up to four rounds of
//! `--warmup` before them.
//!
//! Build the servers first: `cargo build --release --bins`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use e2ei_stack::bench::{enroll, floor};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "e2ei-bench", version, about = "Enrollment benchmark")]
struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N full enrollments of N users with concurrency C.
    Enroll {
        #[arg(long, default_value_t = 100)]
        devices: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Enrollments of other devices in each warm-up round before the measured ones (not
        /// measured; rounds follow until the servers' database pools are full, at most four);
        /// by default as many as the concurrency. 0: measure from a cold start.
        #[arg(long)]
        warmup: Option<usize>,
        /// Where the servers keep their records.
        #[arg(long, value_enum, default_value = "embedded")]
        store: enroll::BenchStore,
        /// Replicas of each server behind a round-robin balancer (PostgreSQL only).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Put the balancer in front of a single replica too, so that one and several
        /// replicas are measured on the same path (it runs in the bench process).
        #[arg(long)]
        balancer: bool,
        /// Each server process's `[runtime] cpus`; by default the machine's CPUs divided among
        /// the replicas (all of them for one replica). 0: every replica plans for all of them.
        #[arg(long)]
        cpus_per_replica: Option<usize>,
    },
    /// The crypto cost of one enrollment and the ceiling it implies.
    Floor {
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
    },
    /// ACME http-01 issuance against our acme-server and Pebble, same client, same run.
    Acme {
        #[arg(long, default_value_t = 100)]
        orders: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// DPoP-bound client-credentials tokens from our authz-server and node-oidc-provider,
    /// same client, same run (`npm ci` in e2ei-stack/bench-peers first).
    Token {
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// `enroll` then `floor`, and the achieved fraction of the ceiling.
    All {
        #[arg(long, default_value_t = 100)]
        devices: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

/// mimalloc, as in the servers: the load generator shares the machine with them, so the less it
/// spends allocating the more of the machine the servers get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    server_kit::process::exit_code("e2ei-bench", server_kit::process::block_on(run(cli)))
}

fn print_enroll(r: &enroll::EnrollReport) {
    println!(
        "enroll: {} devices (after {} not measured), concurrency {}, store {}, {} replica(s){}{}, \
         {} errors, {:.2} s, {:.1} enrollments/s",
        r.devices,
        r.warmup_devices,
        r.concurrency,
        r.store,
        r.replicas,
        match r.cpus_per_replica {
            0 => String::new(),
            n => format!(" on {n} CPU(s) each"),
        },
        if r.balanced {
            " behind the balancer"
        } else {
            ""
        },
        r.errors,
        r.wall_seconds,
        r.per_second
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
    println!(
        "  {:<18} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "p50", "p95", "p99", "max"
    );
    let row = |name: &str, p: &e2ei_stack::bench::stats::Percentiles| {
        println!(
            "  {name:<18} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            p.p50, p.p95, p.p99, p.max
        );
    };
    row("enrollment", &r.latency_ms);
    for (step, p) in &r.steps_ms {
        row(step, p);
    }
    println!(
        "  server CPU per enrollment: authz-server {:.2} ms, acme-server {:.2} ms",
        r.authz_cpu_ms_per_enrollment, r.acme_cpu_ms_per_enrollment
    );
    println!(
        "  bench process CPU per enrollment (clients{}): {:.2} ms",
        if r.balanced { " and balancer" } else { "" },
        r.bench_cpu_ms_per_enrollment
    );
    if let (Some(database), Some([before, after])) =
        (r.database_cpu_ms_per_enrollment, r.database_connections)
    {
        println!(
            "  database CPU per enrollment: PostgreSQL {database:.2} ms; the servers' connections \
             {before} at the start, {after} at the end"
        );
    }
    println!(
        "  peak RSS: authz-server {:.1} MiB, acme-server {:.1} MiB; store growth {:.0} bytes per enrollment",
        r.authz_peak_rss_mib, r.acme_peak_rss_mib, r.store_bytes_per_enrollment
    );
}

fn print_floor(f: &floor::Floor) {
    println!("floor: crypto per enrollment on this machine");
    println!(
        "  {:<26} {:>10} {:>6} {:>10}",
        "operation", "µs each", "count", "µs"
    );
    for op in &f.ops {
        println!(
            "  {:<26} {:>10.1} {:>6} {:>10.1}",
            op.name,
            op.micros,
            op.per_enrollment,
            op.micros * f64::from(op.per_enrollment)
        );
    }
    println!(
        "  floor {:.2} ms CPU per enrollment → ceiling {:.0} enrollments/s per core",
        f.floor_ms, f.ceiling_per_core
    );
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Enroll {
            devices,
            concurrency,
            warmup,
            store,
            replicas,
            balancer,
            cpus_per_replica,
        } => {
            let mut layout = enroll::Layout::replicas(replicas);
            layout.balanced |= balancer;
            if let Some(cpus) = cpus_per_replica {
                layout.cpus_per_replica = cpus;
            }
            let mut load = enroll::Load::new(devices, concurrency);
            if let Some(warmup) = warmup {
                load.warmup = warmup;
            }
            let r = enroll::run(load, store, layout).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_enroll(&r);
            }
            anyhow::ensure!(r.errors == 0, "{} enrollments failed", r.errors);
        }
        Command::Acme {
            orders,
            concurrency,
        } => {
            let reports = e2ei_stack::bench::acme::run(orders, concurrency).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                println!("acme: {orders} http-01 orders, concurrency {concurrency}");
                for r in &reports {
                    println!(
                        "  {:<12} {:>7.1} certificates/s  p50 {:>6.1} ms  p99 {:>6.1} ms  CPU {:>5.2} ms/certificate  RSS {:>6.1} MiB  errors {}",
                        r.server,
                        r.per_second,
                        r.latency_ms.p50,
                        r.latency_ms.p99,
                        r.server_cpu_ms_per_certificate,
                        r.peak_rss_mib,
                        r.errors
                    );
                    if let Some(e) = &r.first_error {
                        println!("    first error: {e}");
                    }
                }
                if let [ours, pebble] = reports.as_slice() {
                    println!(
                        "  ratio acme-server / pebble: {:.2}× throughput, {:.2}× less CPU per certificate",
                        ours.per_second / pebble.per_second,
                        pebble.server_cpu_ms_per_certificate / ours.server_cpu_ms_per_certificate
                    );
                }
            }
            anyhow::ensure!(reports.iter().all(|r| r.errors == 0), "orders failed");
        }
        Command::Token {
            requests,
            concurrency,
        } => {
            let reports = e2ei_stack::bench::token::run(requests, concurrency).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                println!(
                    "token: {requests} DPoP client-credentials tokens, concurrency {concurrency}"
                );
                for r in &reports {
                    println!(
                        "  {:<14} {:>8.1} tokens/s  p50 {:>6.1} ms  p99 {:>6.1} ms  CPU {:>6.3} ms/token  RSS {:>6.1} MiB  nonce retries {}  errors {}",
                        r.server,
                        r.per_second,
                        r.latency_ms.p50,
                        r.latency_ms.p99,
                        r.server_cpu_ms_per_token,
                        r.peak_rss_mib,
                        r.nonce_retries,
                        r.errors
                    );
                    if let Some(e) = &r.first_error {
                        println!("    first error: {e}");
                    }
                }
                if let [ours, theirs] = reports.as_slice() {
                    println!(
                        "  ratio authz-server / oidc-provider: {:.2}× throughput, {:.2}× less CPU per token",
                        ours.per_second / theirs.per_second,
                        theirs.server_cpu_ms_per_token / ours.server_cpu_ms_per_token
                    );
                }
            }
            anyhow::ensure!(
                reports.iter().all(|r| r.errors == 0),
                "token requests failed"
            );
        }
        Command::Floor { iterations } => {
            let f = floor::measure(iterations)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                print_floor(&f);
            }
        }
        Command::All {
            devices,
            concurrency,
        } => {
            let r = enroll::run(
                enroll::Load::new(devices, concurrency),
                enroll::BenchStore::Embedded,
                enroll::Layout::replicas(1),
            )
            .await?;
            let f = floor::measure(2000)?;
            let cpu = r.authz_cpu_ms_per_enrollment + r.acme_cpu_ms_per_enrollment;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "enroll": r, "floor": f, "cpu_over_floor": cpu / f.floor_ms,
                    }))?
                );
            } else {
                print_enroll(&r);
                print_floor(&f);
                println!(
                    "server CPU {cpu:.2} ms per enrollment = {:.2}× the floor (achieved {:.0}% of the ceiling)",
                    cpu / f.floor_ms,
                    100.0 * f.floor_ms / cpu
                );
            }
            anyhow::ensure!(r.errors == 0, "{} enrollments failed", r.errors);
        }
    }
    Ok(())
}
