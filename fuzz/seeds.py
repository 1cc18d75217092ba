#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the Wire
transcript vectors (proto/tests/vectors in the repository) and a few hand-made cases taken
from the tests. Run from anywhere; existing files are overwritten."""
import base64, json, os, pathlib

here = pathlib.Path(__file__).resolve().parent
vectors = here.parent / "proto" / "tests" / "vectors" / "wire-enrollment-transcript.json"
t = json.loads(vectors.read_text())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_der(pem: str) -> bytes:
    body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    return base64.b64decode(body)


def flattened(compact: str) -> bytes:
    p, pl, s = compact.split(".")
    return json.dumps({"protected": p, "payload": pl, "signature": s}).encode()


seeds = {
    "jws_compact": [t["dpop_proof"], t["access_token"], t["id_token"], "a.b.c", "..."],
    "dpop_proof": [t["dpop_proof"], t["access_token_claims"]["proof"]],
    "access_token": [t["access_token"]],
    "acme_jws": [flattened(t["dpop_proof"]), flattened(t["access_token"]),
                 b'{"protected":"","payload":"","signature":""}'],
    "acme_bodies": [
        json.dumps({"identifiers": [t["device_identifier"], t["user_identifier"]]}),
        json.dumps({"termsOfServiceAgreed": True, "contact": ["mailto:alice@wire.com"]}),
        json.dumps({"csr": b64url(pem_der(t["csr_pem"]))}),
        json.dumps({"access_token": t["access_token"]}),
        json.dumps({"id_token": t["id_token"]}),
        json.dumps({"status": "deactivated"}),
    ],
    "csr": [pem_der(t["csr_pem"])],
    "wire_ids": [
        t["dpop_proof_claims"]["sub"], t["dpop_proof_claims"]["handle"],
        t["device_identifier"]["value"], t["user_identifier"]["value"], "wire.com",
        "yRbSiljXSnCl77-QkM634g",
    ],
    "claims_param": [
        json.dumps({"id_token": {"keyauth": {"essential": True, "value": "tok.thumb"},
                                 "acme_aud": {"essential": True,
                                              "value": t["oidc_challenge"]["url"]}}}),
        '{"id_token":{"keyauth":{"value":7}}}', "{}", "[]",
    ],
}

for target, items in seeds.items():
    folder = here / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(items):
        data = item if isinstance(item, bytes) else item.encode()
        (folder / f"seed-{i}").write_bytes(data)
    print(f"{target}: {len(items)} seeds")
