//! The PostgreSQL store against a real PostgreSQL 15 started for the test: the store contract,
//! single use across several stores (what replicas are), the schema version check, and an
//! outage the store comes back from by itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};

use server_kit::Error;
use server_kit::store::{Store, StoreConfig, Tree};
use server_kit::testing::{TestPostgres, store_contract, walk_reads_one_snapshot};

const NONCES: Tree = Tree::new("nonces");

fn open(pg: &TestPostgres, schema: &str) -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    pg.store_config(Some(schema))
        .open(dir.path(), "unused")
        .unwrap()
}

/// Waits (at most 10 s) until `n` sessions of the database match `condition` (SQL on
/// `pg_stat_activity`).
fn await_sessions(pg: &TestPostgres, condition: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE {condition}");
    while pg.psql(&sql) != n.to_string() {
        assert!(
            std::time::Instant::now() < deadline,
            "never {n} sessions where {condition}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn the_postgres_store_keeps_the_store_contract() {
    let pg = TestPostgres::start();
    let store = open(&pg, "contract");
    assert!(store.shared());
    store_contract(store.as_ref());
    // What it wrote is in the table, under its schema, in the shape of migration 1.
    assert_eq!(
        pg.psql("SELECT count(*) FROM contract.records WHERE tree = 'devices'"),
        "6"
    );
    assert_eq!(
        pg.psql("SELECT max(version) FROM contract.schema_migrations"),
        "1"
    );
}

#[test]
fn a_walk_through_the_store_reads_one_snapshot_while_it_is_written() {
    let pg = TestPostgres::start();
    walk_reads_one_snapshot(open(&pg, "walk").as_ref());
}

#[test]
fn a_value_is_taken_once_however_many_stores_race_for_it() {
    let pg = TestPostgres::start();
    let stores: Vec<Arc<dyn Store>> = (0..3).map(|_| open(&pg, "race")).collect();
    for round in 0..5 {
        let key = format!("nonce-{round}");
        stores[0].put(NONCES, &key, b"issued").unwrap();
        let start = Arc::new(Barrier::new(100));
        let racers: Vec<_> = (0..100)
            .map(|i| {
                let (store, start, key) = (stores[i % 3].clone(), start.clone(), key.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let taken = store.take(NONCES, &key).unwrap().is_some();
                    let claimed = store
                        .compare_and_swap(NONCES, &format!("claim-{key}"), None, Some(b"x"))
                        .unwrap();
                    (taken, claimed)
                })
            })
            .collect();
        let outcomes: Vec<(bool, bool)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(
            outcomes.iter().filter(|(taken, _)| *taken).count(),
            1,
            "round {round}"
        );
        assert_eq!(
            outcomes.iter().filter(|(_, claimed)| *claimed).count(),
            1,
            "round {round}"
        );
    }
}

#[test]
fn a_schema_written_by_a_newer_server_is_refused_at_open() {
    let pg = TestPostgres::start();
    drop(open(&pg, "versions"));
    // Opening again changes nothing.
    drop(open(&pg, "versions"));
    assert_eq!(
        pg.psql("SELECT count(*) FROM versions.schema_migrations"),
        "1"
    );
    pg.psql("INSERT INTO versions.schema_migrations (version) VALUES (2)");
    let dir = tempfile::tempdir().unwrap();
    let refused = pg
        .store_config(Some("versions"))
        .open(dir.path(), "unused")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("version 2, newer than this server's 1"),
        "{refused}"
    );
}

#[test]
fn a_wrong_password_is_refused_at_open_without_echoing_it() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong");
    server_kit::files::write_private(&file, b"not-the-password-7f3a").unwrap();
    let config = StoreConfig {
        password_file: Some(file),
        ..pg.store_config(Some("auth"))
    };
    let refused = config.open(dir.path(), "unused").unwrap_err();
    assert!(matches!(refused, Error::Config(_)), "{refused}");
    let refused = refused.to_string();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    assert!(!refused.contains("not-the-password"), "{refused}");
}

#[test]
fn an_outage_is_unavailable_while_it_lasts_and_over_without_reopening() {
    let pg = TestPostgres::start();
    let store = open(&pg, "outage");
    store.put(NONCES, "before", b"1").unwrap();
    pg.stop();
    for _ in 0..3 {
        let failed = store.get(NONCES, "before").unwrap_err();
        assert!(matches!(failed, Error::Unavailable(_)), "{failed}");
        let failed = store.put(NONCES, "during", b"2").unwrap_err();
        assert!(matches!(failed, Error::Unavailable(_)), "{failed}");
    }
    pg.restart();
    // Calls fail at once for a moment after a failed connection; within a few seconds the
    // same store answers again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let value = loop {
        match store.get(NONCES, "before") {
            Ok(value) => break value,
            Err(Error::Unavailable(_)) if std::time::Instant::now() < deadline => {
                std::thread::yield_now();
            }
            Err(e) => panic!("still failing after the restart: {e}"),
        }
    };
    assert_eq!(value.as_deref(), Some(&b"1"[..]));
    assert_eq!(
        store.get(NONCES, "during").unwrap(),
        None,
        "a failed write left nothing"
    );
    store.put(NONCES, "after", b"3").unwrap();
}

