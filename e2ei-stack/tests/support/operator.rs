//! The operator's commands as the operator runs them: the real server binaries with a
//! configuration file, against a data directory (and a PostgreSQL store when given).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use server_kit::testing::TestPostgres;

/// A configuration file for `server` (`authz`, `acme`) with its data directory under `dir`
/// and, when given, a PostgreSQL `[store]`.
pub fn config_file(dir: &Path, server: &str, pg: Option<&TestPostgres>) -> PathBuf {
    let mut text = format!("data_dir = {:?}\n", dir.join(server).display().to_string());
    if let Some(pg) = pg {
        text.push_str(&format!(
            "[store]\nurl = {:?}\npassword_file = {:?}\n",
            pg.url(),
            pg.password_file().display().to_string()
        ));
    }
    let path = dir.join(format!(
        "{server}-{}.toml",
        if pg.is_some() { "pg" } else { "embedded" }
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `program ARGS` with the configuration file `config` and `stdin`; its standard output,
/// or a panic with its standard error.
pub fn run(program: &str, config: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(e2ei_stack::bench::procs::binary(program).unwrap())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        server_kit::process::input_given(input.write_all(stdin.as_bytes())).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `program store ARGS` with the configuration file `config`.
pub fn store_command(program: &str, config: &Path, args: &[&str]) -> String {
    let args: Vec<&str> = std::iter::once("store")
        .chain(args.iter().copied())
        .collect();
    run(program, config, &args, "")
}

/// Adds the user `handle` with `password` through the authz-server's CLI.
pub fn add_user(config: &Path, handle: &str, password: &str) {
    run(
        "authz-server",
        config,
        &["user", "add", "--handle", handle, "--name", handle],
        &format!("{password}\n"),
    );
}
