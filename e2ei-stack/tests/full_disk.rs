//! A full disk under running servers, for real: both data directories on a tmpfs of a few
//! megabytes, filled by a file until the kernel answers ENOSPC. While it is full, writes are
//! refused with 503 and `/readyz` says so; once the file is removed the same servers take
//! writes again without a restart. Stopped and started again on a full disk, nothing earlier is
//! lost or damaged. Mounting needs root, which the tests have in CI (`cargo xtask test`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client_sdk::Enrollment;
use e2ei_stack::stack::Stack;

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct SmallDisk {
    _parent: tempfile::TempDir,
    root: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("disk");
        std::fs::create_dir(&root).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&root)
            .status()
            .expect("mount(8) is needed to make a small filesystem");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}): this test needs root (CI runs the tests as root)"
        );
        Self {
            _parent: parent,
            root,
        }
    }

    /// Fills the filesystem with `filler` until the kernel refuses a single byte more.
    fn fill(&self) -> PathBuf {
        let filler = self.root.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            loop {
                match file.write_all(&bytes) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling: {e}"),
                }
            }
        }
        file.sync_all().ok();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.root)
            .status();
    }
}

/// `/readyz` of `base` until it answers `status`, for at most 10 s (the probe keeps an outcome
/// one second).
async fn readiness_becomes(http: &reqwest::Client, base: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = http.get(format!("{base}/readyz")).send().await.unwrap();
        if response.status() == status {
            if status == 503 {
                assert_eq!(response.headers()["retry-after"], "1");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/readyz still {} after 10 s",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn certificates_in(dir: &Path) -> usize {
    let store = server_kit::store::open_embedded(&dir.join("acme/store")).unwrap();
    store
        .scan_prefix(server_kit::store::Tree::new("certificates"), "")
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_and_the_same_servers_recover_when_space_returns() {
    let disk = SmallDisk::mount("24m");
    let stack = Stack::start(&disk.root).await.unwrap();
    let http = server_kit::tls::https_client(&stack.tls_roots(), Duration::from_secs(10)).unwrap();
    Enrollment::new(stack.demo_config()).run().await.unwrap();

    let filler = disk.fill();
    // The login is the first write, answered as OAuth says (a redirect with the error).
    let refused = Enrollment::new(stack.demo_config())
        .run()
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("temporarily_unavailable"),
        "{refused}"
    );
    for base in [&stack.authz.base_url, &stack.acme.base_url] {
        readiness_becomes(&http, base, 503).await;
    }

    std::fs::remove_file(&filler).unwrap();
    for base in [&stack.authz.base_url, &stack.acme.base_url] {
        readiness_becomes(&http, base, 200).await;
    }
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert!(enrolled.chain_pem.contains("BEGIN CERTIFICATE"));
    stack.shutdown().await.unwrap();
    assert_eq!(certificates_in(&disk.root), 2, "the first and the last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_full_disk_damages_nothing() {
    let disk = SmallDisk::mount("24m");
    let stack = Stack::start(&disk.root).await.unwrap();
    Enrollment::new(stack.demo_config()).run().await.unwrap();
    stack.shutdown().await.unwrap();

    let filler = disk.fill();
    let Err(refused) = Stack::start(&disk.root).await else {
        panic!("a start on a full disk was let through");
    };
    let refused = format!("{refused:#}");
    assert!(refused.contains("the disk is full"), "{refused}");
    std::fs::remove_file(&filler).unwrap();

    let stack = Stack::start(&disk.root).await.unwrap();
    Enrollment::new(stack.demo_config()).run().await.unwrap();
    stack.shutdown().await.unwrap();
    assert_eq!(
        certificates_in(&disk.root),
        2,
        "the one before the full disk is still there"
    );
}
