//! `acme-server ca init` killed at each point of its work (the debug build's crash points abort
//! the process there, like a kill or a power cut after the last durable write): what it left is
//! never taken for a CA — `serve` refuses it with a message that says to run `ca init` again —
//! and the next `ca init` removes it and makes the CA, or, killed after its last file, keeps
//! the finished CA. CA files that no interrupted init left are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use acme_server::ca::{CaPaths, CertificateAuthority, Hierarchy};

fn ca_init(data: &Path, crash_at: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_acme-server"));
    command.args([
        "--data-dir",
        data.to_str().unwrap(),
        "ca",
        "init",
        "--name",
        "Test",
    ]);
    command.env_remove(server_kit::process::CRASH_AT);
    if let Some(point) = crash_at {
        command.env(server_kit::process::CRASH_AT, point);
    }
    command.output().unwrap()
}

fn paths(data: &Path) -> CaPaths {
    let dir = data.join("ca");
    CaPaths {
        root_cert: dir.join("root.pem"),
        root_key: dir.join("root-key.pem"),
        intermediate_cert: dir.join("intermediate.pem"),
        intermediate_key: dir.join("intermediate-key.pem"),
        alternate_chains: Vec::new(),
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn an_init_killed_anywhere_is_finished_by_the_next_and_never_served_half_made() {
    for point in [
        "ca-init:marker",
        "ca-init:root-key",
        "ca-init:root-cert",
        "ca-init:intermediate-key",
    ] {
        let data = tempfile::tempdir().unwrap();
        let killed = ca_init(data.path(), Some(point));
        assert!(!killed.status.success(), "{point}: the crash point aborted");
        let p = paths(data.path());
        assert!(!p.intermediate_cert.exists(), "{point}");
        let refused = CertificateAuthority::load(&p, Hierarchy::Identity)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("run `acme-server ca init` again"),
            "{point}: {refused}"
        );

        let again = ca_init(data.path(), None);
        assert!(again.status.success(), "{point}: {again:?}");
        assert!(stdout(&again).contains("was interrupted"), "{point}");
        assert!(!acme_server::ca::pending_marker(&p).exists(), "{point}");
        let ca = CertificateAuthority::load(&p, Hierarchy::Identity).unwrap();
        assert_eq!(ca.hierarchy(), Hierarchy::Identity);
        let root = std::fs::read_to_string(&p.root_cert).unwrap();
        let intermediate = std::fs::read_to_string(&p.intermediate_cert).unwrap();
        let (_, root) = x509_parser::pem::parse_x509_pem(root.as_bytes()).unwrap();
        let (_, intermediate) = x509_parser::pem::parse_x509_pem(intermediate.as_bytes()).unwrap();
        assert_eq!(
            intermediate.parse_x509().unwrap().issuer(),
            root.parse_x509().unwrap().subject(),
            "{point}: the intermediate is signed by the root made with it"
        );
    }
}

#[test]
fn an_init_killed_after_its_last_file_keeps_the_finished_ca() {
    let data = tempfile::tempdir().unwrap();
    let killed = ca_init(data.path(), Some("ca-init:intermediate-cert"));
    assert!(!killed.status.success());
    let p = paths(data.path());
    let intermediate = std::fs::read(&p.intermediate_cert).unwrap();
    CertificateAuthority::load(&p, Hierarchy::Identity).unwrap();
    let again = ca_init(data.path(), None);
    assert!(again.status.success(), "{again:?}");
    assert!(stdout(&again).contains("an earlier init had finished"));
    assert_eq!(std::fs::read(&p.intermediate_cert).unwrap(), intermediate);
    assert!(!acme_server::ca::pending_marker(&p).exists());
    // And now the CA exists: a third init changes nothing and says so.
    let third = ca_init(data.path(), None);
    assert!(!third.status.success());
    assert!(String::from_utf8_lossy(&third.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&p.intermediate_cert).unwrap(), intermediate);
}

#[test]
fn ca_files_no_interrupted_init_left_are_never_touched() {
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let p = paths(data.path());
    std::fs::create_dir_all(p.root_cert.parent().unwrap()).unwrap();
    std::fs::write(&p.root_cert, b"an operator's root").unwrap();
    let refused = ca_init(data.path(), None);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("root.pem exists but") && message.contains("never issued anything"),
        "{message}"
    );
    assert_eq!(std::fs::read(&p.root_cert).unwrap(), b"an operator's root");
}
