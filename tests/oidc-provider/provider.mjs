// A real OpenID Connect provider (oidc-provider 9) for the tests of entry's Google sign-in.
//
// Started by Vpn.TestSupport.Oidc.OidcProvider (C#); it can be run by hand too:
//   node tests/oidc-provider/provider.mjs --port 0            # prints "READY http://127.0.0.1:<port>"
//
// Options (argv or environment):
//   --port N            | OIDC_FIXTURE_PORT    port on 127.0.0.1; 0 (the default) lets the kernel choose, so the caller
//                                              never races another process for a "free" port
//   --config JSON       | OIDC_FIXTURE_CONFIG  {"clients": [<client metadata>…], "signing_key": <private RSA JWK>,
//                                              "require_pkce": false, "default_subject": "alice"}
//
// The sign-in is scripted, not interactive: /interaction/:uid logs in the `login_hint` of the authorization request
// (default "alice") and consents to what was asked, so a test drives the whole code flow with plain HTTP requests.
//
// Test controls (only here, JSON, under /__test/; tamper and token-endpoint last until /__test/reset):
//   POST /__test/tamper         {"claims": {…}, "header": {…}, "sign": "provider"|"foreign"|"none"|"client_secret"}
//   POST /__test/reset          no tampering, token endpoint normal (the counters of /__test/stats keep counting)
//   POST /__test/token-endpoint {"mode": "normal"|"down"|"hang"}
//   POST /__test/rotate-keys    {"keep_previous": false} → {"kid": "<new kid>", "jwks_kids": [...]}
//   GET  /__test/stats          {"jwks_requests": n, "token_requests": n, "discovery_requests": n}
//   GET  /__test/state          {"issuer", "kid", "signing_key" (private JWK: lets a restart keep the same key), …}

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import { Provider } from 'oidc-provider';
// oidc-provider's own in-memory adapter, made once so every Provider instance (see rotate-keys) shares one store.
// A deep import: safe only because package.json pins the exact version.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    config: { type: 'string' },
  },
  strict: true,
});

const port = Number(args.port ?? process.env.OIDC_FIXTURE_PORT ?? 0);
const config = JSON.parse(args.config ?? process.env.OIDC_FIXTURE_CONFIG ?? '{}');

const defaultClients = [
  {
    client_id: 'vpn-app',
    client_secret: 'vpn-app-secret',
    redirect_uris: ['https://app.example/cb'],
    // oidc-provider accepts client_secret_basic as well for a client registered with client_secret_post (and the
    // other way round): both carry the same shared secret, only a JWT-based method would be refused.
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code'],
    response_types: ['code'],
  },
  {
    client_id: 'other-app',
    client_secret: 'other-app-secret',
    // The same redirect URI as vpn-app, so a test can get a code issued to another client through the same flow.
    redirect_uris: ['https://app.example/cb'],
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code'],
    response_types: ['code'],
  },
  {
    // A native app (RFC 8252 §7.3): a loopback redirect matches on any port, as Google's desktop clients do. The
    // reference client (vpnctl client login) listens on a port the kernel picks; entry redeems the code with the secret.
    client_id: 'vpn-native',
    client_secret: 'vpn-native-secret',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code'],
    response_types: ['code'],
  },
];
const clients = config.clients ?? defaultClients;
const defaultSubject = config.default_subject ?? 'alice';
const requirePkce = config.require_pkce === true;

// Session and interaction cookies are signed; the keys outlive a key rotation so a login in flight survives it.
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
// Codes, sessions, grants and interactions outlive a key rotation, as they do at a real provider.
const adapter = createMemoryAdapter(15);

// Counters across provider instances (a rotation swaps the instance, the counters go on).
const stats = { jwks_requests: 0, token_requests: 0, discovery_requests: 0 };
let tamper = null;
let tokenMode = 'normal';
// Requests held open by the "hang" mode: released (their sockets destroyed) by a reset, a mode change or exit.
const hanging = new Set();

async function newSigningKey() {
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  // The kid is the key's RFC 7638 thumbprint: a new key always has a new kid.
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = 'RS256';
  jwk.use = 'sig';
  return jwk;
}

// A key that is in no JWKS this provider ever published: its signatures must be refused.
let foreignKey;
async function getForeignKey() {
  foreignKey ??= (await jose.generateKeyPair('RS256', { modulusLength: 2048 })).privateKey;
  return foreignKey;
}

let signingJwk = config.signing_key ?? await newSigningKey();
if (!signingJwk.kid) {
  signingJwk.kid = await jose.calculateJwkThumbprint(signingJwk);
}
// Keys that stay published (but no longer sign: oidc-provider signs with the first matching key) after a rotation
// with keep_previous. oidc-provider wants private keys in its configuration, so they are kept whole.
let previousJwks = [];

