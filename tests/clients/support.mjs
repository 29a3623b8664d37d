// Shared by the client tests: where the server is, its tokens, and a plain GraphQL POST.
// tests/test_clients.py starts the server, mints the tokens and sets these variables.

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
/** A valid token without role admin: FORBIDDEN for every CRM operation. */
export const USER_TOKEN = required('CRM_USER_TOKEN');
/** Signed with the server's secret, but expired (beyond the 30 s leeway). */
export const EXPIRED_TOKEN = required('CRM_EXPIRED_TOKEN');
/** The `name` claim of the admin token: the timeline's `by`. */
export const ADMIN_NAME = required('CRM_ADMIN_NAME');

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

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
