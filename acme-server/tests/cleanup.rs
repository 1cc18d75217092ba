//! The background cleanup of both servers, in process with one fixed clock: rounds of
//! enrollments that a device starts (order, backend nonce, DPoP access token, the device
//! challenge answered) and never finishes, then the clock moves past every expiry and the
//! sweeps run. The same rounds run at the same time against a twin pair of servers whose
//! sweeps are off. Judged by what the sweep guarantees: the expired records are gone from every
//! tree (counted in the stores after shutdown, against the twin's thousands), the live ones are
//! all there, the expired order URL is 404; and the swept stores end far smaller on disk than
//! the unswept twins, whatever sled's segment allocation does on this build profile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use proto::acme::Order;
use proto::wire_id::ClientId;
use serde_json::{Value, json};
use server_kit::store::{Store, Tree};

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

/// What a pair of servers went through: store bytes after each round, and the last order.
struct Rounds {
    sizes: Vec<(u64, u64)>,
    last_order_url: String,
}

/// Both servers with their sweeps on (every second, nothing kept once expired) or off.
async fn servers(swept: bool) -> Env {
    let interval = u64::from(swept);
    Env::start_configured(
        |authz| {
            authz.cleanup.interval_secs = interval;
            authz.cleanup.keep_expired_secs = 0;
            // The test's bearer token outlives every jump of the clock.
            authz.lifetimes.access_token = 30 * 86_400;
        },
        |acme| {
            acme.cleanup.interval_secs = interval;
            acme.cleanup.keep_expired_secs = 0;
            acme.rate_limits.new_orders_per_account = server_kit::rate_limit::Rate::new(0, 0);
        },
    )
    .await
}

