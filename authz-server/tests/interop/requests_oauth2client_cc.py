"""requests_oauth2client (an independent Python OAuth 2 client) against the authz-server:
client credentials with client_secret_basic and a DPoP-bound token, answering the server's
use_dpop_nonce by itself, then introspection of the token.

Environment: ISSUER, SERVICE_SECRET, REQUESTS_CA_BUNDLE (the dev TLS root).
"""
import os
import sys

from requests_oauth2client import ClientSecretBasic, DPoPKey, OAuth2Client

issuer = os.environ["ISSUER"]
client = OAuth2Client.from_discovery_endpoint(
    issuer + "/.well-known/openid-configuration",
    issuer=issuer,
    auth=ClientSecretBasic("demo-service", os.environ["SERVICE_SECRET"]),
    dpop_bound_access_tokens=True,
)
token = client.client_credentials(scope="api")
print("client credentials ok", token.token_type)
info = client.introspect_token(token.access_token)
if not info.get("active") or info.get("client_id") != "demo-service" or "jkt" not in info.get("cnf", {}):
    print("introspection:", info)
    sys.exit(1)
print("introspection ok", info["token_type"])
