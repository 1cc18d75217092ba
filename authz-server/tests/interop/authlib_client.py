"""Authlib (an independent Python OAuth 2 / OpenID Connect library) against the authz-server,
with the library's defaults:

1. Authorization code + PKCE for the first-party public client with the scope Authlib's
   documentation registers OpenID clients with, `openid email profile`, then /userinfo.
2. Client credentials for `demo-jwt-service` authenticated with `private_key_jwt` the way
   Authlib's documentation shows (`register_client_auth_method(PrivateKeyJWT(token_endpoint))`):
   Authlib signs each assertion for 3600 s.

The login form is submitted as a browser would. Prints one line per step, and runs both steps
even when one fails (so a run shows each failure); exits non-zero if any did.

Environment: ISSUER, PASSWORD (alice_wire), JWT_SERVICE_KEY (the PKCS#8 DER file of
demo-jwt-service's ES256 key), REQUESTS_CA_BUNDLE (the dev TLS root).
"""
import base64
import json
import os
import sys
import traceback
from urllib.parse import parse_qs, parse_qsl, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey

issuer = os.environ["ISSUER"]
metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=30).json()
print("discovery ok", metadata["issuer"])


class StepFailed(Exception):
    pass


def sign_in():
    """1. Authorization code with Authlib's default OpenID scope."""
    scope = "openid email profile"
    session = OAuth2Session(
        "wireapp",
        scope=scope,
        redirect_uri="http://127.0.0.1:4711/callback",
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(20)
    )
    form = dict(parse_qsl(urlsplit(url).query))
    form.update(username="alice_wire", password=os.environ["PASSWORD"])
    login = requests.post(
        metadata["authorization_endpoint"], data=form, allow_redirects=False, timeout=30
    )
    if login.status_code != 303:
        raise StepFailed(f"login: HTTP {login.status_code} {login.text}")
    # Authlib does not look for an error response itself (it would make another request).
    answer = parse_qs(urlsplit(login.headers["location"]).query)
    if "error" in answer:
        raise StepFailed(f"authorization error response: {answer}")
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=login.headers["location"],
        state=state,
        code_verifier=verifier,
    )
    if token.get("scope") != scope or "id_token" not in token:
        raise StepFailed(f"token response: {token}")
    print("authorization code ok", token["token_type"], "scope", token["scope"])
    userinfo = session.get(metadata["userinfo_endpoint"], timeout=30)
    userinfo.raise_for_status()
    claims = userinfo.json()
    nulls = [name for name, value in claims.items() if value is None]
    if nulls or claims.get("preferred_username") != "alice_wire@wire.com":
        raise StepFailed(f"userinfo: {claims}")
    print("userinfo ok", claims["preferred_username"])


class NotedPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's `private_key_jwt`, printing each assertion's lifetime on the way."""

    def sign(self, auth, token_endpoint):
        assertion = super().sign(auth, token_endpoint)
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        print("client assertion signed, lifetime", claims["exp"] - claims["iat"])
        return assertion


def client_credentials():
    """2. Client credentials with private_key_jwt, Authlib's assertions as they come."""
    with open(os.environ["JWT_SERVICE_KEY"], "rb") as f:
        der = f.read()
    pem = serialization.load_der_private_key(der, password=None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    service = OAuth2Session(
        "demo-jwt-service",
        ECKey.import_key(pem),
        token_endpoint_auth_method="private_key_jwt",
        scope="api",
    )
    service.register_client_auth_method(NotedPrivateKeyJWT(metadata["token_endpoint"], alg="ES256"))
    token = service.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    if token.get("scope") != "api" or not token.get("access_token"):
        raise StepFailed(f"client credentials: {token}")
    print("client credentials ok private_key_jwt")


failed = False
for step in (sign_in, client_credentials):
    try:
        step()
    except Exception:  # noqa: BLE001 - every failure is reported, then the next step runs
        print(f"FAILED {step.__name__}:", traceback.format_exc())
        failed = True
sys.exit(1 if failed else 0)
