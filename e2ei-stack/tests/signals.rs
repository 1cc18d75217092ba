//! A supervisor that stops a server right after the server announced it is ready gets a
//! graceful shutdown: each binary, sent SIGTERM the moment its ready line arrives, exits 0 —
//! every time, not only when the signal happens to arrive after the handler is in place.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use e2ei_stack::bench::procs;
use support::{Managed, args};

/// Start–stop cycles per binary (the race it guards against lost about one in twenty).
const CYCLES: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_stopped_right_after_their_ready_line_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ready, extra) in [
        ("authz-server", "authz-server listening on ", vec![]),
        (
            "acme-server",
            "acme-server directory ",
            // Never fetched: the servers only start and stop.
            vec!["--backend-jwks-url", "https://127.0.0.1:9/jwks"],
        ),
    ] {
        let data = dir.path().join(name);
        let data = data.to_str().unwrap();
        for cycle in 0..CYCLES {
            let server = Managed::start(
                procs::binary(name).unwrap(),
                args(
                    &[
                        &[
                            "--data-dir",
                            data,
                            "serve",
                            "--dev",
                            "--listen",
                            "127.0.0.1:0",
                        ],
                        extra.as_slice(),
                    ]
                    .concat(),
                ),
                ready,
                0,
                None,
            )
            .await;
            let status = server.terminate().await;
            assert!(status.success(), "{name}, cycle {cycle}: {status}");
        }
    }
}
