//! The background cleanup of both servers, in process with one fixed clock: rounds of
//! enrollments that a device starts (order, backend nonce, DPoP access token, the device
//! challenge answered) and never finishes, then the clock moves past every expiry and the
//! sweeps run. The records go (the orders list is empty again, the order URL is 404), live
//! ones stay, and the bytes of both stores on disk stop growing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use proto::acme::Order;
use serde_json::{Value, json};

/// Orders per round (every eighth also gets its device challenge answered).
const ORDERS_PER_ROUND: usize = 40;
/// Backend nonces per round.
const NONCES_PER_ROUND: usize = 400;
/// Rounds.
const ROUNDS: usize = 60;

fn bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_on_disk(&entry.path())
            } else {
                std::os::unix::fs::MetadataExt::blocks(&meta) * 512
            }
        })
        .sum()
}

/// Waits for the next full pass of a sweeper (one that started after this call).
async fn next_full_pass(passes: &mut tokio::sync::watch::Receiver<u64>) {
    let seen = *passes.borrow_and_update();
    passes.wait_for(|n| *n >= seen + 2).await.unwrap();
}

async fn orders_listed(env: &Env, account: &Account) -> usize {
    let account_body: Value = env.client.get(account, &account.kid).await;
    let list: Value = env
        .client
        .get(account, account_body["orders"].as_str().unwrap())
        .await;
    list["orders"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_enrollments_are_removed_and_the_stores_stop_growing() {
    let env = Env::start_configured(
        |authz| {
            authz.cleanup.interval_secs = 1;
            authz.cleanup.keep_expired_secs = 0;
            // The test's bearer token outlives every jump of the clock.
            authz.lifetimes.access_token = 30 * 86_400;
        },
        |acme| {
            acme.cleanup.interval_secs = 1;
            acme.cleanup.keep_expired_secs = 0;
            acme.rate_limits.new_orders_per_account = server_kit::rate_limit::Rate::new(0, 0);
        },
    )
    .await;
    let env = std::sync::Arc::new(env);
    let (bearer, device, client_id) = env.device().await;
    let account = env.client.new_account().await;
    let mut acme_passes = env.acme.as_ref().unwrap().cleanup_passes().unwrap();
    let mut authz_passes = env.authz.server.as_ref().unwrap().cleanup_passes().unwrap();
    let acme_store = env.acme_dir.path().join("store");
    let authz_store = env.authz.dir.path().join("store");

    let mut sizes = Vec::new();
    let mut last_order_url = String::new();
    for round in 0..ROUNDS {
        for i in 0..ORDERS_PER_ROUND {
            let (order_url, order) = env
                .client
                .new_order(&account, &identifiers(&client_id))
                .await;
            last_order_url = order_url;
            if i % 8 != 0 {
                continue;
            }
            let (device_authz, _) = env.client.authzs(&account, &order).await;
            let token = env
                .access_token(
                    &bearer,
                    &device,
                    &client_id,
                    &account.key,
                    &device_authz.challenges[0],
                )
                .await;
            let answered = env
                .client
                .answer(
                    &account,
                    &device_authz.challenges[0].url,
                    json!({ "access_token": token }),
                )
                .await;
            assert_eq!(answered.status(), 200);
        }
        // Backend nonces fetched and never used, a few at a time.
        let fetchers: Vec<_> = (0..4)
            .map(|_| {
                let (env, bearer, device) = (env.clone(), bearer.clone(), device.clone());
                tokio::spawn(async move {
                    for _ in 0..NONCES_PER_ROUND / 4 {
                        env.authz.nonce(&bearer, &device).await;
                    }
                })
            })
            .collect();
        for fetcher in fetchers {
            fetcher.await.unwrap();
        }
        if round == 0 {
            assert_eq!(orders_listed(&env, &account).await, ORDERS_PER_ROUND);
        }
        // Past the order, nonce, token and replay-window lifetimes; the sweeps, once a
        // second, catch up while the next round runs.
        env.authz.clock.advance(3700);
        env.client.forget_nonce();
        sizes.push((bytes_on_disk(&acme_store), bytes_on_disk(&authz_store)));
    }
    next_full_pass(&mut acme_passes).await;
    next_full_pass(&mut authz_passes).await;
    eprintln!("store bytes after each round (acme, authz): {sizes:?}");
    assert_eq!(orders_listed(&env, &account).await, 0);

    // The expired order is gone, not merely invalid.
    let gone = env.client.post_as(&account, &last_order_url, None).await;
    assert_eq!(gone.status(), 404);

    // What has not expired stays: a fresh order survives a sweep.
    let (live_url, _) = env
        .client
        .new_order(&account, &identifiers(&client_id))
        .await;
    next_full_pass(&mut acme_passes).await;
    let live: Order = env.client.get(&account, &live_url).await;
    assert_eq!(live.status, proto::acme::OrderStatus::Pending);

    // Bounded. sled keeps a log of 512 KiB segments and reuses a segment once most of it is
    // dead, so the size settles on a plateau and wobbles on it by a segment or two. Without the
    // sweep it would keep rising at what the first rounds added per round.
    let acme: Vec<u64> = sizes.iter().map(|s| s.0).collect();
    let authz: Vec<u64> = sizes.iter().map(|s| s.1).collect();
    for (name, sizes) in [("acme", acme), ("authz", authz)] {
        let per_round = sizes[4] / 5;
        let middle = sizes[ROUNDS / 3..2 * ROUNDS / 3]
            .iter()
            .max()
            .copied()
            .unwrap();
        let last = sizes[2 * ROUNDS / 3..].iter().max().copied().unwrap();
        assert!(
            last <= middle + middle / 2,
            "{name} store still growing: {middle} then {last} bytes: {sizes:?}"
        );
        assert!(
            last < per_round * ROUNDS as u64 / 2,
            "{name} store at {last} bytes, not far below the {} it would reach unswept: {sizes:?}",
            per_round * ROUNDS as u64
        );
    }
}
