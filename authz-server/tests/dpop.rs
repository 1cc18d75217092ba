//! RFC 9449 at this server, as the OpenID FAPI 2.0 conformance suite probes it: server nonces
//! with `use_dpop_nonce` at the token endpoint and at a resource, the accept/reject matrix of
//! proofs at `/userinfo` for a DPoP-bound token, and Ed25519 proofs under both algorithm names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::dpop::{DpopClaims, access_token_hash};
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Map, Value, json};

fn header_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn server_nonces_are_required_and_retried() {
    let h = Harness::start_with(|c| c.require_dpop_nonce = true).await;
    let key = account_key();
    let pkce = Pkce::new();
    let response = h
        .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
        .await;
    let code = location_params(&response)["code"].clone();
    let form = token_form(&code, &pkce.verifier);

    // No nonce: 400 use_dpop_nonce with a fresh DPoP-Nonce, the code not spent.
    let proof = DpopClaims::new("POST", &h.url("/token"), h.now())
        .sign(&key)
        .unwrap();
    let response = h.token_request(&form, Some(proof)).await;
    assert_eq!(response.status(), 400);
    let nonce = header_of(&response, "dpop-nonce").unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");

    let mut claims = DpopClaims::new("POST", &h.url("/token"), h.now());
    claims.nonce = Some(nonce);
    let response = h
        .token_request(&form, Some(claims.sign(&key).unwrap()))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let tokens: Value = response.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();

    // A made-up nonce is refused the same way.
    let mut forged = DpopClaims::new("POST", &h.url("/token"), h.now());
    forged.nonce = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let response = h
        .token_request(&form, Some(forged.sign(&key).unwrap()))
        .await;
    assert_eq!(response.status(), 400);

    // At the resource: 401 with WWW-Authenticate: DPoP error="use_dpop_nonce".
    let response = h.userinfo_with_proof(at, &key).await;
    assert_eq!(response.status(), 401);
    let challenge = header_of(&response, "www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let nonce = header_of(&response, "dpop-nonce").unwrap();
    let mut claims = DpopClaims::new("GET", &h.url("/userinfo"), h.now()).with_access_token(at);
    claims.nonce = Some(nonce);
    let response = h
        .client
        .get(h.url("/userinfo"))
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", claims.sign(&key).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The nonce endpoint.
    let response = h.client.head(h.url("/dpop-nonce")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(header_of(&response, "dpop-nonce").is_some());
}

/// A DPoP-bound token and a way to call /userinfo with any proof.
struct Bound {
    h: Harness,
    key: SigningKey,
    at: String,
}

impl Bound {
    async fn new() -> Self {
        let h = Harness::start().await;
        let key = account_key();
        let tokens = h.login(Some(&key)).await;
        let at = tokens["access_token"].as_str().unwrap().to_owned();
        Self { h, key, at }
    }

    fn claims(&self) -> Map<String, Value> {
        let c = DpopClaims::new("GET", &self.h.url("/userinfo"), self.h.now())
            .with_access_token(&self.at)
            .to_claims();
        c.0
    }

    fn header(&self, key: &SigningKey) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert(
            "jwk".into(),
            Value::Object(key.public_jwk().public_members()),
        );
        header
    }

    fn sign(&self, header: Map<String, Value>, claims: &Map<String, Value>) -> String {
        self.key
            .sign_compact(header, Value::Object(claims.clone()).to_string().as_bytes())
            .unwrap()
    }

    async fn call(&self, scheme: &str, proofs: &[String], url_suffix: &str) -> u16 {
        let mut request = self
            .h
            .client
            .get(format!("{}{url_suffix}", self.h.url("/userinfo")))
            .header("Authorization", format!("{scheme} {}", self.at));
        for p in proofs {
            request = request.header("DPoP", p);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn the_fapi_dpop_matrix_at_a_resource() {
    let b = Bound::new().await;
    let good = |c: Map<String, Value>| b.sign(b.header(&b.key), &c);
    let with = |name: &str, value: Value| {
        let mut c = b.claims();
        c.insert(name.into(), value);
        c
    };
    let without = |name: &str| {
        let mut c = b.claims();
        c.remove(name);
        c
    };
    let htu = b.h.url("/userinfo");
    // (Upper-case host names and explicit default ports are covered by proto's htu tests; this
    // server listens on an IP address and an ephemeral port.)
    let upper = htu.replacen("https://", "HTTPS://", 1);

    // Must be accepted (each with a fresh jti).
    let accepted: Vec<(&str, String, &str)> = vec![
        ("plain", good(b.claims()), ""),
        (
            "htu with query and fragment",
            good(with("htu", json!(format!("{htu}?a=1#f")))),
            "",
        ),
        ("request query not in htu", good(b.claims()), "?x=1"),
        ("uppercase scheme", good(with("htu", json!(upper))), ""),
        ("extra claims", good(with("extra", json!({"x": 1}))), ""),
        (
            "iat 10 s ahead",
            good(with("iat", json!(b.h.now() + 10))),
            "",
        ),
        (
            "iat 10 s behind",
            good(with("iat", json!(b.h.now() - 10))),
            "",
        ),
    ];
    for (what, proof, suffix) in accepted {
        assert_eq!(b.call("DPoP", &[proof], suffix).await, 200, "{what}");
    }
    // Header name in another case reaches the server as the same header.
    let lower =
        b.h.client
            .get(b.h.url("/userinfo"))
            .header("authorization", format!("dpop {}", b.at))
            .header("dpop", good(b.claims()))
            .send()
            .await
            .unwrap();
    assert_eq!(lower.status(), 200, "lower-case scheme and header name");

    // Must be rejected.
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut no_typ = b.header(&b.key);
    no_typ.remove("typ");
    let mut wrong_typ = b.header(&b.key);
    wrong_typ.insert("typ".into(), json!("JWT"));
    let mut no_jwk = b.header(&b.key);
    no_jwk.remove("jwk");
    let mut private_jwk = b.header(&b.key);
    let mut jwk = b.key.public_jwk().public_members();
    jwk.insert("d".into(), json!("AAAA"));
    private_jwk.insert("jwk".into(), Value::Object(jwk));
    let unsigned = {
        let h = proto::b64::encode(
            json!({"alg": "none", "typ": "dpop+jwt", "jwk": b.key.public_jwk().public_members()})
                .to_string(),
        );
        let p = proto::b64::encode(Value::Object(b.claims()).to_string());
        format!("{h}.{p}.")
    };
    let mut bad_sig = good(b.claims());
    bad_sig.push('A');
    let another_key = other
        .sign_compact(
            b.header(&other),
            Value::Object(b.claims()).to_string().as_bytes(),
        )
        .unwrap();
    let rejected: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "two DPoP headers",
            vec![good(b.claims()), good(b.claims())],
            "DPoP",
        ),
        ("missing typ", vec![b.sign(no_typ, &b.claims())], "DPoP"),
        ("wrong typ", vec![b.sign(wrong_typ, &b.claims())], "DPoP"),
        ("missing jwk", vec![b.sign(no_jwk, &b.claims())], "DPoP"),
        (
            "private jwk",
            vec![b.sign(private_jwk, &b.claims())],
            "DPoP",
        ),
        ("alg none", vec![unsigned], "DPoP"),
        ("bad signature", vec![bad_sig], "DPoP"),
        ("missing jti", vec![good(without("jti"))], "DPoP"),
        ("missing htm", vec![good(without("htm"))], "DPoP"),
        ("missing htu", vec![good(without("htu"))], "DPoP"),
        ("missing iat", vec![good(without("iat"))], "DPoP"),
        ("missing ath", vec![good(without("ath"))], "DPoP"),
        ("wrong htm", vec![good(with("htm", json!("POST")))], "DPoP"),
        (
            "wrong htu",
            vec![good(with("htu", json!(b.h.url("/token"))))],
            "DPoP",
        ),
        (
            "iat an hour ahead",
            vec![good(with("iat", json!(b.h.now() + 3600)))],
            "DPoP",
        ),
        (
            "iat an hour behind",
            vec![good(with("iat", json!(b.h.now() - 3600)))],
            "DPoP",
        ),
        (
            "wrong ath",
            vec![good(with("ath", json!(access_token_hash("other"))))],
            "DPoP",
        ),
        ("another key", vec![another_key], "DPoP"),
        ("no proof", vec![], "DPoP"),
        ("Bearer downgrade", vec![good(b.claims())], "Bearer"),
        ("Bearer without proof", vec![], "Bearer"),
    ];
    for (what, proofs, scheme) in rejected {
        assert_eq!(b.call(scheme, &proofs, "").await, 401, "{what}");
    }

    // The same jti: accepted once, then refused.
    let once = good(b.claims());
    assert_eq!(b.call("DPoP", std::slice::from_ref(&once), "").await, 200);
    assert_eq!(b.call("DPoP", &[once], "").await, 401, "replayed jti");
}

/// A DPoP proof with `claims`, signed by `key` with `alg` in the header whatever the key is.
fn proof_named(key: &SigningKey, alg: &str, claims: &DpopClaims) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.public_jwk().public_members()});
    let input = format!(
        "{}.{}",
        proto::b64::encode(header.to_string()),
        proto::b64::encode(Value::Object(claims.to_claims().0).to_string())
    );
    let signature = key.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", proto::b64::encode(signature))
}