function decodeSegment(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

function encodeSegment(value) {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

// A null value deletes the member, any other value replaces it.
function applyOverrides(target, overrides) {
  for (const [name, value] of Object.entries(overrides ?? {})) {
    if (value === null) {
      delete target[name];
    } else {
      target[name] = value;
    }
  }
  return target;
}

async function tamperIdToken(idToken, clientId) {
  const [headerSegment, payloadSegment] = idToken.split('.');
  const header = decodeSegment(headerSegment);
  const payload = applyOverrides(decodeSegment(payloadSegment), tamper.claims);
  const sign = tamper.sign ?? 'provider';
  const payloadBytes = Buffer.from(JSON.stringify(payload), 'utf8');
  switch (sign) {
    case 'provider': {
      // The header keeps the real kid, so only the claims differ from a genuine token.
      const key = await jose.importJWK(signingJwk, 'RS256');
      const protectedHeader = applyOverrides({ ...header }, tamper.header);
      // jose refuses to sign a crit header it is not told about; declare them so tests can send one.
      const crit = Array.isArray(protectedHeader.crit) ? { crit: Object.fromEntries(protectedHeader.crit.map((n) => [n, true])) } : undefined;
      return new jose.CompactSign(payloadBytes).setProtectedHeader(protectedHeader).sign(key, crit);
    }
    case 'foreign': {
      // By default still the provider's kid: the verifier finds a key by that kid and the signature must not match.
      const protectedHeader = applyOverrides({ ...header }, tamper.header);
      return new jose.CompactSign(payloadBytes).setProtectedHeader(protectedHeader).sign(await getForeignKey());
    }
    case 'client_secret': {
      // HS256 keyed with the client's own secret: an ID token a verifier accepting any algorithm would take.
      const client = clients.find((c) => c.client_id === clientId);
      const protectedHeader = applyOverrides({ ...header, alg: 'HS256' }, tamper.header);
      return new jose.CompactSign(payloadBytes)
        .setProtectedHeader(protectedHeader)
        .sign(new TextEncoder().encode(client?.client_secret ?? ''));
    }
    case 'none': {
      const protectedHeader = applyOverrides({ ...header, alg: 'none' }, tamper.header);
      return `${encodeSegment(protectedHeader)}.${encodeSegment(payload)}.`;
    }
    default:
      throw new Error(`unknown sign mode ${sign}`);
  }
}

function releaseHanging() {
  for (const socket of hanging) {
    socket.destroy();
  }
  hanging.clear();
}

function buildProvider(issuer, currentKey, olderKeys) {
  const provider = new Provider(issuer, {
    clients: structuredClone(clients),
    adapter,
    jwks: { keys: [currentKey, ...olderKeys].map((k) => ({ ...k })) },
    cookies: { keys: cookieKeys },
    // Google-like scopes; the ID token of the code flow carries only sub (+ protocol claims), as findAccount gives.
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
    },
    pkce: {
      // PKCE (S256 only) is always honoured when the request has a code_challenge. A public client must use it; a
      // confidential one may omit it unless require_pkce is set, so "with verifier" and "without" are both testable.
      required: (_ctx, client) => requirePkce || client.clientAuthMethod === 'none',
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub };
        },
      };
    },
    async renderError(ctx, out) {
      // JSON instead of the default HTML page: a failing scripted login shows the reason in the test's message.
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  // Counters and token-endpoint faults; the tampering rewrites the ID token after oidc-provider produced it.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/jwks') {
      stats.jwks_requests += 1;
    } else if (ctx.path === '/.well-known/openid-configuration') {
      stats.discovery_requests += 1;
    }
    if (ctx.path !== '/token') {
      return next();
    }
    stats.token_requests += 1;
    if (tokenMode === 'down') {
      ctx.status = 503;
      ctx.set('retry-after', '1');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'token endpoint down (test control)' };
      return undefined;
    }
    if (tokenMode === 'hang') {
      // Never answer: hold the request for up to 60 s, then drop the connection without a response.
      const { socket } = ctx.req;
      hanging.add(socket);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 60_000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      hanging.delete(socket);
      socket.destroy();
      ctx.respond = false;
      return undefined;
    }
    await next();
    if (tamper && ctx.status === 200 && typeof ctx.body?.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token, ctx.oidc?.client?.clientId) };
    }
    return undefined;
  });

  // The scripted login: no page, the authorization request's login_hint is the account.
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
    if (!match || ctx.method !== 'GET') {
      return next();
    }
    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (error) {
      ctx.status = 400;
      ctx.body = { error: 'interaction_failed', error_description: String(error?.message ?? error) };
      return undefined;
    }
    if (details.uid !== match[1]) {
      ctx.status = 400;
      ctx.body = { error: 'interaction_failed', error_description: 'interaction uid does not match the cookie' };
      return undefined;
    }
    const { params } = details;
    const accountId = params.login_hint || details.session?.accountId || defaultSubject;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    grant.addOIDCScope(String(params.scope ?? 'openid'));
    // Claims asked for by name through the claims parameter are consented too.
    if (params.claims) {
      const requested = JSON.parse(params.claims);
      const names = [...Object.keys(requested.id_token ?? {}), ...Object.keys(requested.userinfo ?? {})];
      if (names.length) {
        grant.addOIDCClaims(names);
      }
    }
    const missing = details.prompt?.details?.missingResourceScopes ?? {};
    for (const [indicator, scopes] of Object.entries(missing)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    // interactionFinished answers 303 to the resume URL on the raw response: koa must not respond as well.
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, {
      login: { accountId },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    return undefined;
  });

  provider.on('server_error', (_ctx, error) => {
    console.error('oidc-provider server_error', error);
  });
  return provider;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

