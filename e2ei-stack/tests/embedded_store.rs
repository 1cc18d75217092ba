//! The embedded store (SQLite) under the operator's hands: commands run beside the running
//! servers (a user added enrolls at once, `store verify` and `store backup` while serving), a
//! backup restored into a data directory serves the same certificates, and a deployment made
//! with the older sled engine moves to SQLite with `store export` / `store import`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use client_sdk::Enrollment;
use e2ei_stack::stack::Stack;
use proto::secret::SecretString;
use server_kit::store::Tree;

mod support;
use support::operator::{add_user, config_file, store_command};

fn certificates_in(acme_data: &Path) -> usize {
    let store = server_kit::store::open_embedded(&acme_data.join("store")).unwrap();
    store
        .scan_prefix(Tree::new("certificates"), "")
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_run_beside_the_servers_and_a_backup_restores() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    Enrollment::new(stack.demo_config()).run().await.unwrap();

    // A user added while the servers run enrolls at once, without a restart.
    let authz_config = config_file(dir.path(), "authz", None);
    add_user(&authz_config, "bob_wire", "correct horse battery staple");
    let bob = stack.sdk_config(
        "bob_wire",
        SecretString::new("correct horse battery staple"),
    );
    let enrolled = Enrollment::new(bob).run().await.unwrap();
    assert_eq!(enrolled.identity.handle().handle(), "bob_wire");

    // Checked and backed up while serving.
    let verified = store_command("authz-server", &authz_config, &["verify"]);
    assert!(verified.contains("integrity check passed"), "{verified}");
    let acme_config = config_file(dir.path(), "acme", None);
    let backup = dir.path().join("acme-backup.sqlite");
    let said = store_command(
        "acme-server",
        &acme_config,
        &["backup", "--to", &backup.display().to_string()],
    );
    assert!(said.starts_with("backed the store up"), "{said}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    stack.shutdown().await.unwrap();
    assert_eq!(certificates_in(&dir.path().join("acme")), 2);

    // The store lost, the backup put in its place: the servers start on it and know both
    // certificates; a third device enrolls.
    let store = dir.path().join("acme/store");
    std::fs::rename(&store, dir.path().join("acme-store.lost")).unwrap();
    server_kit::files::private_dir(&store).unwrap();
    std::fs::rename(&backup, store.join("records.sqlite")).unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    Enrollment::new(stack.demo_config()).run().await.unwrap();
    stack.shutdown().await.unwrap();
    assert_eq!(certificates_in(&dir.path().join("acme")), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_deployment_moves_to_sqlite_with_store_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    for server in ["authz", "acme"] {
        let data = dir.path().join(server);
        server_kit::files::private_dir(&data).unwrap();
        drop(server_kit::store::SledStore::open(&data.join("store")).unwrap());
    }
    let stack = Stack::start(dir.path()).await.unwrap();
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    stack.shutdown().await.unwrap();
    assert!(server_kit::store::is_sled(&dir.path().join("acme/store")));

    for server in ["authz", "acme"] {
        let program = format!("{server}-server");
        let config = config_file(dir.path(), server, None);
        let file = dir
            .path()
            .join(format!("{server}.jsonl"))
            .display()
            .to_string();
        let exported = store_command(&program, &config, &["export", "--to", &file]);
        // The sled store set aside; the same data directory gets a new (SQLite) store.
        let store = dir.path().join(server).join("store");
        std::fs::rename(&store, dir.path().join(format!("{server}-sled.old"))).unwrap();
        let imported = store_command(&program, &config, &["import", "--from", &file]);
        let count = exported.split_whitespace().nth(1).unwrap();
        assert!(
            imported.starts_with(&format!("imported {count} records")),
            "{imported}"
        );
        assert!(store.join("records.sqlite").exists());
        assert!(!server_kit::store::is_sled(&store));
    }

    let stack = Stack::start(dir.path()).await.unwrap();
    let again = Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert_ne!(again.certificate.serial, enrolled.certificate.serial);
    stack.shutdown().await.unwrap();
    let acme_store = server_kit::store::open_embedded(&dir.path().join("acme/store")).unwrap();
    let serial = enrolled.certificate.serial.to_lowercase();
    assert!(
        acme_store
            .get(Tree::new("serials"), &serial)
            .unwrap()
            .is_some(),
        "the certificate issued on sled is in the SQLite store"
    );
    assert_eq!(certificates_in(&dir.path().join("acme")), 2);
}
