// A real OpenID Provider (panva/oidc-provider, a certified OP) for keybroker's OIDC tests.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG (written by tests/fixtures/oidc_provider.py) holds the port, the client secrets, the
// public key of the private_key_jwt client and the public key that signs the fake CI ID
// tokens accepted by the RFC 8693 token-exchange grant. The issuer is
// http://127.0.0.1:PORT, so discovery says exactly what the tests configure.
//
// Test-only extras (never part of a real OP): GET /_test/stats counts token responses per
// client and grant, so a test can prove that the cache answered instead of the provider.

import { readFileSync } from 'node:fs';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const API = config.resource; // the resource server (gateway) every access token is for
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';

const resourceServer = {
  scope: 'api:read api:write',
  audience: API,
  accessTokenFormat: 'jwt',
  accessTokenTTL: 3600,
  jwt: { sign: { alg: 'RS256' } },
};

const signingKey = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(signingKey.privateKey)), alg: 'RS256', use: 'sig', kid: 'test-key-1' };
const ciKey = await jose.importJWK(config.ci_public_jwk, 'RS256');

const clients = [
  {
    client_id: 'cc-client',
    client_secret: config.cc_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'jwt-client',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [config.jwt_client_public_jwk] },
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'device-client',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: [DEVICE, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'browser-client',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  },
  {
    // OpenBao's OIDC auth method (a confidential client; the person's browser comes back to
    // keybroker's loopback listener on any port, as RFC 8252 allows for native apps).
    client_id: 'vault-client',
    client_secret: config.vault_secret,
    application_type: 'native',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/oidc/callback'],
  },
  {
    client_id: 'exchange-client',
    client_secret: config.exchange_secret,
    grant_types: [EXCHANGE],
    response_types: [],
    redirect_uris: [],
  },
];

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => API,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (indicator !== API) throw new errors.InvalidTarget();
        return resourceServer;
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    DeviceCode: 600,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 600,
  },
  // Every refresh rotates the refresh token, and a reused one revokes the grant (the
  // provider's reuse detection): exactly what keybroker must cope with.
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@example.test` }),
  }),
});
provider.proxy = false;

// RFC 8693 token exchange: a CI ID token (signed by the tests' fake GitHub/GitLab issuer)
// becomes an access token for the gateway.
provider.registerGrantType(EXCHANGE, async (ctx) => {
  const { params, client } = ctx.oidc;
  if (!params.subject_token) throw new errors.InvalidRequest('missing subject_token');
  const allowedTypes = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
  if (!allowedTypes.includes(params.subject_token_type)) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(params.subject_token, ciKey, {
      issuer: config.ci_issuers,
      audience: config.ci_audience,
    }));
  } catch (err) {
    throw new errors.InvalidGrant(`subject token rejected (${err.code || 'invalid'})`);
  }
  const resource = params.resource || params.audience || API;
  if (resource !== API) throw new errors.InvalidTarget();
  const token = new provider.ClientCredentials({ client, scope: params.scope || 'api:read' });
  token.resourceServer = new provider.ResourceServer(API, resourceServer);
  token.extra = { act_sub: claims.sub };
  ctx.oidc.entity('ClientCredentials', token);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}, ['subject_token', 'subject_token_type', 'audience', 'resource', 'scope', 'requested_token_type', 'actor_token', 'actor_token_type']);

const stats = {};
function count(kind, ctx) {
  const key = `${ctx.oidc?.client?.clientId ?? '?'} ${kind}`;
  stats[key] = (stats[key] || 0) + 1;
}
provider.on('grant.success', (ctx) => count(`success ${ctx.oidc.params.grant_type}`, ctx));
provider.on('grant.error', (ctx, err) => count(`error ${err.error}`, ctx));

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/stats') {
    ctx.body = stats;
    return;
  }
  await next();
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
