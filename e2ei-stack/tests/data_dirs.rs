//! The data directories of both binaries hold password hashes, tokens, MAC keys and CA keys:
//! started by a shell whose umask lets others read (022), each server creates its directory
//! 0700 and every file in it owner-only; an existing directory with data that others can enter
//! stops the server with the command that fixes it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use e2ei_stack::bench::procs;
use support::{Managed, args};

/// Every path under `dir` (and `dir`) whose mode lets group or others in.
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut open = Vec::new();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    if mode & 0o077 != 0 {
        open.push(format!("{} {:o}", dir.display(), mode & 0o777));
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            open.extend(open_to_others(&path));
        } else {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            if mode & 0o077 != 0 {
                open.push(format!("{} {:o}", path.display(), mode & 0o777));
            }
        }
    }
    open
}

/// Runs a binary under umask 022 (through sh, as an operator's shell would).
fn with_umask_022(program: &Path, arguments: &[&str]) -> Vec<String> {
    let mut line = vec![
        "umask 022; exec \"$0\" \"$@\"".to_owned(),
        program.display().to_string(),
    ];
    line.extend(arguments.iter().map(|a| (*a).to_owned()));
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_keep_their_data_owner_only_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let sh = std::path::PathBuf::from("/bin/sh");
    for (name, ready, extra) in [
        ("authz-server", "authz-server listening on ", vec![]),
        (
            "acme-server",
            "acme-server directory ",
            vec!["--backend-jwks-url", "https://127.0.0.1:9/jwks"],
        ),
    ] {
        let data = dir.path().join(name);
        let program = procs::binary(name).unwrap();
        let mut arguments = vec![
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
        ];
        arguments.extend(extra);
        let line = with_umask_022(&program, &arguments);
        let mut sh_args = vec!["-c"];
        sh_args.extend(line.iter().map(String::as_str));
        let server = Managed::start(sh.clone(), args(&sh_args), ready, 0, None).await;
        assert!(server.terminate().await.success());
        let open = open_to_others(&data);
        assert!(open.is_empty(), "{name} left these open: {open:#?}");
    }
}

#[test]
fn a_data_directory_with_data_that_others_can_enter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("audit.jsonl"), b"").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(procs::binary("acme-server").unwrap())
        .args(["--data-dir", data.to_str().unwrap(), "ca", "init"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmod 700"), "{stderr}");
    assert!(!data.join("ca").exists(), "nothing was written");
}
