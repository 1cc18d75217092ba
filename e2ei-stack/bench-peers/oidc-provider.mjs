// node-oidc-provider as `e2ei-bench token` runs it: client credentials with DPoP required and
// server nonces (RFC 9449 §8) on, one confidential client, HTTPS on 127.0.0.1 with the bench's
// dev certificate, default in-memory adapter. Prints "oidc-provider listening on <issuer>" when
// ready.
//
// usage: node oidc-provider.mjs <cert.pem> <key.pem> <client_id> <client_secret>
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const [cert, key, clientId, clientSecret] = process.argv.slice(2);
if (!clientSecret) {
  console.error('usage: oidc-provider.mjs <cert.pem> <key.pem> <client_id> <client_secret>');
  process.exit(2);
}

// An ES256 signing key of its own, like the authz-server's (not the library's dev keys).
const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) });
server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      dpop_bound_access_tokens: true,
    }],
    jwks: { keys: [{ ...signing, alg: 'ES256', use: 'sig', kid: 'bench' }] },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    },
  });
  server.on('request', provider.callback());
  console.log(`oidc-provider listening on ${issuer}`);
});
