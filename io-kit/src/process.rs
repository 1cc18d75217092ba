//! What a binary does around its work: files it creates are its owner's only, its async main
//! runs on a multi-threaded runtime, and a failure becomes a message and an exit code.

/// From now on, files and directories this process creates are its owner's only (umask 077).
pub fn owner_only_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Runs `future` to completion on a new multi-threaded tokio runtime with one worker per CPU
/// the process may use.
pub fn block_on<T, E, F>(future: F) -> std::result::Result<T, E>
where
    F: std::future::Future<Output = std::result::Result<T, E>>,
    E: From<std::io::Error>,
{
    block_on_with_workers(0, future)
}

/// [`block_on`] with `workers` worker threads (0: one per CPU the process may use).
pub fn block_on_with_workers<T, E, F>(workers: usize, future: F) -> std::result::Result<T, E>
where
    F: std::future::Future<Output = std::result::Result<T, E>>,
    E: From<std::io::Error>,
{
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        runtime.worker_threads(workers);
    }
    runtime.enable_all().build()?.block_on(future)
}

/// The exit code of a binary's run: failures are printed as `{program}: {error}` (with the
/// whole chain of causes where the error has one).
pub fn exit_code<E: std::fmt::Display>(
    program: &str,
    result: std::result::Result<(), E>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The environment variable naming the crash point a debug build stops at (tests of what an
/// interrupted operation leaves behind).
pub const CRASH_AT: &str = "E2EI_CRASH_AT";

/// In a debug build, aborts the process here — like a kill or a power cut, no unwinding, no
/// flush — when [`CRASH_AT`] names `point`. A release build has no crash points.
pub fn crash_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var(CRASH_AT).is_ok_and(|at| at == point) {
        eprintln!("crash point {point}: aborting");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
