//! The recorded Wire enrollment (`proto/tests/vectors/wire-enrollment-transcript.json`) against our
//! verifiers: the real proof and access token verify at the recorded instant, and every
//! single-claim mutation is refused by the check responsible for that claim.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto::access_token::{AccessTokenCheck, AccessTokenPolicy, verify_access_token};
use proto::dpop::{
    DpopCheck, DpopPolicy, NonceCheck, WireExpectations, sign_proof_claims, verify_dpop_proof,
};
use proto::jwk::Jwk;
use proto::jws::{Algorithm, Claims, SigningKey};
use proto::wire_id::{ClientId, DeviceIdentifier, HandleUri, UserIdentifier, WireIdentity};
use proto::{Error, b64};
use serde_json::{Value, json};

/// A named claim mutation and the error it must produce.
type MutationCase = (&'static str, Box<dyn Fn(&mut Claims)>, Error);

#[path = "support/transcript.rs"]
mod vectors;

use vectors::Transcript;

/// Everything the verifiers are told about the order, owned so mutations can swap parts.
struct Order {
    client_id: ClientId,
    handle: HandleUri,
    name: String,
    team: String,
    target: String,
    chal: String,
    chal_url: String,
    nonce: String,
}

impl Order {
    fn from(t: &Transcript) -> Self {
        let device = DeviceIdentifier::parse(&t.s("/device_identifier/value")).unwrap();
        Self {
            client_id: device.client_id,
            handle: device.handle,
            name: device.name,
            team: t.s("/team"),
            target: t.s("/dpop_challenge/target"),
            chal: t.s("/dpop_challenge/token"),
            chal_url: t.s("/dpop_challenge/url"),
            nonce: t.s("/backend_nonce"),
        }
    }

    fn identity(&self) -> WireIdentity {
        WireIdentity::new(
            self.client_id.clone(),
            self.handle.clone(),
            &self.name,
            Some(self.team.clone()),
        )
        .unwrap()
    }

    fn wire<'a>(&'a self, identity: &'a WireIdentity) -> WireExpectations<'a> {
        WireExpectations {
            identity,
            challenge: Some(&self.chal),
            audience: Some(&self.chal_url),
        }
    }

    /// The backend's check of the proof at its access-token endpoint.
    fn verify_proof(&self, proof: &str, now: i64) -> Result<proto::dpop::VerifiedDpopProof, Error> {
        let identity = self.identity();
        let check = DpopCheck {
            htm: "POST",
            htu: &self.target,
            nonce: NonceCheck::Equals(&self.nonce),
            access_token: None,
            wire: Some(self.wire(&identity)),
        };
        verify_dpop_proof(proof, &check, &DpopPolicy::wire(), now)
    }

    /// The ACME server's check of the access token.
    fn verify_token(
        &self,
        token: &str,
        backend: &Jwk,
        account: &Jwk,
        now: i64,
    ) -> Result<(), Error> {
        let identity = self.identity();
        let check = AccessTokenCheck {
            backend_keys: std::slice::from_ref(backend),
            issuer: &self.target,
            audience: &self.chal_url,
            account_key: account,
            challenge_token: &self.chal,
            identity: &identity,
        };
        verify_access_token(token, &check, &AccessTokenPolicy::default(), now).map(|_| ())
    }
}

fn payload(jwt: &str) -> Claims {
    Claims::from_slice(&b64::decode(jwt.split('.').nth(1).unwrap(), "payload").unwrap()).unwrap()
}

#[test]
fn transcript_identifiers_and_thumbprint() {
    let t = Transcript::load();
    let account = t.jwk("acme_account_jwk");
    assert_eq!(account.thumbprint(), t.s("/acme_account_thumbprint_sha256"));
    let device = DeviceIdentifier::parse(&t.s("/device_identifier/value")).unwrap();
    assert_eq!(device.to_value(), t.s("/device_identifier/value"));
    let user = UserIdentifier::parse(&t.s("/user_identifier/value")).unwrap();
    assert_eq!(user.handle, device.handle);
    assert_eq!(
        proto::wire_id::key_authorization(&t.s("/oidc_challenge/token"), &account.thumbprint()),
        t.s("/id_token_claims/keyauth")
    );
}

#[test]
fn transcript_proof_verifies_at_the_recorded_instant() {
    let t = Transcript::load();
    let order = Order::from(&t);
    let proof = order.verify_proof(&t.s("/dpop_proof"), t.now()).unwrap();
    assert_eq!(proof.thumbprint(), t.s("/acme_account_thumbprint_sha256"));
    assert!(proof.jwk().same_key(&t.jwk("acme_account_jwk")));
    // An hour later the backdated iat is out of the window.
    assert_eq!(
        order
            .verify_proof(&t.s("/dpop_proof"), t.now() + 3600)
            .unwrap_err(),
        Error::IatTooOld
    );
}

#[test]
fn transcript_access_token_verifies_and_binds_everything() {
    let t = Transcript::load();
    let order = Order::from(&t);
    let (backend, account) = (t.jwk("backend_jwk"), t.jwk("acme_account_jwk"));
    let token = t.s("/access_token");
    order
        .verify_token(&token, &backend, &account, t.now())
        .unwrap();

    let other = |alg| proto::test_keys::key_for(alg).public_jwk().clone();
    let mismatch = |f: &dyn Fn(&mut Order), expected: Error| {
        let mut o = Order::from(&t);
        f(&mut o);
        assert_eq!(
            o.verify_token(&token, &backend, &account, t.now())
                .unwrap_err(),
            expected
        );
    };
    mismatch(
        &|o| o.chal = "OtherChallengeTokenOtherChallenge".into(),
        Error::ChalMismatch,
    );
    mismatch(&|o| o.chal_url.push('x'), Error::AudMismatch);
    mismatch(
        &|o| o.target = o.target.replace("9ff0457928ebe5f4", "1234"),
        Error::IssMismatch,
    );
    mismatch(
        &|o| o.client_id = ClientId::new(o.client_id.user(), "1234", "wire.com").unwrap(),
        Error::ClientIdMismatch,
    );
    mismatch(
        &|o| o.handle = HandleUri::new("bob_wire", "wire.com").unwrap(),
        Error::EmbeddedProof(Box::new(Error::HandleMismatch)),
    );
    mismatch(
        &|o| o.name = "Bob".into(),
        Error::EmbeddedProof(Box::new(Error::NameMismatch)),
    );
    mismatch(
        &|o| o.team = "other".into(),
        Error::EmbeddedProof(Box::new(Error::TeamMismatch)),
    );
    // Bound to another account key.
    assert_eq!(
        order
            .verify_token(&token, &backend, &other(Algorithm::EdDsa), t.now())
            .unwrap_err(),
        Error::CnfMismatch
    );
    // Signed by a key we do not trust.
    assert_eq!(
        order
            .verify_token(&token, &other(Algorithm::EdDsa), &account, t.now())
            .unwrap_err(),
        Error::UnknownSigningKey
    );
    // Too late: past the token's `exp` and the skew allowance.
    let expired_at = t.0["access_token_claims"]["exp"].as_i64().unwrap()
        + proto::access_token::AccessTokenPolicy::default().leeway
        + 1;
    assert_eq!(
        order
            .verify_token(&token, &backend, &account, expired_at)
            .unwrap_err(),
        Error::Expired
    );
}

#[test]
fn tampering_with_recorded_tokens_breaks_the_signature() {
    let t = Transcript::load();
    let order = Order::from(&t);
    for (jwt, claim) in [(t.s("/dpop_proof"), "name"), (t.s("/access_token"), "chal")] {
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut c = payload(&jwt);
        c.set(claim, "tampered");
        parts[1] = b64::encode(Value::Object(c.0).to_string());
        let tampered = parts.join(".");
        if claim == "name" {
            assert_eq!(
                order.verify_proof(&tampered, t.now()).unwrap_err(),
                Error::BadSignature
            );
        } else {
            let err = order
                .verify_token(
                    &tampered,
                    &t.jwk("backend_jwk"),
                    &t.jwk("acme_account_jwk"),
                    t.now(),
                )
                .unwrap_err();
            assert_eq!(err, Error::BadSignature);
        }
    }
}

/// Re-signs the transcript proof's claims, changed by `mutate`, with `key`.
fn resign_proof(t: &Transcript, key: &SigningKey, mutate: impl FnOnce(&mut Claims)) -> String {
    let mut c = payload(&t.s("/dpop_proof"));
    mutate(&mut c);
    sign_proof_claims(key, &c).unwrap()
}

#[test]
fn every_proof_claim_mutation_is_refused_by_its_check() {
    let t = Transcript::load();
    let order = Order::from(&t);
    let now = t.now();
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    order
        .verify_proof(&resign_proof(&t, &key, |_| {}), now)
        .unwrap();

    let cases: Vec<MutationCase> = vec![
        (
            "no jti",
            Box::new(|c| {
                c.0.remove("jti");
            }),
            Error::MissingClaim("jti"),
        ),
        (
            "no htm",
            Box::new(|c| {
                c.0.remove("htm");
            }),
            Error::MissingClaim("htm"),
        ),
        (
            "no iat",
            Box::new(|c| {
                c.0.remove("iat");
            }),
            Error::MissingClaim("iat"),
        ),
        ("htm", Box::new(|c| c.set("htm", "GET")), Error::HtmMismatch),
        (
            "htu",
            Box::new(|c| c.set("htu", "http://wire.com:46335/clients/1234/access-token")),
            Error::HtuMismatch,
        ),
        (
            "nonce",
            Box::new(|c| c.set("nonce", "AAAAAAAAAAAAAAAAAAAAAA")),
            Error::NonceMismatch,
        ),
        (
            "no nonce",
            Box::new(|c| {
                c.0.remove("nonce");
            }),
            Error::MissingNonce,
        ),
        (
            "iat future",
            Box::new(move |c| c.set("iat", now + 600)),
            Error::IatInFuture,
        ),
        (
            "iat old",
            Box::new(move |c| c.set("iat", now - 7200)),
            Error::IatTooOld,
        ),
        (
            "nbf future",
            Box::new(move |c| c.set("nbf", now + 600)),
            Error::NotYetValid,
        ),
        (
            "exp past",
            Box::new(move |c| c.set("exp", now - 600)),
            Error::Expired,
        ),
        (
            "exp far",
            Box::new(move |c| c.set("exp", now + 3 * 3600)),
            Error::ExpTooFar,
        ),
        (
            "no exp",
            Box::new(|c| {
                c.0.remove("exp");
            }),
            Error::MissingClaim("exp"),
        ),
        (
            "chal",
            Box::new(|c| c.set("chal", "another")),
            Error::ChalMismatch,
        ),
        (
            "no chal",
            Box::new(|c| {
                c.0.remove("chal");
            }),
            Error::MissingClaim("chal"),
        ),
        (
            "sub",
            Box::new(|c| c.set("sub", "wireapp://yRbSiljXSnCl77-QkM634g!1234@wire.com")),
            Error::SubMismatch,
        ),
        (
            "sub syntax",
            Box::new(|c| c.set("sub", "alice")),
            Error::InvalidClientId("scheme must be wireapp://"),
        ),
        (
            "aud",
            Box::new(|c| c.set("aud", "https://stepca/acme/wire/challenge/x/y")),
            Error::AudMismatch,
        ),
        (
            "handle",
            Box::new(|c| c.set("handle", "wireapp://%40bob@wire.com")),
            Error::HandleMismatch,
        ),
        (
            "team",
            Box::new(|c| c.set("team", "other")),
            Error::TeamMismatch,
        ),
        (
            "no team",
            Box::new(|c| {
                c.0.remove("team");
            }),
            Error::MissingClaim("team"),
        ),
        (
            "name",
            Box::new(|c| c.set("name", "Alice Smit")),
            Error::NameMismatch,
        ),
        (
            "iat type",
            Box::new(|c| c.set("iat", "yesterday")),
            Error::InvalidClaim("iat"),
        ),
    ];
    for (what, mutate, expected) in cases {
        let proof = resign_proof(&t, &key, |c| mutate(c));
        assert_eq!(
            order.verify_proof(&proof, now).unwrap_err(),
            expected,
            "{what}"
        );
    }
}

#[test]
fn proof_header_mutations_are_refused() {
    let t = Transcript::load();
    let order = Order::from(&t);
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let claims = payload(&t.s("/dpop_proof"));
    let body = Value::Object(claims.0.clone()).to_string();
    let sign = |header: Value| {
        key.sign_compact(header.as_object().unwrap().clone(), body.as_bytes())
            .unwrap()
    };
    let jwk = Value::Object(key.public_jwk().public_members());

    let wrong_typ = sign(json!({"typ": "JWT", "jwk": jwk}));
    assert_eq!(
        order.verify_proof(&wrong_typ, t.now()).unwrap_err(),
        Error::WrongTyp {
            expected: "dpop+jwt"
        }
    );
    let mut private = jwk.clone();
    private["d"] = json!(b64::encode([7u8; 32]));
    let with_private = sign(json!({"typ": "dpop+jwt", "jwk": private}));
    assert_eq!(
        order.verify_proof(&with_private, t.now()).unwrap_err(),
        Error::PrivateKeyInJwk("d")
    );
    let other = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let foreign = sign(json!({"typ": "dpop+jwt", "jwk": other.public_jwk().public_members()}));
    assert_eq!(
        order.verify_proof(&foreign, t.now()).unwrap_err(),
        Error::BadSignature
    );
    // RS256 is a valid JOSE algorithm but not one Wire accepts for proofs.
    let rsa = proto::test_keys::key_for(Algorithm::Rs256);
    let rs256 = sign_proof_claims(&rsa, &claims).unwrap();
    assert_eq!(
        order.verify_proof(&rs256, t.now()).unwrap_err(),
        Error::UnsupportedAlgorithm("RS256".into())
    );
    for alg in ["none", "HS256"] {
        let (_, rest) = wrong_typ.split_once('.').unwrap();
        let header = b64::encode(json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}).to_string());
        let forged = format!("{header}.{rest}");
        assert_eq!(
            order.verify_proof(&forged, t.now()).unwrap_err(),
            Error::UnsupportedAlgorithm(alg.into())
        );
    }
}

