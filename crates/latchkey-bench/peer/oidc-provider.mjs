// The peer for `BENCH_PEER`: node-oidc-provider (OpenID Certified), configured like the
// benchmark's latchkey clients for the refresh scenarios: confidential clients with a secret
// in Basic auth, strict rotation, RS256 id_tokens, in-memory storage (its default adapter;
// latchkey writes every rotation to SQLite). Listens on PORT; on MINT_PORT it hands out a
// fresh refresh token per request (GET /?client_id=…), which the benchmark uses before the
// measured window, as it uses the password grant with latchkey.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const mintPort = Number(process.env.MINT_PORT);
const issuer = `http://127.0.0.1:${port}`;
const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const es = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const client = (client_id) => ({
  client_id,
  client_secret: 'bench-first-party-secret',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['https://bench.example.com/cb'],
});

const provider = new Provider(issuer, {
  clients: [client('bench-first-party'), client('bench-first-party-rs256')],
  jwks: { keys: [{ ...key, kid: 'rs', use: 'sig', alg: 'RS256' }, { ...es, kid: 'es', use: 'sig', alg: 'ES256' }] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  routes: { token: '/oauth/token', jwks: '/.well-known/jwks.json' },
  scopes: ['openid', 'offline_access'],
  rotateRefreshToken: true,
  ttl: { AccessToken: 900, IdToken: 3600, Grant: 1209600, RefreshToken: 1209600 },
  features: { devInteractions: { enabled: false } },
});

// The scenario without an id_token gets a token without `openid`, as latchkey's client has
// `id_token_on_refresh = false`.
async function mint(clientId) {
  const found = await provider.Client.find(clientId);
  const scope = clientId === 'bench-first-party-rs256' ? 'openid offline_access' : 'offline_access';
  const grant = new provider.Grant({ accountId: 'bench', clientId });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();
  const token = new provider.RefreshToken({
    accountId: 'bench',
    authTime: Math.floor(Date.now() / 1000),
    client: found,
    grantId,
    gty: 'authorization_code',
    rotations: 0,
    scope,
  });
  return token.save();
}

http.createServer(async (req, res) => {
  const clientId = new URL(req.url, 'http://x').searchParams.get('client_id');
  try {
    res.end(await mint(clientId));
  } catch (error) {
    res.statusCode = 500;
    res.end(String(error));
  }
}).listen(mintPort, '127.0.0.1');
provider.listen(port, '127.0.0.1');
