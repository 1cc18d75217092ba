//! What a binary does around its work: files it creates are its owner's only, its async main
//! runs on a multi-threaded runtime, and a failure becomes a message and an exit code.

/// From now on, files and directories this process creates are its owner's only (umask 077).
pub fn owner_only_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Runs `future` to completion on a new multi-threaded tokio runtime.
pub fn block_on<T, E, F>(future: F) -> std::result::Result<T, E>
where
    F: std::future::Future<Output = std::result::Result<T, E>>,
    E: From<std::io::Error>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
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