/// Rebuilds the transcript's access token around a proof by `account` and signs it by `backend`.
fn resign_token(
    t: &Transcript,
    account: &SigningKey,
    backend: &SigningKey,
    mutate_proof: impl FnOnce(&mut Claims),
    mutate: impl FnOnce(&mut Claims),
) -> String {
    let proof = resign_proof(t, account, mutate_proof);
    let mut c = payload(&t.s("/access_token"));
    let thumb = account.public_jwk().thumbprint();
    c.set("proof", proof);
    c.set("cnf", json!({"kid": thumb, "jkt": thumb}));
    mutate(&mut c);
    backend.sign_jwt("at+jwt", true, &c.0).unwrap()
}

#[test]
fn every_access_token_claim_mutation_is_refused_by_its_check() {
    let t = Transcript::load();
    let order = Order::from(&t);
    let now = t.now();
    let account = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let backend = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let verify =
        |token: &str| order.verify_token(token, backend.public_jwk(), account.public_jwk(), now);
    verify(&resign_token(&t, &account, &backend, |_| {}, |_| {})).unwrap();
    let thumb = account.public_jwk().thumbprint();
    let jkt_only = resign_token(
        &t,
        &account,
        &backend,
        |_| {},
        |c| c.set("cnf", json!({"jkt": thumb})),
    );
    verify(&jkt_only).unwrap();

    let cases: Vec<MutationCase> = vec![
        (
            "iss",
            Box::new(|c| c.set("iss", "http://wire.com:46335/clients/1234/access-token")),
            Error::IssMismatch,
        ),
        (
            "aud",
            Box::new(|c| c.set("aud", "https://stepca/other")),
            Error::AudMismatch,
        ),
        (
            "iat",
            Box::new(move |c| c.set("iat", now + 600)),
            Error::IatInFuture,
        ),
        (
            "nbf",
            Box::new(move |c| c.set("nbf", now + 600)),
            Error::NotYetValid,
        ),
        (
            "exp past",
            Box::new(move |c| c.set("exp", now - 600)),
            Error::Expired,
        ),
        (
            "exp far",
            Box::new(move |c| c.set("exp", now + 7200)),
            Error::ExpTooFar,
        ),
        (
            "scope",
            Box::new(|c| c.set("scope", "openid")),
            Error::ScopeMismatch,
        ),
        (
            "api_version",
            Box::new(|c| c.set("api_version", 4)),
            Error::UnsupportedApiVersion,
        ),
        (
            "cnf.kid",
            Box::new(|c| c.set("cnf", json!({"kid": "AAAA"}))),
            Error::CnfMismatch,
        ),
        (
            "cnf.jkt",
            Box::new(move |c| c.set("cnf", json!({"kid": thumb.clone(), "jkt": "AAAA"}))),
            Error::CnfMismatch,
        ),
        (
            "no cnf",
            Box::new(|c| {
                c.0.remove("cnf");
            }),
            Error::MissingClaim("cnf"),
        ),
        (
            "client_id",
            Box::new(|c| {
                c.set(
                    "client_id",
                    "wireapp://yRbSiljXSnCl77-QkM634g!1234@wire.com",
                )
            }),
            Error::ClientIdMismatch,
        ),
        (
            "sub",
            Box::new(|c| c.set("sub", "wireapp://yRbSiljXSnCl77-QkM634g!1234@wire.com")),
            Error::SubMismatch,
        ),
        (
            "chal",
            Box::new(|c| c.set("chal", "another")),
            Error::ChalMismatch,
        ),
        (
            "nonce",
            Box::new(|c| c.set("nonce", "another")),
            Error::EmbeddedProof(Box::new(Error::NonceMismatch)),
        ),
        (
            "no jti",
            Box::new(|c| {
                c.0.remove("jti");
            }),
            Error::MissingClaim("jti"),
        ),
        (
            "no proof",
            Box::new(|c| {
                c.0.remove("proof");
            }),
            Error::MissingClaim("proof"),
        ),
    ];
    for (what, mutate, expected) in cases {
        let token = resign_token(&t, &account, &backend, |_| {}, |c| mutate(c));
        assert_eq!(verify(&token).unwrap_err(), expected, "{what}");
    }

    // The embedded proof must be the account key's, and say what the token says.
    let stranger = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let stranger_proof = resign_proof(&t, &stranger, |_| {});
    let token = resign_token(
        &t,
        &account,
        &backend,
        |_| {},
        |c| c.set("proof", stranger_proof.clone()),
    );
    assert_eq!(verify(&token).unwrap_err(), Error::ProofKeyMismatch);
    let token = resign_token(&t, &account, &backend, |c| c.set("chal", "another"), |_| {});
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::EmbeddedProof(Box::new(Error::ChalMismatch))
    );
    let token = resign_token(&t, &account, &backend, |c| c.set("name", "Eve"), |_| {});
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::EmbeddedProof(Box::new(Error::NameMismatch))
    );

    // Header: wrong typ; a kid naming no trusted key.
    let mut c = payload(&resign_token(&t, &account, &backend, |_| {}, |_| {}));
    c.set("x", 1);
    let wrong_typ = backend.sign_jwt("JWT", true, &c.0).unwrap();
    assert_eq!(
        verify(&wrong_typ).unwrap_err(),
        Error::WrongTyp { expected: "at+jwt" }
    );
    let named = backend.clone().with_kid("unknown");
    let token = named.sign_jwt("at+jwt", false, &c.0).unwrap();
    let keyset = [
        backend.public_jwk().clone(),
        SigningKey::generate(Algorithm::EdDsa)
            .unwrap()
            .public_jwk()
            .clone(),
    ];
    let check = AccessTokenCheck {
        backend_keys: &keyset,
        issuer: &order.target,
        audience: &order.chal_url,
        account_key: account.public_jwk(),
        challenge_token: &order.chal,
        identity: &order.identity(),
    };
    assert_eq!(
        verify_access_token(&token, &check, &AccessTokenPolicy::default(), now).unwrap_err(),
        Error::UnknownSigningKey
    );
}