/// The rounds: orders (every eighth with its device challenge answered) and unused backend
/// nonces, then the clock past every lifetime (order, nonce, token, replay window).
async fn run_rounds(
    env: Arc<Env>,
    account: &Account,
    device: &(String, String, ClientId),
) -> Rounds {
    let (bearer, device, client_id) = device;
    let acme_store = env.acme_dir.path().join("store");
    let authz_store = env.authz.dir.path().join("store");
    let mut sizes = Vec::new();
    let mut last_order_url = String::new();
    for round in 0..ROUNDS {
        for i in 0..ORDERS_PER_ROUND {
            let (order_url, order) = env.client.new_order(account, &identifiers(client_id)).await;
            last_order_url = order_url;
            if i % 8 != 0 {
                continue;
            }
            let (device_authz, _) = env.client.authzs(account, &order).await;
            let token = env
                .access_token(
                    bearer,
                    device,
                    client_id,
                    &account.key,
                    &device_authz.challenges[0],
                )
                .await;
            let answered = env
                .client
                .answer(
                    account,
                    &device_authz.challenges[0].url,
                    json!({ "access_token": token }),
                )
                .await;
            assert_eq!(answered.status(), 200);
        }
        // Backend nonces fetched and never used, a few at a time.
        let fetchers: Vec<_> = (0..4)
            .map(|_| {
                let (env, bearer, device) = (env.clone(), bearer.to_owned(), device.to_owned());
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
            assert_eq!(orders_listed(&env, account).await, ORDERS_PER_ROUND);
        }
        env.authz.clock.advance(3700);
        env.client.forget_nonce();
        sizes.push((bytes_on_disk(&acme_store), bytes_on_disk(&authz_store)));
    }
    Rounds {
        sizes,
        last_order_url,
    }
}

/// Records in each tree of a stopped server's store.
fn records(store: &Path, trees: &[Tree]) -> Vec<(&'static str, usize)> {
    let store = server_kit::store::open_embedded(store).unwrap();
    let store: &dyn Store = store.as_ref();
    trees
        .iter()
        .map(|tree| (tree.name(), store.scan_prefix(*tree, "").unwrap().len()))
        .collect()
}

fn count(records: &[(&'static str, usize)], tree: Tree) -> usize {
    records
        .iter()
        .find(|(name, _)| *name == tree.name())
        .map(|(_, n)| *n)
        .unwrap()
}

/// Stops both servers (their stores flushed and closed) and counts their records.
async fn stop_and_count(env: Env) -> (Vec<(&'static str, usize)>, Vec<(&'static str, usize)>) {
    use acme_server::sa::trees as acme;
    use authz_server::store::trees as authz;
    let Env {
        authz: mut harness,
        acme: running,
        acme_dir,
        ..
    } = env;
    running.unwrap().shutdown().await.unwrap();
    harness.server.take().unwrap().shutdown().await.unwrap();
    let acme_records = records(
        &acme_dir.path().join("store"),
        &[
            acme::ACCOUNTS,
            acme::ACCOUNT_KEYS,
            acme::ORDERS,
            acme::ACCOUNT_ORDERS,
            acme::AUTHZS,
            acme::PENDING_AUTHZS,
            acme::CERTIFICATES,
            acme::SERIALS,
        ],
    );
    let authz_records = records(
        &harness.dir.path().join("store"),
        &[
            authz::USERS,
            authz::DEVICES,
            authz::BACKEND_NONCES,
            authz::DPOP_JTIS,
        ],
    );
    (acme_records, authz_records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_enrollments_are_removed_and_the_stores_stop_growing() {
    use acme_server::sa::trees as acme;
    use authz_server::store::trees as authz;
    let (swept, unswept) = tokio::join!(servers(true), servers(false));
    let (swept, unswept) = (Arc::new(swept), Arc::new(unswept));
    let device = swept.device().await;
    let twin_device = unswept.device().await;
    let account = swept.client.new_account().await;
    let twin_account = unswept.client.new_account().await;
    let mut acme_passes = swept.acme.as_ref().unwrap().cleanup_passes().unwrap();
    let mut authz_passes = swept
        .authz
        .server
        .as_ref()
        .unwrap()
        .cleanup_passes()
        .unwrap();

    let (rounds, twin_rounds) = tokio::join!(
        run_rounds(swept.clone(), &account, &device),
        run_rounds(unswept.clone(), &twin_account, &twin_device),
    );
    next_full_pass(&mut acme_passes).await;
    next_full_pass(&mut authz_passes).await;
    assert_eq!(orders_listed(&swept, &account).await, 0);

    // The expired order is gone, not merely invalid.
    let gone = swept
        .client
        .post_as(&account, &rounds.last_order_url, None)
        .await;
    assert_eq!(gone.status(), 404);

    // What has not expired stays: a fresh order survives a sweep.
    let (live_url, _) = swept
        .client
        .new_order(&account, &identifiers(&device.2))
        .await;
    next_full_pass(&mut acme_passes).await;
    let live: Order = swept.client.get(&account, &live_url).await;
    assert_eq!(live.status, proto::acme::OrderStatus::Pending);

    // Every tree holds exactly what is live: the account, the fresh order with its two
    // authorizations, the user and the device; nothing of the expired rounds. The twin shows
    // what the rounds left behind without the sweep.
    let swept = Arc::into_inner(swept).unwrap();
    let unswept = Arc::into_inner(unswept).unwrap();
    let (acme_left, authz_left) = stop_and_count(swept).await;
    let (acme_unswept, authz_unswept) = stop_and_count(unswept).await;
    eprintln!("records left, swept: {acme_left:?} {authz_left:?}");
    eprintln!("records left, unswept: {acme_unswept:?} {authz_unswept:?}");
    for (tree, live) in [
        (acme::ACCOUNTS, 1),
        (acme::ACCOUNT_KEYS, 1),
        (acme::ORDERS, 1),
        (acme::ACCOUNT_ORDERS, 1),
        (acme::AUTHZS, 2),
        (acme::PENDING_AUTHZS, 2),
        (acme::CERTIFICATES, 0),
        (acme::SERIALS, 0),
    ] {
        assert_eq!(count(&acme_left, tree), live, "acme {}", tree.name());
    }
    for (tree, live) in [
        (authz::USERS, 1),
        (authz::DEVICES, 1),
        (authz::BACKEND_NONCES, 0),
        (authz::DPOP_JTIS, 0),
    ] {
        assert_eq!(count(&authz_left, tree), live, "authz {}", tree.name());
    }
    let expired_orders = ROUNDS * ORDERS_PER_ROUND;
    assert_eq!(count(&acme_unswept, acme::ORDERS), expired_orders);
    assert_eq!(count(&acme_unswept, acme::AUTHZS), 2 * expired_orders);
    assert!(count(&authz_unswept, authz::BACKEND_NONCES) >= ROUNDS * NONCES_PER_ROUND);
    assert!(count(&authz_unswept, authz::DPOP_JTIS) >= ROUNDS * ORDERS_PER_ROUND / 8);

    // On disk. sled 0.34 writes its log in segments of 512 KiB (`Config::segment_size`) and
    // reuses a segment once most of it is dead, so a store whose live data stays the same moves
    // by whole segments. After the first third of the rounds the swept stores may move by a few
    // segments and no more; the unswept twins, fed the same rounds, grow by more than that
    // margin, which shows the bound would catch a sweep that stopped working.
    eprintln!(
        "store bytes after each round (acme, authz), swept: {:?}",
        rounds.sizes
    );
    eprintln!(
        "store bytes after each round (acme, authz), unswept: {:?}",
        twin_rounds.sizes
    );
    const SEGMENT: u64 = 512 * 1024;
    const MARGIN: u64 = 4 * SEGMENT;
    let settled = ROUNDS / 3 - 1;
    for (name, pick) in [
        ("acme", (|s: &(u64, u64)| s.0) as fn(&(u64, u64)) -> u64),
        ("authz", |s: &(u64, u64)| s.1),
    ] {
        let swept: Vec<u64> = rounds.sizes.iter().map(pick).collect();
        let twin: Vec<u64> = twin_rounds.sizes.iter().map(pick).collect();
        let later = swept[settled..].iter().max().copied().unwrap();
        assert!(
            later <= swept[settled] + MARGIN,
            "{name} store grew from {} to {later} bytes after round {settled}: {swept:?}",
            swept[settled]
        );
        assert!(
            twin[ROUNDS - 1] > twin[settled] + MARGIN,
            "the unswept {name} twin grew only from {} to {} bytes: the margin proves nothing",
            twin[settled],
            twin[ROUNDS - 1]
        );
    }
}
