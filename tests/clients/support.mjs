// Shared by the client tests: where the server is, its tokens, and a plain GraphQL POST.
// tests/test_clients.py starts the server, mints the tokens and sets these variables.

import { createHmac } from 'node:crypto';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/test_clients.py (uv run pytest)`);
  }
  return value;
}

/** The HTTP endpoint, http://127.0.0.1:<port>/graphql. */
export const GRAPHQL_URL = required('CRM_GRAPHQL_URL');
/** The same endpoint for graphql-transport-ws. */
export const WS_URL = GRAPHQL_URL.replace(/^http/, 'ws');
/** Role admin: may do everything. */
export const ADMIN_TOKEN = required('CRM_ADMIN_TOKEN');
/** A valid token with a role the server does not know: FORBIDDEN for every operation but `me`. */
export const USER_TOKEN = required('CRM_USER_TOKEN');
/** Role sales: sees and changes only the leads it owns (`leadOwnerId` = SALES_SUB). */
export const SALES_TOKEN = required('CRM_SALES_TOKEN');
/** The sales token's `sub`. */
export const SALES_SUB = required('CRM_SALES_SUB');
/** Signed with the server's secret, but expired (beyond the 30 s leeway). */
export const EXPIRED_TOKEN = required('CRM_EXPIRED_TOKEN');
/** The `name` claim of the admin token: the timeline's `by`. */
export const ADMIN_NAME = required('CRM_ADMIN_NAME');

/** The server's HS256 secret, for tokens that must expire at a moment a test picks. */
const JWT_SECRET = required('CRM_JWT_SECRET');
/** How long past `exp` the server still accepts a token (clock skew). */
export const LEEWAY_SECONDS = 30;

/**
 * An admin token the server accepts for about `seconds` more (its `exp` is in the past, within
 * the leeway). Returns the token and the moment (ms since the epoch) it stops being accepted.
 */
export function tokenValidFor(seconds) {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + seconds - LEEWAY_SECONDS;
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = { sub: 'client-tests-admin', name: ADMIN_NAME, email: 'admin@example.com', role: 'admin', iat: now, exp };
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  const signature = createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url');
  return { token: `${unsigned}.${signature}`, acceptedUntil: (exp + LEEWAY_SECONDS) * 1000 };
}

/** A tag unique to this run, so concurrent tests (and earlier runs) never see each other's leads. */
export function uniqueTag(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * POST a GraphQL document as an admin with plain fetch (not through Apollo), as another user or
 * service would; throws unless the response is 200 without errors. Returns the `data`.
 */
export async function post(query, variables = {}, token = ADMIN_TOKEN) {
  const response = await fetch(GRAPHQL_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (response.status !== 200 || body.errors) {
    throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.data;
}

/** POST a GraphQL document as an admin; returns the whole body, errors included. */
export async function postForBody(query, variables = {}) {
  const response = await fetch(GRAPHQL_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
