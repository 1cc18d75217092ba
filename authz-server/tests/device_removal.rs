//! `DELETE /clients/{id}` over HTTPS against the real server: the owner removes a device, which
//! ends its backend nonces, frees its place under `caps.devices_per_user`, and leaves nothing the
//! server accepts for it; another user's device is not found; and of 100 simultaneous deletions
//! of one device exactly one succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::store::{Store, trees};
use common::*;
use serde_json::Value;

async fn delete(h: &Harness, token: &str, device: &str) -> reqwest::Response {
    h.client
        .delete(h.url(&format!("/clients/{device}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn listed(h: &Harness, token: &str) -> Vec<String> {
    let body: Value = h
        .client
        .get(h.url("/clients"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The devices the backend nonces still stored are bound to.
fn nonce_devices(store: &dyn Store) -> Vec<String> {
    store
        .scan_prefix(trees::BACKEND_NONCES, "")
        .unwrap()
        .iter()
        .map(|(_, v)| {
            let binding: Value = serde_json::from_slice(v).unwrap();
            binding["device_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_owner_deletes_a_device_and_nothing_for_it_is_accepted_any_more() {
    let mut h = Harness::start_seeded(
        |c| c.caps.devices_per_user = 2,
        |store| add_user(store, "bob_wire", "bobs password"),
    )
    .await;
    let token = h.bearer_login().await;
    let (gone, gone_client_id) = h.register_device(&token).await;
    let (kept, _) = h.register_device(&token).await;
    assert_wire_error(
        h.client
            .post(h.url("/clients"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        403,
        "too-many-clients",
    )
    .await;

    // A Wire access token for the device, an outstanding nonce of it, and one of the other.
    let account = account_key();
    let used = h.nonce(&token, &gone).await;
    let proof = h
        .wire_proof_claims(&gone, &gone_client_id, &used)
        .sign(&account)
        .unwrap();
    let issued = h.access_token(&token, &gone, &proof).await;
    assert_eq!(issued.status(), 200);
    let wire_token = issued.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let outstanding = h.nonce(&token, &gone).await;
    h.nonce(&token, &kept).await;

    // Another user cannot see, let alone delete, it.
    let bob = token_of_login(&h, "bob_wire", "bobs password").await;
    assert_wire_error(delete(&h, &bob, &gone).await, 404, "client-not-found").await;
    assert_eq!(listed(&h, &token).await.len(), 2);

    let response = delete(&h, &token, &gone).await;
    assert_eq!(response.status(), 204);
    assert_wire_error(delete(&h, &token, &gone).await, 404, "client-not-found").await;
    assert_eq!(listed(&h, &token).await, vec![kept.clone()]);

    // Nothing for the device is accepted: no nonce, no access token, even with a nonce
    // fetched before the deletion.
    let nonce = h
        .client
        .head(h.url(&format!("/clients/{gone}/nonce")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(nonce.status(), 404);
    let late = h
        .wire_proof_claims(&gone, &gone_client_id, &outstanding)
        .sign(&account)
        .unwrap();
    assert_wire_error(
        h.access_token(&token, &gone, &late).await,
        404,
        "client-not-found",
    )
    .await;
    // The Wire access token issued before is no credential here (the ACME server verifies
    // it offline until its `exp`, `lifetimes.client_access_token`).
    for path in ["/userinfo", "/clients"] {
        let response = h
            .client
            .get(h.url(path))
            .bearer_auth(&wire_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }

    // Its place under the cap is free again.
    let (replacement, _) = h.register_device(&token).await;
    assert_ne!(replacement, gone);

    // The deleted device's nonces are gone from the store, the other device's stay; the
    // audit log records the deletion.
    h.server.take().unwrap().shutdown().await.unwrap();
    let store = h.open_store();
    assert_eq!(nonce_devices(store.as_ref()), vec![kept]);
    let audit = std::fs::read_to_string(h.dir.path().join("audit.jsonl")).unwrap();
    let deleted: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "device.deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{audit}");
    assert_eq!(deleted[0]["device"], gone.as_str());
}

async fn token_of_login(h: &Harness, user: &str, password: &str) -> String {
    let scope = format!("openid profile {DEVICE_SCOPE}");
    h.login_as("wireapp", &scope, user, password).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_100_simultaneous_deletions_of_one_device_exactly_one_succeeds() {
    let h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, _) = h.register_device(&token).await;
    let (other, _) = h.register_device(&token).await;
    let racing: Vec<_> = (0..100)
        .map(|_| {
            let (client, token) = (h.client.clone(), token.clone());
            let url = h.url(&format!("/clients/{device}"));
            tokio::spawn(async move { client.delete(url).bearer_auth(token).send().await })
        })
        .collect();
    let mut deleted = 0;
    for answer in racing {
        let answer = answer.await.unwrap().unwrap();
        match answer.status().as_u16() {
            204 => deleted += 1,
            _ => assert_wire_error(answer, 404, "client-not-found").await,
        }
    }
    assert_eq!(deleted, 1);
    assert_eq!(listed(&h, &token).await, vec![other]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_racing_100_token_requests_leaves_nothing_of_the_device() {
    let mut h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let account = account_key();
    let mut proofs = Vec::new();
    for _ in 0..100 {
        let nonce = h.nonce(&token, &device).await;
        let claims = h.wire_proof_claims(&device, &client_id, &nonce);
        proofs.push(claims.sign(&account).unwrap());
    }
    let url = h.url(&format!("/clients/{device}/access-token"));
    let requests: Vec<_> = proofs
        .into_iter()
        .map(|proof| {
            let (client, url, token) = (h.client.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("DPoP", proof)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    assert_eq!(delete(&h, &token, &device).await.status(), 204);
    let mut issued = 0;
    for request in requests {
        match request.await.unwrap() {
            (200, body) => {
                assert!(body["token"].is_string());
                issued += 1;
            }
            (404, body) => assert_eq!(body["label"], "client-not-found", "{body}"),
            (400, body) => assert_eq!(body["label"], "client-token-bad-nonce", "{body}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(listed(&h, &token).await.is_empty());

    // Every nonce was redeemed or removed with the device; each token handed out is audited,
    // and no other was issued.
    h.server.take().unwrap().shutdown().await.unwrap();
    let store = h.open_store();
    assert!(nonce_devices(store.as_ref()).is_empty());
    assert!(store.scan_prefix(trees::DEVICES, "").unwrap().is_empty());
    let audit = std::fs::read_to_string(h.dir.path().join("audit.jsonl")).unwrap();
    let audited = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "token.issued" && e["device"] == device.as_str())
        .count();
    assert_eq!(audited, issued);
}
