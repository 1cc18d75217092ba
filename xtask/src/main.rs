//! The workspace's task runner, run as `cargo xtask ...` (the alias is in `.cargo/config.toml`).
//!
//! `cargo xtask test` is the README's test command: it installs what the tests need and is
//! missing (and nothing else), then runs `cargo fmt --check`, clippy with `-D warnings` and the
//! whole test suite with cargo-nextest, then both servers' integration tests a second time with
//! each harness on a PostgreSQL cluster of its own (`E2EI_TEST_STORE=postgres`). `.ci/run`
//! calls exactly this command.

mod prerequisites;
mod shell;

use std::path::PathBuf;
use std::process::ExitCode;

use prerequisites::Workspace;
use shell::Step;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [options] [FILTER ...] [-- NEXTEST_OPTION ...]
        install what the tests need (only what is missing), then cargo fmt --check,
        clippy -D warnings and the whole suite with cargo-nextest; without FILTERs or
        nextest options, then both servers' integration tests again on PostgreSQL.
        FILTERs select tests by name (as `cargo nextest run FILTER`); what follows `--`
        goes to cargo-nextest unchanged (e.g. `-- -E 'package(proto)' --test-threads 1`).
          --no-install   do not install anything (you manage the packages yourself)
          --no-lint      skip cargo fmt --check and clippy
          --release      build and run the tests with the release profile
  setup   install what the tests and the benchmark peers need, nothing else
  help    this text
";

/// What `cargo xtask test` was asked to do.
#[derive(Debug, Default)]
struct TestOptions {
    install: bool,
    lint: bool,
    release: bool,
    filters: Vec<String>,
    nextest_options: Vec<String>,
}

impl TestOptions {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            install: true,
            lint: true,
            ..Self::default()
        };
        let mut args = args;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--no-install" => options.install = false,
                "--no-lint" => options.lint = false,
                "--release" => options.release = true,
                "--" => options.nextest_options.extend(args.by_ref()),
                flag if flag.starts_with('-') => {
                    return Err(format!(
                        "unknown option {flag} (put nextest options after `--`)"
                    ));
                }
                _ => options.filters.push(arg),
            }
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let workspace = Workspace::new(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")));
    let outcome = match args.next().as_deref() {
        Some("test") => TestOptions::parse(args).and_then(|options| test(&workspace, &options)),
        Some("setup") => workspace.install_missing(),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Installs what is missing (unless told not to), then the lints and the suite; stops at the
/// first step that fails.
fn test(workspace: &Workspace, options: &TestOptions) -> Result<(), String> {
    if options.install {
        workspace.install_missing()?;
    } else {
        workspace.report_missing();
    }
    let cargo = shell::cargo();
    if options.lint {
        Step::new(&cargo, ["fmt", "--all", "--check"]).run_in(workspace.root())?;
        Step::new(
            &cargo,
            [
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
        .run_in(workspace.root())?;
    }
    // Every binary, for the tests that run them as processes (the servers, e2ei-enroll).
    let mut binaries = Step::new(&cargo, ["build", "--workspace", "--bins"]);
    let mut nextest = Step::new(&cargo, ["nextest", "run", "--workspace", "--no-fail-fast"]);
    if options.release {
        binaries = binaries.arg("--release");
        nextest = nextest.arg("--release");
    }
    binaries.run_in(workspace.root())?;
    let whole_suite = options.filters.is_empty() && options.nextest_options.is_empty();
    nextest
        .args(&options.nextest_options)
        .args(&options.filters)
        .env("INTEROP_PYTHON", workspace.venv_python())
        .run_in(workspace.root())?;
    if !whole_suite {
        return Ok(());
    }
    // The servers' protocol tests again, each harness on a PostgreSQL cluster of its own.
    let mut on_postgres = Step::new(
        &cargo,
        [
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "-E",
            ON_POSTGRES,
        ],
    );
    if options.release {
        on_postgres = on_postgres.arg("--release");
    }
    on_postgres
        .env("E2EI_TEST_STORE", "postgres")
        .env("INTEROP_PYTHON", workspace.venv_python())
        .run_in(workspace.root())
}

/// The tests run a second time with `E2EI_TEST_STORE=postgres`: every integration test of both
/// servers, but the two that read the embedded store's files on disk (its growth, and that a
/// kept upstream token is sealed in them).
const ON_POSTGRES: &str = "(package(authz-server) or package(acme-server)) and kind(test) \
    and not test(expired_enrollments_are_removed_and_the_stores_stop_growing) \
    and not test(an_allowed_client_gets_the_upstreams_token_which_is_kept_sealed)";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::TestOptions;

    fn parse(args: &[&str]) -> Result<TestOptions, String> {
        TestOptions::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn filters_and_nextest_options_are_kept_apart() {
        let options = parse(&["--no-install", "transcript", "--", "-E", "package(proto)"]).unwrap();
        assert!(!options.install);
        assert!(options.lint);
        assert!(!options.release);
        assert_eq!(options.filters, ["transcript"]);
        assert_eq!(options.nextest_options, ["-E", "package(proto)"]);
    }

    #[test]
    fn unknown_flags_are_refused_before_anything_runs() {
        let refused = parse(&["--relase"]).err().unwrap();
        assert!(refused.contains("--relase"), "{refused}");
    }
}