let issuer;
let provider;
let handler;

function publishedKids() {
  return [signingJwk.kid, ...previousJwks.map((k) => k.kid)];
}

async function control(req, res, path) {
  const route = `${req.method} ${path}`;
  switch (route) {
    case 'POST /__test/tamper': {
      const body = await readJson(req);
      const sign = body.sign ?? 'provider';
      if (!['provider', 'foreign', 'none', 'client_secret'].includes(sign)) {
        return sendJson(res, 400, { error: `unknown sign mode ${sign}` });
      }
      tamper = { claims: body.claims ?? {}, header: body.header ?? {}, sign };
      return sendJson(res, 200, { tamper });
    }
    case 'POST /__test/reset':
      tamper = null;
      tokenMode = 'normal';
      releaseHanging();
      return sendJson(res, 200, { tamper, token_endpoint: tokenMode });
    case 'POST /__test/token-endpoint': {
      const { mode } = await readJson(req);
      if (!['normal', 'down', 'hang'].includes(mode)) {
        return sendJson(res, 400, { error: `unknown mode ${mode}` });
      }
      tokenMode = mode;
      if (mode !== 'hang') {
        releaseHanging();
      }
      return sendJson(res, 200, { token_endpoint: tokenMode });
    }
    case 'POST /__test/rotate-keys': {
      // oidc-provider reads its keys once, at construction: a rotation builds a new Provider with the new key and
      // swaps the handler the HTTP server delegates to. The instances share one adapter store, so codes issued
      // before the rotation can still be redeemed (their ID token is then signed with the new key, as at a real
      // provider); the old key is gone from the JWKS at once unless keep_previous.
      const body = await readJson(req);
      const nextPrevious = body.keep_previous ? [signingJwk, ...previousJwks] : [];
      const nextSigning = await newSigningKey();
      const nextProvider = buildProvider(issuer, nextSigning, nextPrevious);
      // Swapped only once the new instance was built: a failure leaves the old one serving.
      signingJwk = nextSigning;
      previousJwks = nextPrevious;
      provider = nextProvider;
      handler = provider.callback();
      return sendJson(res, 200, { kid: signingJwk.kid, jwks_kids: publishedKids() });
    }
    case 'GET /__test/stats':
      return sendJson(res, 200, stats);
    case 'GET /__test/state':
      return sendJson(res, 200, {
        issuer,
        kid: signingJwk.kid,
        jwks_kids: publishedKids(),
        signing_key: signingJwk,
        tamper,
        token_endpoint: tokenMode,
        require_pkce: requirePkce,
      });
    default:
      return sendJson(res, 404, { error: `no test control ${route}` });
  }
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://fixture').pathname;
  if (path.startsWith('/__test/')) {
    control(req, res, path).catch((error) => sendJson(res, 500, { error: String(error?.stack ?? error) }));
    return;
  }
  handler(req, res);
});

server.listen(port, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  provider = buildProvider(issuer, signingJwk, previousJwks);
  handler = provider.callback();
  // The one line the C# fixture waits for.
  process.stdout.write(`READY ${issuer}\n`);
});

server.on('error', (error) => {
  console.error(`oidc fixture: ${error.message}`);
  process.exit(1);
});

function shutdown() {
  releaseHanging();
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

// The test process normally kills us; if it dies first (crash, SIGKILL) we are re-parented: exit instead of lingering.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) {
    shutdown();
  }
}, 1000).unref();