/// The ID token's verification context as the transcript's step-ca had it.
struct OidcExpectations {
    keys: Vec<Jwk>,
    issuer: String,
    client_id: String,
    keyauth: String,
    acme_aud: String,
    identity: WireIdentity,
}

impl OidcExpectations {
    fn from(t: &Transcript) -> Self {
        let mut key = proto::spki::jwk_from_spki_pem(&t.s("/idp_public_key_pem")).unwrap();
        key.kid = Some(t.s("/id_token_header/kid"));
        let device = DeviceIdentifier::parse(&t.s("/device_identifier/value")).unwrap();
        let user = UserIdentifier::parse(&t.s("/user_identifier/value")).unwrap();
        Self {
            keys: vec![key],
            issuer: t.s("/oidc_challenge/target"),
            client_id: t.s("/oidc_client_id"),
            keyauth: proto::wire_id::key_authorization(
                &t.s("/oidc_challenge/token"),
                &t.s("/acme_account_thumbprint_sha256"),
            ),
            acme_aud: t.s("/oidc_challenge/url"),
            identity: WireIdentity::from_identifiers(&device, &user).unwrap(),
        }
    }

    fn verify(&self, token: &str, now: i64) -> Result<(), Error> {
        let mapping = proto::id_token::ClaimMapping::default();
        let check = proto::id_token::IdTokenCheck {
            issuer_keys: &self.keys,
            issuer: &self.issuer,
            client_id: &self.client_id,
            keyauth: &self.keyauth,
            acme_aud: &self.acme_aud,
            identity: &self.identity,
            mapping: &mapping,
        };
        proto::id_token::verify_id_token(token, &check, 60, now).map(|_| ())
    }
}

