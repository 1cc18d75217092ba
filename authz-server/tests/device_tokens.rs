//! The Wire device flow over HTTPS against the real server: login → device → backend nonce →
//! DPoP access token, verified with `proto` exactly as the ACME server will; then every way the
//! access-token request can be wrong, each with its Wire label and nothing issued.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::access_token::{AccessTokenCheck, AccessTokenPolicy, verify_access_token};
use proto::dpop::sign_proof_claims;
use proto::jwk::JwkSet;
use proto::jws::{Algorithm, SigningKey};
use proto::wire_id::{ClientId, HandleUri};
use serde_json::{Value, json};

#[tokio::test]
async fn device_obtains_an_access_token_the_acme_server_accepts() {
    let h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let listed: Value = h
        .client
        .get(h.url("/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["client_id"], client_id.as_str());

    let account = account_key();
    let nonce = h.nonce(&token, &device).await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &nonce)
        .sign(&account)
        .unwrap();
    let response = h.access_token(&token, &device, &proof).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "DPoP");
    assert_eq!(body["expires_in"], 360);

    let jwks = h.get_json("/jwks").await;
    let keys = JwkSet::from_json(&jwks).unwrap().keys;
    let client_id = ClientId::parse(&client_id).unwrap();
    let handle = HandleUri::new("alice_wire", DOMAIN).unwrap();
    let issuer = h.url(&format!("/clients/{device}/access-token"));
    let identity = proto::wire_id::WireIdentity::new(
        client_id.clone(),
        handle,
        "Alice Smith",
        Some("wire".into()),
    )
    .unwrap();
    let check = AccessTokenCheck {
        backend_keys: &keys,
        issuer: &issuer,
        audience: CHALLENGE_URL,
        account_key: account.public_jwk(),
        challenge_token: "OysCZNnV2iJTYfjmTUJZ6vavXXkzPFLf",
        identity: &identity,
    };
    let verified = verify_access_token(
        body["token"].as_str().unwrap(),
        &check,
        &AccessTokenPolicy::default(),
        h.now(),
    )
    .unwrap();
    assert_eq!(verified.proof().raw(), proof);
    let cnf = verified.claims().get("cnf").unwrap();
    assert_eq!(cnf["kid"], account.public_jwk().thumbprint());
    assert_eq!(cnf["jkt"], account.public_jwk().thumbprint());

    // The nonce was redeemed: the same proof again is refused.
    assert_wire_error(
        h.access_token(&token, &device, &proof).await,
        400,
        "client-token-bad-nonce",
    )
    .await;
}