#[test]
fn with_a_ca_file_the_store_speaks_tls_and_checks_the_certificate() {
    let pg = TestPostgres::start_with_tls();
    let dir = tempfile::tempdir().unwrap();
    let with_tls = StoreConfig {
        ca_file: Some(pg.tls_root()),
        ..pg.store_config(Some("tls"))
    };
    let store = with_tls.open(dir.path(), "tls-client").unwrap();
    store.put(NONCES, "n", b"over TLS").unwrap();
    assert_eq!(
        store.take(NONCES, "n").unwrap().as_deref(),
        Some(&b"over TLS"[..])
    );
    // The server says the connection is encrypted.
    assert_eq!(
        pg.psql(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'e2ei-tls-client'"
        ),
        "t"
    );
    // Without the CA the store connects in the clear, which this server refuses.
    let refused = pg
        .store_config(Some("tls"))
        .open(dir.path(), "plain")
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no encryption"), "{refused}");
    // A root the server's certificate does not chain to is refused by the store.
    let other = server_kit::tls::ensure_dev_tls(&dir.path().join("other"), None).unwrap();
    let untrusted = StoreConfig {
        ca_file: Some(other.ca_cert),
        ..pg.store_config(Some("tls"))
    };
    let refused = untrusted
        .open(dir.path(), "untrusted")
        .unwrap_err()
        .to_string();
    assert!(refused.contains("certificate"), "{refused}");
}

#[test]
fn a_call_that_cannot_send_its_statement_within_the_connect_timeout_is_never_run() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        pool_size: 1,
        connect_timeout_ms: 400,
        statement_timeout_ms: 10_000,
        ..pg.store_config(Some("line"))
    };
    let store = config.open(dir.path(), "unused").unwrap();
    store.put(NONCES, "locked", b"0").unwrap();
    std::thread::scope(|scope| {
        // Another session holds the record's row for two seconds.
        let holder = scope.spawn(|| {
            pg.psql(
                "BEGIN; SELECT 1 FROM line.records WHERE key = 'locked'::bytea FOR UPDATE; \
                 SELECT pg_sleep(2); COMMIT;",
            )
        });
        await_sessions(&pg, "wait_event = 'PgSleep'", 1);
        // The store's only connection waits for that row.
        let first = scope.spawn(|| store.put(NONCES, "locked", b"1"));
        await_sessions(&pg, "wait_event_type = 'Lock'", 1);
        // A second call waits in line for the connection past its connect timeout: it is
        // answered then, without its statement, long before its answer deadline (10.4 s).
        let started = std::time::Instant::now();
        let second = store.put(NONCES, "queued", b"2");
        let waited = started.elapsed();
        assert!(
            matches!(&second, Err(Error::Unavailable(why)) if why.contains("not run")),
            "{second:?}"
        );
        assert!(
            waited < std::time::Duration::from_millis(1500),
            "{waited:?}"
        );
        first.join().unwrap().unwrap();
        holder.join().unwrap();
    });
    // The first call was applied once the row was free; the second never is.
    assert_eq!(
        store.get(NONCES, "locked").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(store.get(NONCES, "queued").unwrap(), None);
}

#[test]
fn a_connection_the_database_ended_while_unused_is_opened_again_before_the_next_call() {
    let pg = TestPostgres::start();
    let store = open(&pg, "ended");
    store.put(NONCES, "before", b"1").unwrap();
    let ours = "application_name = 'e2ei-unused' AND backend_type = 'client backend'";
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {ours}"
        )),
        "1"
    );
    await_sessions(&pg, ours, 0);
    // Well within the idle second after which a connection is checked with a round trip.
    assert_eq!(
        store.get(NONCES, "before").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn calls_answered_unavailable_during_a_stall_are_never_applied_later() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        pool_size: 1,
        connect_timeout_ms: 300,
        statement_timeout_ms: 300,
        ..pg.store_config(Some("stall"))
    };
    let store = config.open(dir.path(), "unused").unwrap();
    store.put(NONCES, "before", b"1").unwrap();
    pg.freeze();
    // Six writes at once on one connection: one is sent and hangs, the others wait in line
    // longer than their callers wait.
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || store.put(NONCES, &format!("late-{i}"), b"x"))
        })
        .collect();
    for writer in writers {
        let answered = writer.join().unwrap();
        assert!(
            matches!(answered, Err(Error::Unavailable(_))),
            "{answered:?}"
        );
    }
    pg.thaw();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.get(NONCES, "before").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery after the stall"
        );
        std::thread::yield_now();
    }
    // At most the one statement that reached the database before it froze may have been
    // applied (its outcome was unknown); none that waited in line.
    let applied = (0..6)
        .filter(|i| store.get(NONCES, &format!("late-{i}")).unwrap().is_some())
        .count();
    assert!(
        applied <= 1,
        "{applied} writes answered 503 were applied later"
    );
}