#[tokio::test]
async fn an_ed25519_proof_under_its_rfc_9864_name_binds_the_tokens() {
    let h = Harness::start().await;
    // RFC 9864's fully-specified `Ed25519` (oauth4webapi's and openid-client's name for
    // Ed25519 keys) is advertised beside RFC 8037's `EdDSA`.
    let meta = h.get_json("/.well-known/openid-configuration").await;
    for list in [
        "dpop_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    ] {
        let algs = meta[list].as_array().unwrap();
        for alg in ["EdDSA", "Ed25519"] {
            assert!(algs.iter().any(|a| a == alg), "{list}: {algs:?}");
        }
    }
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let pkce = Pkce::new();
    let response = h
        .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
        .await;
    let code = location_params(&response)["code"].clone();
    let form = token_form(&code, &pkce.verifier);

    // The name still binds the key type: a P-256 key's proof naming Ed25519 gets nothing.
    let p256 = SigningKey::generate(Algorithm::Es256).unwrap();
    let token_claims = || DpopClaims::new("POST", &h.url("/token"), h.now());
    let refused = h
        .token_request(&form, Some(proof_named(&p256, "Ed25519", &token_claims())))
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");

    let response = h
        .token_request(&form, Some(proof_named(&key, "Ed25519", &token_claims())))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap();
    let resource_claims =
        || DpopClaims::new("GET", &h.url("/userinfo"), h.now()).with_access_token(at);
    let userinfo = |proof: String| {
        h.client
            .get(h.url("/userinfo"))
            .header("Authorization", format!("DPoP {at}"))
            .header("DPoP", proof)
            .send()
    };
    // Either name of the same key proves possession.
    for alg in ["Ed25519", "EdDSA"] {
        let response = userinfo(proof_named(&key, alg, &resource_claims()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{alg}");
    }
    let stranger = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let response = userinfo(proof_named(&stranger, "Ed25519", &resource_claims()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = header_of(&response, "www-authenticate").unwrap();
    assert!(challenge.contains("Ed25519"), "{challenge}");
}