/// Each case builds a proof wrong in one way; the request must fail with the label, and the
/// nonce must still be usable afterwards (a refused proof changes nothing).
#[tokio::test]
async fn every_bad_proof_is_refused_with_its_label_and_changes_nothing() {
    let h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let (other_device, other_client_id) = h.register_device(&token).await;
    let account = account_key();
    let now = h.now();
    let nonce = h.nonce(&token, &device).await;
    let good = h.wire_proof_claims(&device, &client_id, &nonce);

    let mut cases: Vec<(&str, String, u16, &str)> = Vec::new();
    let mut with = |what, f: &dyn Fn(&mut proto::dpop::DpopClaims), status, label| {
        let mut c = good.clone();
        f(&mut c);
        cases.push((what, c.sign(&account).unwrap(), status, label));
    };
    with(
        "htu",
        &|c| c.htu = c.htu.replace(&device, &other_device),
        400,
        "client-token-bad-uri",
    );
    with(
        "htm",
        &|c| c.htm = "GET".into(),
        400,
        "client-token-bad-method",
    );
    with(
        "iat future",
        &|c| c.iat = now + 600,
        400,
        "client-token-bad-iat",
    );
    with(
        "iat old",
        &|c| c.iat = now - 3 * 3600,
        400,
        "client-token-bad-iat",
    );
    with(
        "exp far",
        &|c| c.exp = Some(now + 3 * 3600),
        400,
        "client-token-exp-too-large",
    );
    with(
        "exp missing",
        &|c| c.exp = None,
        400,
        "client-token-exp-missing",
    );
    with(
        "sub",
        &|c| c.wire.as_mut().unwrap().sub = other_client_id.clone(),
        400,
        "client-token-bad-client-id",
    );
    with(
        "handle",
        &|c| c.wire.as_mut().unwrap().handle = "wireapp://%40bob@wire.com".into(),
        400,
        "dpop-handle-mismatch",
    );
    with(
        "name",
        &|c| c.wire.as_mut().unwrap().name = "Bob".into(),
        400,
        "dpop-display-name-mismatch",
    );
    with(
        "team",
        &|c| c.wire.as_mut().unwrap().team = Some("other".into()),
        400,
        "dpop-team-mismatch",
    );
    with(
        "nonce unknown",
        &|c| c.nonce = Some("AAAAAAAAAAAAAAAAAAAAAA".into()),
        400,
        "client-token-bad-nonce",
    );
    with(
        "no nonce",
        &|c| c.nonce = None,
        400,
        "client-token-bad-nonce",
    );

    let claims = good.to_claims();
    let body = Value::Object(claims.0.clone()).to_string();
    let jwk = Value::Object(account.public_jwk().public_members());
    let sign = |header: Value| {
        account
            .sign_compact(header.as_object().unwrap().clone(), body.as_bytes())
            .unwrap()
    };
    cases.push((
        "typ",
        sign(json!({"typ": "JWT", "jwk": jwk})),
        400,
        "client-token-type-error",
    ));
    let stranger = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let foreign = sign(json!({"typ": "dpop+jwt", "jwk": stranger.public_jwk().public_members()}));
    cases.push((
        "signed by another key",
        foreign,
        400,
        "client-token-bad-signature",
    ));
    let mut private = jwk.clone();
    private["d"] = json!(proto::b64::encode([1u8; 32]));
    cases.push((
        "private jwk",
        sign(json!({"typ": "dpop+jwt", "jwk": private})),
        400,
        "client-token-bad-signature",
    ));
    let rest = good
        .sign(&account)
        .unwrap()
        .split_once('.')
        .unwrap()
        .1
        .to_owned();
    for alg in ["none", "HS256"] {
        let header =
            proto::b64::encode(json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}).to_string());
        cases.push((
            "alg",
            format!("{header}.{rest}"),
            400,
            "client-token-unsupported-alg",
        ));
    }
    let rsa = proto::test_keys::key_for(Algorithm::Rs256);
    cases.push((
        "RS256",
        sign_proof_claims(&rsa, &claims).unwrap(),
        400,
        "client-token-unsupported-alg",
    ));

    for (what, proof, status, label) in cases {
        let response = h.access_token(&token, &device, &proof).await;
        assert_eq!(response.status(), status, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["label"], label, "{what}: {body}");
        assert!(body.get("token").is_none(), "{what}");
    }

    // After all of that the nonce is still good: nothing was consumed or issued.
    let response = h
        .access_token(&token, &device, &good.sign(&account).unwrap())
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn nonces_are_single_use_bound_to_the_device_and_expire() {
    let h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let (other_device, _) = h.register_device(&token).await;
    let account = account_key();

    // A nonce issued for another device is refused (and burnt).
    let foreign_nonce = h.nonce(&token, &other_device).await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &foreign_nonce)
        .sign(&account)
        .unwrap();
    assert_wire_error(
        h.access_token(&token, &device, &proof).await,
        400,
        "client-token-bad-nonce",
    )
    .await;

    // Reused.
    let nonce = h.nonce(&token, &device).await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &nonce)
        .sign(&account)
        .unwrap();
    assert_eq!(h.access_token(&token, &device, &proof).await.status(), 200);
    let again = h
        .wire_proof_claims(&device, &client_id, &nonce)
        .sign(&account)
        .unwrap();
    assert_wire_error(
        h.access_token(&token, &device, &again).await,
        400,
        "client-token-bad-nonce",
    )
    .await;

    // Expired: five minutes and a second later.
    let nonce = h.nonce(&token, &device).await;
    h.clock.advance(301);
    let proof = h
        .wire_proof_claims(&device, &client_id, &nonce)
        .sign(&account)
        .unwrap();
    assert_wire_error(
        h.access_token(&token, &device, &proof).await,
        400,
        "client-token-bad-nonce",
    )
    .await;
}

