//! What a binary does around its work: files it creates are its owner's only, its async main
//! runs on a multi-threaded runtime, a failure becomes a message and an exit code; and what
//! feeding a child process's input means when the child does not read it.

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

/// What writing a child process's standard input came to, where a child that exited without
/// reading it all (one that refused its arguments before asking for a password) is no failure
/// of the writing, only a closed pipe: its exit status and its output say what happened, and
/// whether the child got to read before it exited is a race that must not decide the outcome.
pub fn input_given(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{ErrorKind, Write};
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn a_child_that_exits_without_reading_its_input_is_no_failure_of_the_writing() {
        let mut child = Command::new("true")
            .stdin(Stdio::piped())
            .spawn()
            .expect("true");
        let mut input = child.stdin.take().unwrap();
        assert!(child.wait().unwrap().success());
        let written = input.write_all(b"a long password\n");
        assert_eq!(
            written.as_ref().map_err(std::io::Error::kind),
            Err(ErrorKind::BrokenPipe)
        );
        assert!(input_given(written).is_ok());
        let refused = Err(std::io::Error::from(ErrorKind::PermissionDenied));
        assert!(input_given(refused).is_err());
    }
}