#[test]
fn transcript_id_token_verifies_and_each_expectation_mismatch_is_refused() {
    let t = Transcript::load();
    let token = t.s("/id_token");
    let good = OidcExpectations::from(&t);
    good.verify(&token, t.now()).unwrap();

    type Twist = (&'static str, Box<dyn Fn(&mut OidcExpectations)>, Error);
    let twists: Vec<Twist> = vec![
        (
            "issuer",
            Box::new(|e| e.issuer.push('x')),
            Error::IssMismatch,
        ),
        (
            "client",
            Box::new(|e| e.client_id = "other".into()),
            Error::AudMismatch,
        ),
        (
            "keyauth",
            Box::new(|e| e.keyauth.push('x')),
            Error::KeyAuthMismatch,
        ),
        (
            "acme_aud",
            Box::new(|e| e.acme_aud.push('x')),
            Error::AcmeAudMismatch,
        ),
        (
            "name",
            Box::new(|e| {
                e.identity = WireIdentity::new(
                    e.identity.client_id().clone(),
                    e.identity.handle().clone(),
                    "Bob",
                    None,
                )
                .unwrap()
            }),
            Error::NameMismatch,
        ),
        (
            "handle",
            Box::new(|e| {
                e.identity = WireIdentity::new(
                    e.identity.client_id().clone(),
                    HandleUri::new("bob", "wire.com").unwrap(),
                    e.identity.name(),
                    None,
                )
                .unwrap()
            }),
            Error::HandleMismatch,
        ),
        (
            "kid",
            Box::new(|e| e.keys[0].kid = Some("other".into())),
            Error::UnknownSigningKey,
        ),
    ];
    for (what, twist, expected) in twists {
        let mut e = OidcExpectations::from(&t);
        twist(&mut e);
        assert_eq!(e.verify(&token, t.now()).unwrap_err(), expected, "{what}");
    }
    let exp = payload(&token).int("exp").unwrap();
    assert_eq!(good.verify(&token, exp + 61).unwrap_err(), Error::Expired);

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = payload(&token);
    claims.set("name", "Mallory");
    parts[1] = b64::encode(serde_json::to_vec(&claims.0).unwrap());
    assert_eq!(
        good.verify(&parts.join("."), t.now()).unwrap_err(),
        Error::BadSignature
    );
}