#[tokio::test]
async fn user_token_and_device_ownership_are_required() {
    let h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let account = account_key();
    let nonce = h.nonce(&token, &device).await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &nonce)
        .sign(&account)
        .unwrap();
    let url = h.url(&format!("/clients/{device}/access-token"));

    // No user token.
    let response = h
        .client
        .post(&url)
        .header("DPoP", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // A forged user token.
    let forged = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .sign_jwt("at+jwt", false, &Default::default())
        .unwrap();
    let response = h
        .client
        .post(&url)
        .bearer_auth(forged)
        .header("DPoP", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // No DPoP header, and two of them.
    assert_wire_error(
        h.client
            .post(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        400,
        "missing-dpop-header",
    )
    .await;
    let two = h
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("DPoP", &proof)
        .header("DPoP", &proof)
        .send()
        .await
        .unwrap();
    assert_wire_error(two, 400, "client-token-parse-error").await;
    // A device that is not this user's.
    let unknown = h
        .client
        .post(h.url("/clients/abcdef/access-token"))
        .bearer_auth(&token)
        .header("DPoP", &proof);
    assert_wire_error(unknown.send().await.unwrap(), 404, "client-not-found").await;
    // An expired user token (15 minutes).
    h.clock.advance(901);
    let response = h
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("DPoP", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn devices_per_user_are_capped_also_when_registrations_race() {
    let h = Harness::start_with(|c| c.caps.devices_per_user = 3).await;
    let token = h.bearer_login().await;
    let register = || h.client.post(h.url("/clients")).bearer_auth(&token).send();
    // Eight registrations at once: never more than three devices, and every 201 is listed.
    let racing: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, token) = (h.client.clone(), h.url("/clients"), token.clone());
            tokio::spawn(async move { client.post(url).bearer_auth(token).send().await })
        })
        .collect();
    let mut created = 0;
    for answer in racing {
        let answer = answer.await.unwrap().unwrap();
        match answer.status().as_u16() {
            201 => created += 1,
            _ => assert_wire_error(answer, 403, "too-many-clients").await,
        }
    }
    let listed = |h: &Harness| {
        let (client, url, token) = (h.client.clone(), h.url("/clients"), token.clone());
        async move {
            let body: Value = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body.as_array().unwrap().len()
        }
    };
    assert!((1..=3).contains(&created), "{created}");
    assert_eq!(listed(&h).await, created);
    // Filling up one at a time: exactly three, then refused.
    for _ in created..3 {
        assert_eq!(register().await.unwrap().status(), 201);
    }
    assert_wire_error(register().await.unwrap(), 403, "too-many-clients").await;
    assert_eq!(listed(&h).await, 3);
}

#[tokio::test]
async fn a_proof_jti_is_accepted_once_even_with_a_fresh_nonce() {
    let h = Harness::start().await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let account = account_key();
    let first = h.wire_proof_claims(&device, &client_id, &h.nonce(&token, &device).await);
    let proof = first.sign(&account).unwrap();
    assert_eq!(h.access_token(&token, &device, &proof).await.status(), 200);

    // Same key, same jti, new backend nonce: a replayed proof re-signed, refused.
    let mut replay = h.wire_proof_claims(&device, &client_id, &h.nonce(&token, &device).await);
    replay.jti = first.jti.clone();
    let response = h
        .access_token(&token, &device, &replay.sign(&account).unwrap())
        .await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("jti"), "{body}");

    // A new jti with another fresh nonce passes.
    let fresh = h.wire_proof_claims(&device, &client_id, &h.nonce(&token, &device).await);
    let response = h
        .access_token(&token, &device, &fresh.sign(&account).unwrap())
        .await;
    assert_eq!(response.status(), 200);
}
