//! The `e2ei-enroll` binary as a user runs it, against both real servers: `enroll` with the
//! password on stdin, `show --json`, `renew` keeping the device, the key files' permissions,
//! and a wrong password failing at the login step with a non-zero exit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use e2ei_stack::stack::Stack;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

async fn cli(args: &[String], stdin: &str) -> std::process::Output {
    let program = e2ei_stack::bench::procs::binary("e2ei-enroll").unwrap();
    // Under the umask most shells have (022), through sh as a user's shell would run it.
    let mut child = tokio::process::Command::new("/bin/sh")
        .args(["-c", "umask 022; exec \"$0\" \"$@\""])
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    server_kit::process::input_given(input.write_all(stdin.as_bytes()).await).unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

fn connection(stack: &Stack, verb: &str, dir: &std::path::Path) -> Vec<String> {
    let mut args = vec![
        verb.to_owned(),
        "--acme".into(),
        stack.acme.directory_url.clone(),
        "--authz".into(),
        stack.authz.base_url.clone(),
        "--ca-root".into(),
        stack.acme.ca_root.display().to_string(),
        "--user".into(),
        "alice_wire".into(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    for root in stack.tls_roots() {
        args.push("--tls-root".into());
        args.push(root.display().to_string());
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_show_and_renew_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let stack = Stack::start(data.path()).await.unwrap();
    let device_dir = data.path().join("device");
    let password = stack.demo_password.expose().to_owned();

    let out = cli(&connection(&stack, "enroll", &device_dir), &password).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "login",
        "register-device",
        "wire-dpop-01",
        "wire-oidc-01",
        "finalize",
        "verify",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(step)),
            "no step line for {step}:\n{stdout}"
        );
    }
    assert!(!stdout.contains(&password), "the password is never printed");
    for key in ["account-key.der", "credential-key.der"] {
        let mode = std::fs::metadata(device_dir.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // The device directory and everything in it are the user's only, whatever the umask of
    // the shell that ran the CLI.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&device_dir), 0o700);
    for entry in std::fs::read_dir(&device_dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
    }

    let show = cli(
        &[
            "--json".into(),
            "show".into(),
            "--dir".into(),
            device_dir.display().to_string(),
        ],
        "",
    )
    .await;
    assert!(show.status.success());
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        shown["certificate"]["subject"],
        "O=wire.example, CN=Alice Smith"
    );
    assert_eq!(shown["expired"], false);
    let client_id = shown["client_id"].as_str().unwrap().to_owned();

    let mut renew = connection(&stack, "renew", &device_dir);
    renew.insert(0, "--json".into());
    let out = cli(&renew, &format!("{password}\n")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let renewed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(renewed["client_id"], client_id.as_str(), "same device");
    assert_ne!(
        renewed["certificate"]["serial"],
        shown["certificate"]["serial"]
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("finalize"),
        "with --json the step lines go to stderr"
    );

    let out = cli(
        &connection(&stack, "enroll", &data.path().join("other")),
        "wrong",
    )
    .await;
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("FAIL") && l.contains("login")),
        "{stdout}"
    );
    stack.shutdown().await.unwrap();
}
