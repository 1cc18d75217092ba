//! `[runtime] cpus`: replicas run as plain processes on one machine each plan for their share
//! of its CPUs, so that together they do not run more busy threads than it has cores. Both
//! servers run as processes with a share that is not the machine's CPU count, and the ready
//! event of each log says what the process actually runs: the request workers of its runtime,
//! and the authz-server's password-check workers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::Servers;

/// The `name=value` fields of the first log line that holds `event`.
fn ready_fields(log: &std::path::Path, event: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(event))
        .unwrap_or_else(|| panic!("no {event:?} in {}", log.display()));
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn field(fields: &[(String, String)], name: &str) -> usize {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
        .1
        .parse()
        .unwrap()
}

/// Starts both servers with `[runtime] cpus = cpus` and returns (authz workers, authz password
/// workers, acme workers) as their logs report them.
async fn threads_with(cpus: usize) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let servers = Servers::start_both_with(
        dir.path(),
        0,
        &format!("[runtime]\ncpus = {cpus}\n"),
        Some(&logs),
    )
    .await;
    let authz = ready_fields(&logs.join("authz.log"), "authz-server listening");
    let acme = ready_fields(&logs.join("acme.log"), "acme-server listening");
    drop(servers);
    (
        field(&authz, "workers"),
        field(&authz, "password_workers"),
        field(&acme, "workers"),
    )
}

#[tokio::test]
async fn each_server_runs_the_threads_of_the_cpus_it_is_told_to_plan_for() {
    let machine = std::thread::available_parallelism().unwrap().get();
    // One CPU (three replicas on a two-core machine) and one more than the machine has: both
    // differ from what a server plans for by default.
    for cpus in [1, machine + 1] {
        assert_eq!(
            threads_with(cpus).await,
            (cpus, cpus, cpus),
            "cpus = {cpus}"
        );
    }
}

#[test]
fn a_count_no_machine_has_stops_the_server_before_it_starts_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authz.toml");
    std::fs::write(&config, "[runtime]\ncpus = 1099511627776\n").unwrap();
    let out = std::process::Command::new(e2ei_stack::bench::procs::binary("authz-server").unwrap())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("authz"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("runtime.cpus must be at most 1024"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
