//! Password guessing with real concurrency against the authz-server over HTTPS: a burst of
//! simultaneous guesses for one user verifies at most the failed-login burst (the tokens are
//! taken before argon2 runs, not counted after it), and a burst from one address is mostly
//! refused at once (a bounded number of its checks may run or wait) while another address logs
//! in meanwhile, its check taken before the flood's; the workers' total queue is bounded too.
//! And one address cannot hold every connection of the server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;
use server_kit::rate_limit::Rate;

/// How many passwords were verified: every verification writes one audit event.
fn verified(h: &Harness) -> usize {
    std::fs::read_to_string(h.dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"login.succeeded\"") || l.contains("\"login.failed\""))
        .count()
}

/// A client whose connections come from `ip` (any address of 127.0.0.0/8 is loopback).
fn client_from(h: &Harness, ip: IpAddr) -> reqwest::Client {
    http_client_from(&h.dir.path().join("tls/ca.pem"), Some(ip))
}

/// Posts the login form; returns the status and the page (or the redirect's code).
async fn login(client: &reqwest::Client, h: &Harness, user: &str, password: &str) -> (u16, String) {
    let mut form = authorize_params(&Pkce::new());
    form.push(("username", user.into()));
    form.push(("password", password.into()));
    let response = client
        .post(h.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 303 {
        return (status, location_params(&response)["code"].clone());
    }
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_simultaneous_guesses_for_one_user_verify_at_most_the_burst() {
    const BURST: usize = 10;
    let h = Arc::new(
        Harness::start_with(|c| {
            c.rate_limits.failed_logins_per_user = Rate::new(1, BURST as u32);
            c.rate_limits.failed_logins_per_ip = Rate::UNLIMITED;
            // Room for every request on the workers and for every connection: only the failure
            // limit decides.
            c.password_checks.per_address = 1000;
            c.password_checks.per_user = 1000;
            c.password_checks.queue = 1000;
            c.limits.max_connections_per_address = 1000;
        })
        .await,
    );
    let client = Arc::new(h.client.clone());
    let attempts: Vec<_> = (0..300)
        .map(|i| {
            let (h, client) = (h.clone(), client.clone());
            tokio::spawn(async move {
                let password = if i == 211 {
                    h.password.clone()
                } else {
                    format!("guess {i}")
                };
                login(&client, &h, "alice_wire", &password).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let refused = outcomes
        .iter()
        .filter(|(status, page)| {
            *status == 429 && page.contains("too many failed or unfinished logins for this user")
        })
        .count();
    let wrong = outcomes.iter().filter(|(s, _)| *s == 401).count();
    let codes = outcomes.iter().filter(|(s, _)| *s == 303).count();
    // A wrong guess keeps its token and the one right password gives its token back, so the
    // burst allows at most BURST wrong guesses and the right one.
    assert!(wrong <= BURST, "{wrong} wrong guesses were verified");
    assert!(codes <= 1);
    assert_eq!(refused + wrong + codes, 300, "{outcomes:?}");
    assert!(
        verified(&h) <= BURST + 1,
        "{} passwords verified",
        verified(&h)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_unknown_handles_from_one_address_is_refused_at_once_and_others_log_in() {
    /// Requests each of the burst's 300 clients sends at most.
    const ROUNDS: usize = 50;
    let h = Arc::new(
        Harness::start_with(|c| {
            // Only the password workers' bounds (defaults: 16 per address) decide, not the
            // connection cap of the address.
            c.rate_limits.failed_logins_per_ip = Rate::UNLIMITED;
            c.password_checks.workers = 2;
            c.limits.max_connections_per_address = 1000;
        })
        .await,
    );
    let burst_client = Arc::new(client_from(&h, [127, 0, 0, 1].into()));
    let user_done = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicUsize::new(300));
    // 300 connections from one address guess unknown handles until the user is in.
    let burst: Vec<_> = (0..300)
        .map(|i| {
            let (h, client) = (h.clone(), burst_client.clone());
            let (user_done, active) = (user_done.clone(), active.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for round in 0..ROUNDS {
                    if user_done.load(Ordering::SeqCst) {
                        break;
                    }
                    let handle = format!("nobody{i}x{round}");
                    let (status, page) = login(&client, &h, &handle, "guess").await;
                    if status == 429 {
                        assert!(
                            page.contains("password checks in progress from this address"),
                            "{page}"
                        );
                    } else {
                        assert_eq!(status, 401, "{page}");
                    }
                    statuses.push(status);
                }
                active.fetch_sub(1, Ordering::SeqCst);
                statuses
            })
        })
        .collect();
    // Meanwhile a user logs in from another address.
    let user_client = client_from(&h, [127, 0, 0, 2].into());
    let (status, _) = login(&user_client, &h, "alice_wire", &h.password).await;
    user_done.store(true, Ordering::SeqCst);
    let still_guessing = active.load(Ordering::SeqCst);
    assert_eq!(status, 303, "the user's login got a code during the burst");
    assert!(
        still_guessing > 0,
        "the burst was over before the user's login: the test proved nothing"
    );

    let mut statuses = Vec::new();
    for task in burst {
        statuses.extend(task.await.unwrap());
    }
    let busy = statuses.iter().filter(|s| **s == 429).count();
    // One address has at most 16 checks running or waiting: nearly every guess is refused
    // before hashing. Without the bound every guess would queue for the workers.
    assert!(
        busy * 10 >= statuses.len() * 8,
        "only {busy} of {} guesses were refused before hashing",
        statuses.len()
    );
    assert!(verified(&h) <= statuses.len() - busy + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_from_many_addresses_wait_in_a_bounded_queue() {
    let h = Arc::new(
        Harness::start_with(|c| {
            c.rate_limits.failed_logins_per_ip = Rate::UNLIMITED;
            c.password_checks.workers = 1;
            c.password_checks.queue = 4;
            c.password_checks.per_address = 1;
        })
        .await,
    );
    // 200 addresses, one guess each, all at once: at most five checks run or wait.
    let attempts: Vec<_> = (0..200u8)
        .map(|i| {
            let h = h.clone();
            let client = client_from(&h, [127, 0, 1, i].into());
            tokio::spawn(async move { login(&client, &h, &format!("nobody{i}"), "guess").await })
        })
        .collect();
    let mut full = 0;
    for attempt in attempts {
        let (status, page) = attempt.await.unwrap();
        if status == 429 {
            assert!(
                page.contains("password checks in progress on this server"),
                "{page}"
            );
            full += 1;
        } else {
            assert_eq!(status, 401, "{page}");
        }
    }
    assert!(full > 0, "200 simultaneous checks all fitted a queue of 4");
    assert_eq!(verified(&h), 200 - full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection_of_the_server() {
    let h = Arc::new(
        Harness::start_with(|c| {
            c.limits.max_connections = 300;
            c.limits.max_connections_per_address = 100;
        })
        .await,
    );
    // 150 clients from one address, each holding its connection open (a held request body).
    let flood: Vec<_> = (0..150)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let client = client_from(&h, [127, 0, 0, 1].into());
                client.get(h.url("/jwks")).send().await.map(|r| (client, r))
            })
        })
        .collect();
    let mut held = Vec::new();
    let mut refused = 0;
    for attempt in flood {
        match attempt.await.unwrap() {
            Ok(kept) => held.push(kept),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(held.len(), 100, "{refused} refused");
    // The connections stay open in the kept clients' pools; another address is served.
    let other = client_from(&h, [127, 0, 0, 3].into());
    let response = other.get(h.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_passwords_cannot_keep_one_accounts_checks_in_the_queue() {
    // The right password gives its failed-login tokens back, so only the per-user bound keeps
    // a few accounts from filling the workers' queue (the failed-login limits are lifted: with
    // their buckets in a database, a refund may come after the next logins took their tokens).
    let h = Arc::new(
        Harness::start_with(|c| {
            c.rate_limits.failed_logins_per_ip = Rate::UNLIMITED;
            c.rate_limits.failed_logins_per_user = Rate::UNLIMITED;
            c.password_checks.workers = 1;
        })
        .await,
    );
    let attempts: Vec<_> = (0..100u8)
        .map(|i| {
            let h = h.clone();
            let client = client_from(&h, [127, 0, 2, i].into());
            tokio::spawn(async move { login(&client, &h, "alice_wire", &h.password).await })
        })
        .collect();
    let mut busy = 0;
    for attempt in attempts {
        let (status, page) = attempt.await.unwrap();
        if status == 429 {
            assert!(
                page.contains("password checks in progress for this user"),
                "{page}"
            );
            busy += 1;
        } else {
            assert_eq!(status, 303, "{page}");
        }
    }
    assert!(busy > 0, "100 simultaneous logins of one user all ran");
    assert_eq!(verified(&h), 100 - busy);
}

#[tokio::test]
async fn what_cannot_be_a_handle_is_neither_hashed_nor_kept_nor_logged() {
    let h = Harness::start().await;
    let typed = format!("MyPassword!{}", "x".repeat(60_000));
    for _ in 0..3 {
        let (status, _) = login(&h.client, &h, &typed, "guess").await;
        assert_eq!(status, 401);
    }
    let audit = std::fs::read_to_string(h.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        !audit.contains("MyPassword"),
        "the typed handle reached the audit log"
    );
    assert_eq!(
        audit.lines().filter(|l| l.contains("login.failed")).count(),
        3
    );
    assert!(
        audit.len() < 1000,
        "{} bytes of audit for three failures",
        audit.len()
    );
}
