// Apollo Client 4 with InMemoryCache against the live server: the lead page's flow, with the
// cache kept current by the mutation payloads alone (no refetch), every entity normalized,
// the auth errors as an app sees them, and the live timeline through GraphQLWsLink.
//
// Run with `node --conditions=development --test` (tests/test_clients.py does): Apollo's
// development build then warns about cache writes that lose data (e.g. a list of objects
// without `id` replaced by a mutation payload), and any warning fails these tests.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { format } from 'node:util';

import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  ServerError,
  gql,
} from '@apollo/client';
import { loadDevMessages, loadErrorMessages } from '@apollo/client/dev';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { __DEV__ } from '@apollo/client/utilities/environment';
import { getIntrospectionQuery, OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import {
  ADMIN_NAME,
  ADMIN_TOKEN,
  EXPIRED_TOKEN,
  GRAPHQL_URL,
  USER_TOKEN,
  WS_URL,
  post,
  uniqueTag,
} from './support.mjs';

// Node 20 has no global WebSocket, and Apollo 4.3's GraphQLWsLink reads `WebSocket.CLOSED` when
// graphql-ws reports GraphQL errors: without this line a FORBIDDEN subscription surfaces as
// "ReferenceError: WebSocket is not defined" (apollographql/apollo-client#11761). Browsers and
// Node >= 22 have the global.
globalThis.WebSocket ??= WebSocket;

loadDevMessages();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait (up to a second) until `check()` holds. */
async function eventually(check, what) {
  const deadline = Date.now() + 1000;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out: ${typeof what === 'function' ? what() : what}`);
    await sleep(5);
  }
}
loadErrorMessages();

// ---- documents (what a lead page would send) ------------------------------------------------

const LEAD_TIMELINE = gql`
  fragment LeadTimeline on Lead {
    id
    leadId
    status
    convertedToDeal
    updatedAt
    activitiesCount
    activities { id type description by timestamp field oldValue newValue }
  }
`;

const EMAIL_FIELDS = gql`
  fragment EmailFields on Email { id leadId from to subject body status timestamp sentBy }
`;

const DEAL_FIELDS = gql`
  fragment DealFields on Deal {
    id dealId leadId status dealOwner
    organization { id name website }
    contact { id firstName lastName email organization { id name } }
  }
`;

const LIST_LEADS = gql`
  query ListLeads($first: Int!, $filter: LeadFilter) {
    leads(first: $first, filter: $filter) {
      totalCount
      nodes { id leadId fullName status organization }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

const GET_LEAD = gql`
  query GetLead($leadId: String!) {
    lead(leadId: $leadId) {
      ...LeadTimeline
      fullName firstName lastName email mobile organization
      emails { ...EmailFields }
      calls { id leadId type duration status phone to loggedBy timestamp }
      tasks { id leadId title status priority dueDate createdBy }
      notes { id leadId title content createdBy createdAt }
      deal { ...DealFields }
    }
  }
  ${LEAD_TIMELINE}
  ${EMAIL_FIELDS}
  ${DEAL_FIELDS}
`;

const CREATE_LEAD = gql`
  mutation CreateLead($input: CreateLeadInput!) {
    createLead(input: $input) { lead { ...LeadTimeline fullName firstName lastName email organization } }
  }
  ${LEAD_TIMELINE}
`;

const SEND_EMAIL = gql`
  mutation SendEmail($leadId: String!, $input: SendEmailInput!) {
    sendEmail(leadId: $leadId, input: $input) {
      email { ...EmailFields }
      lead { ...LeadTimeline emails { ...EmailFields } }
    }
  }
  ${LEAD_TIMELINE}
  ${EMAIL_FIELDS}
`;

const UPDATE_LEAD_STATUS = gql`
  mutation UpdateLeadStatus($leadId: String!, $status: LeadStatus!) {
    updateLeadStatus(leadId: $leadId, status: $status) { lead { ...LeadTimeline } }
  }
  ${LEAD_TIMELINE}
`;

const CONVERT_LEAD = gql`
  mutation ConvertLead($leadId: String!) {
    convertLeadToDeal(leadId: $leadId) {
      lead { ...LeadTimeline deal { ...DealFields } }
      deal { ...DealFields }
    }
  }
  ${LEAD_TIMELINE}
  ${DEAL_FIELDS}
`;

const ME = gql`
  query Me { me { id name email role } }
`;

const LEAD_ACTIVITY = gql`
  subscription LeadActivity($leadId: String) {
    leadActivity(leadId: $leadId) {
      lead { ...LeadTimeline }
      activity { id type description by timestamp }
    }
  }
  ${LEAD_TIMELINE}
`;

// ---- the client under test --------------------------------------------------------------------

/** Every HTTP request Apollo made: { operationName, status, contentType }. */
const requests = [];
/** Everything Apollo's development build warned or complained about. */
const apolloWarnings = [];

function countingFetch(uri, options) {
  const record = { operationName: JSON.parse(options.body).operationName };
  requests.push(record);
  return fetch(uri, options).then((response) => {
    record.status = response.status;
    record.contentType = response.headers.get('content-type');
    return response;
  });
}

// The admin's WebSocket, for subscriptions. Lazy (the default): it connects on the first
// subscription and closes when the last one ends. connectionParams is a function, so a
// reconnect sends the token current at that time.
const wsClient = createClient({
  url: WS_URL,
  webSocketImpl: WebSocket,
  connectionParams: () => ({ Authorization: `Bearer ${ADMIN_TOKEN}` }),
});

/** An Apollo client as a frontend sets one up; with `ws`, subscriptions go over it. */
function apolloClient(token, ws) {
  const http = new HttpLink({
    uri: GRAPHQL_URL,
    fetch: countingFetch,
    headers: { authorization: `Bearer ${token}` },
  });
  const link = ws
    ? ApolloLink.split(
        ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
        new GraphQLWsLink(ws),
        http,
      )
    : http;
  return new ApolloClient({ cache: new InMemoryCache(), link });
}

const client = apolloClient(ADMIN_TOKEN, wsClient);
const cache = client.cache;
const tag = uniqueTag('Apollo');
const originalConsole = { warn: console.warn, error: console.error };
/** The lead the flow creates: { id, leadId }. */
let lead;
/** Results of every query and mutation of the flow, for the normalization check. */
const results = [];

before(() => {
  for (const level of ['warn', 'error']) {
    console[level] = (...args) => {
      apolloWarnings.push(format(...args));
      originalConsole[level](...args);
    };
  }
});

after(async () => {
  Object.assign(console, originalConsole);
  client.stop();
  await wsClient.dispose();
});

/** Run `action`; assert it made exactly the HTTP requests named (in order), and no other. */
async function expectRequests(operationNames, action) {
  const start = requests.length;
  const value = await action();
  // A refetch triggered by the action would start right away; give it a moment to show up.
  await sleep(50);
  assert.deepEqual(
    requests.slice(start).map((r) => r.operationName),
    operationNames,
    'HTTP requests made by Apollo',
  );
  return value;
}

/** The lead page's data as the cache has it now, read without any network request. */
function cachedLead() {
  return expectRequestsSync(() => client.readQuery({ query: GET_LEAD, variables: { leadId: lead.leadId } }))
    ?.lead;
}

function expectRequestsSync(read) {
  const start = requests.length;
  const value = read();
  assert.equal(requests.length, start, 'a cache read must not make a request');
  return value;
}

function assertNoApolloWarnings() {
  assert.deepEqual(apolloWarnings, [], 'Apollo warned (cache data loss or similar)');
}

// ---- the flow ---------------------------------------------------------------------------------

test('development build is on, so Apollo reports cache writes that lose data', () => {
  assert.equal(__DEV__, true, 'run with node --conditions=development');
});

test('createLead: the new lead with its CREATED entry lands in the cache', async () => {
  const { data } = await expectRequests(['CreateLead'], () =>
    client.mutate({
      mutation: CREATE_LEAD,
      variables: {
        input: {
          firstName: 'Ada',
          lastName: tag,
          email: `${tag.toLowerCase()}@example.com`,
          mobile: '+1 555 0100',
          organization: `${tag} Corp`,
        },
      },
    }),
  );
  results.push(data);
  const created = data.createLead.lead;
  assert.match(created.leadId, /^LEAD-\d{3,}$/);
  assert.equal(created.status, 'NEW');
  assert.equal(created.fullName, `Ada ${tag}`);
  assert.equal(created.activitiesCount, 1);
  assert.equal(created.activities.length, 1);
  assert.equal(created.activities[0].type, 'CREATED');
  assert.equal(created.activities[0].id, `${created.leadId}:1`);
  assert.equal(created.activities[0].by, ADMIN_NAME);
  lead = { id: created.id, leadId: created.leadId };

  const fromCache = cache.readFragment({
    id: cache.identify({ __typename: 'Lead', id: lead.id }),
    fragment: LEAD_TIMELINE,
  });
  const { fullName, firstName, lastName, email, organization, ...timelineFields } = created;
  assert.deepEqual(fromCache, timelineFields);
  assert.equal(fromCache.activities[0].type, 'CREATED');

  // Meanwhile a colleague works on the lead (plain HTTP, not through this Apollo client), so the
  // lead page below has something in every nested collection.
  await post(
    `mutation($leadId: String!) {
      logCall(leadId: $leadId, input: { duration: 180 }) { call { id } }
      createTask(leadId: $leadId, input: { title: "Follow up", priority: HIGH, dueDate: "2030-01-25T14:00:00Z" }) { task { id } }
      createNote(leadId: $leadId, input: { title: "Call notes", content: "Discussed requirements" }) { note { id } }
    }`,
    { leadId: lead.leadId },
  );
});

test('leads: the list holds references to normalized Lead entries', async () => {
  const variables = { first: 10, filter: { search: tag } };
  const { data } = await expectRequests(['ListLeads'], () => client.query({ query: LIST_LEADS, variables }));
  results.push(data);
  assert.equal(data.leads.totalCount, 1);
  assert.deepEqual(
    data.leads.nodes.map((n) => [n.leadId, n.fullName, n.status]),
    [[lead.leadId, `Ada ${tag}`, 'NEW']],
  );
  assert.equal(data.leads.pageInfo.hasNextPage, false);

  const { data: all } = await expectRequests(['ListLeads'], () =>
    client.query({ query: LIST_LEADS, variables: { first: 10 } }),
  );
  results.push(all);
  assert.ok(all.leads.totalCount >= 1);
  assert.ok(all.leads.nodes.length >= 1 && all.leads.nodes.length <= 10);

  const root = cache.extract().ROOT_QUERY;
  const listKey = Object.keys(root).find((k) => k.startsWith('leads(') && k.includes(tag));
  assert.ok(listKey, `no cached leads(...) field for the search: ${Object.keys(root)}`);
  assert.deepEqual(root[listKey].nodes, [{ __ref: `Lead:${lead.id}` }]);
});

test('lead: the page with nested emails, calls, tasks, notes and timeline; then served from cache', async () => {
  const { data } = await expectRequests(['GetLead'], () =>
    client.query({ query: GET_LEAD, variables: { leadId: lead.leadId } }),
  );
  results.push(data);
  const page = data.lead;
  assert.equal(page.id, lead.id);
  assert.equal(page.emails.length, 0);
  assert.deepEqual(page.calls.map((c) => [c.duration, c.type, c.status, c.phone]), [[180, 'OUTBOUND', 'COMPLETED', '+1 555 0100']]);
  assert.deepEqual(page.tasks.map((t) => [t.title, t.priority]), [['Follow up', 'HIGH']]);
  assert.deepEqual(page.notes.map((n) => n.title), ['Call notes']);
  assert.equal(page.deal, null);
  assert.equal(page.activitiesCount, 4);
  assert.deepEqual(
    page.activities.map((a) => [a.id, a.type]),
    [
      [`${lead.leadId}:4`, 'NOTE_ADDED'],
      [`${lead.leadId}:3`, 'TASK_CREATED'],
      [`${lead.leadId}:2`, 'CALL_LOGGED'],
      [`${lead.leadId}:1`, 'CREATED'],
    ],
  );

  // Everything the page needs is in the cache: asking again makes no request.
  const again = await expectRequests([], () => client.query({ query: GET_LEAD, variables: { leadId: lead.leadId } }));
  assert.deepEqual(again.data, data);
});

test('sendEmail: the cached lead page shows the email and EMAIL_SENT from the payload alone', async () => {
  // A page that stays on screen: it must re-render from the cache, without fetching.
  const watched = [];
  const watcher = client
    .watchQuery({ query: GET_LEAD, variables: { leadId: lead.leadId } })
    .subscribe((result) => watched.push(result.data?.lead));
  try {
    await eventually(() => watched.at(-1)?.activitiesCount === 4, 'the page rendered from the cache');

    const { data } = await expectRequests(['SendEmail'], () =>
      client.mutate({
        mutation: SEND_EMAIL,
        variables: { leadId: lead.leadId, input: { subject: 'Follow up meeting', body: 'Email content...' } },
      }),
    );
    results.push(data);
    const { email } = data.sendEmail;
    assert.equal(email.to, `${tag.toLowerCase()}@example.com`);
    assert.equal(email.sentBy, ADMIN_NAME);

    const page = cachedLead();
    assert.equal(page.activitiesCount, 5);
    assert.deepEqual(
      [page.activities[0].id, page.activities[0].type, page.activities[0].by],
      [`${lead.leadId}:5`, 'EMAIL_SENT', ADMIN_NAME],
    );
    assert.deepEqual(page.activities[0], data.sendEmail.lead.activities[0]);
    assert.equal(page.activities.length, 5);
    assert.deepEqual(page.emails.map((e) => e.id), [email.id]);
    assert.deepEqual(page.emails[0], email);
    // Untouched by the payload, still there.
    assert.equal(page.calls.length, 1);
    assert.equal(page.notes.length, 1);
    assert.equal(page.updatedAt, data.sendEmail.lead.updatedAt);

    await eventually(() => watched.at(-1)?.activitiesCount === 5, 'the watching page re-rendered');
    assert.deepEqual(watched.at(-1), page);
  } finally {
    watcher.unsubscribe();
  }
  assertNoApolloWarnings();
});

test('updateLeadStatus: the cached page and list show the new status and STATUS_CHANGED', async () => {
  const { data } = await expectRequests(['UpdateLeadStatus'], () =>
    client.mutate({ mutation: UPDATE_LEAD_STATUS, variables: { leadId: lead.leadId, status: 'CONTACTED' } }),
  );
  results.push(data);

  const page = cachedLead();
  assert.equal(page.status, 'CONTACTED');
  assert.equal(page.activitiesCount, 6);
  const [latest] = page.activities;
  assert.deepEqual(
    [latest.id, latest.type, latest.field, latest.oldValue, latest.newValue],
    [`${lead.leadId}:6`, 'STATUS_CHANGED', 'status', 'New', 'Contacted'],
  );
  assert.equal(page.emails.length, 1, 'fields not in the payload are kept');

  // The list's node is the same normalized Lead: it shows the new status too.
  const list = expectRequestsSync(() =>
    client.readQuery({ query: LIST_LEADS, variables: { first: 10, filter: { search: tag } } }),
  );
  assert.equal(list.leads.nodes[0].status, 'CONTACTED');
  assertNoApolloWarnings();
});

test('convertLeadToDeal: deal, organization and contact are cached; the timeline shows the conversion', async () => {
  const { data } = await expectRequests(['ConvertLead'], () =>
    client.mutate({ mutation: CONVERT_LEAD, variables: { leadId: lead.leadId } }),
  );
  results.push(data);
  const { deal } = data.convertLeadToDeal;
  assert.equal(deal.organization.name, `${tag} Corp`);
  assert.equal(deal.contact.email, `${tag.toLowerCase()}@example.com`);

  const page = cachedLead();
  assert.equal(page.status, 'QUALIFIED');
  assert.equal(page.convertedToDeal, true);
  assert.equal(page.deal.id, deal.id);
  assert.equal(page.activitiesCount, 8);
  assert.deepEqual(
    page.activities.slice(0, 2).map((a) => [a.id, a.type]),
    [
      [`${lead.leadId}:8`, 'CONVERTED_TO_DEAL'],
      [`${lead.leadId}:7`, 'STATUS_CHANGED'],
    ],
  );
  assertNoApolloWarnings();
});

test('me: the viewer is an entity too', async () => {
  const { data } = await expectRequests(['Me'], () => client.query({ query: ME }));
  results.push(data);
  assert.equal(data.me.role, 'admin');
  assert.equal(data.me.name, ADMIN_NAME);
});

// ---- live timeline into the same cache ---------------------------------------------------------

test('GraphQLWsLink: a subscription event updates the cached lead page, with no HTTP request', async () => {
  const events = [];
  const subscription = client
    .subscribe({ query: LEAD_ACTIVITY, variables: { leadId: lead.leadId } })
    .subscribe({ next: (result) => events.push(result) });
  try {
    const before = cachedLead().activitiesCount;
    const start = requests.length;
    // Another user adds notes (plain HTTP) until the subscription, once active, hears of one.
    let note;
    for (let attempt = 0; attempt < 20 && events.length === 0; attempt++) {
      note = await post(
        `mutation($leadId: String!) { createNote(leadId: $leadId, input: { content: "live" }) { lead { activitiesCount } } }`,
        { leadId: lead.leadId },
      );
      const deadline = Date.now() + 250;
      while (events.length === 0 && Date.now() < deadline) await sleep(10);
    }
    assert.ok(events.length > 0, 'no subscription event within 20 attempts');
    // The note the subscription heard of may be an earlier one: wait for the last one's event.
    const last = note.createNote.lead.activitiesCount;
    await eventually(
      () => events.at(-1).data?.leadActivity.activity.id === `${lead.leadId}:${last}`,
      () => `the event of the last note: ${JSON.stringify(events)}`,
    );
    const event = events.at(-1);
    results.push(event.data);
    assert.equal(event.error, undefined);
    assert.equal(event.data.leadActivity.activity.type, 'NOTE_ADDED');
    assert.equal(event.data.leadActivity.lead.activitiesCount, last);

    const page = cachedLead();
    assert.ok(last > before);
    assert.equal(page.activitiesCount, last, 'the cached page has the pushed timeline');
    assert.equal(page.activities.length, last);
    assert.equal(page.activities[0].id, event.data.leadActivity.activity.id);
    assert.equal(page.activities[0].description, event.data.leadActivity.activity.description);
    assert.equal(page.activities[0].type, 'NOTE_ADDED');
    assert.equal(requests.length, start, 'Apollo made no HTTP request');
  } finally {
    subscription.unsubscribe();
  }
  assertNoApolloWarnings();
});

/** The first error of a `leadActivity` subscription through GraphQLWsLink, and how it came. */
async function subscriptionError(token, leadId) {
  const ws = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const apollo = apolloClient(token, ws);
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no error within 5 s')), 5000);
      apollo.subscribe({ query: LEAD_ACTIVITY, variables: { leadId } }).subscribe({
        next: (result) => {
          clearTimeout(timer);
          if (result.error) resolve({ via: 'next', error: result.error });
          else reject(new Error(`unexpected data: ${JSON.stringify(result.data)}`));
        },
        error: (error) => {
          clearTimeout(timer);
          resolve({ via: 'error', error });
        },
      });
    });
  } finally {
    apollo.stop();
    await ws.dispose();
  }
}

test('GraphQLWsLink: FORBIDDEN and NOT_FOUND are CombinedGraphQLErrors; a 4403 close a plain Error', async () => {
  // Apollo 4 delivers a subscription's errors as a result ({ error }), not to the error callback.
  const forbidden = await subscriptionError(USER_TOKEN, null);
  assert.equal(forbidden.via, 'next');
  assert.ok(CombinedGraphQLErrors.is(forbidden.error), `got ${forbidden.error}`);
  assert.deepEqual(forbidden.error.errors.map((e) => e.extensions.code), ['FORBIDDEN']);

  const notFound = await subscriptionError(ADMIN_TOKEN, 'LEAD-999999');
  assert.equal(notFound.via, 'next');
  assert.ok(CombinedGraphQLErrors.is(notFound.error), `got ${notFound.error}`);
  assert.deepEqual(notFound.error.errors.map((e) => e.extensions.code), ['NOT_FOUND']);

  // A rejected connection_init (bad or expired token) has no GraphQL error to carry a code:
  // GraphQLWsLink reports the close event as a message only. Apps detect it with graphql-ws's
  // `on: { closed }` (code 4403) instead; see subscription.test.mjs.
  const rejected = await subscriptionError(EXPIRED_TOKEN, null);
  assert.ok(!CombinedGraphQLErrors.is(rejected.error));
  assert.equal(rejected.error.message, 'Socket closed with event 4403 Forbidden');
  assertNoApolloWarnings();
});

test('every object the server returned is normalized as __typename:id', () => {
  const extracted = cache.extract();
  const seen = new Set();
  const notNormalizable = [];
  const visit = (value, path) => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, `${path}[${i}]`));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    // Apollo adds __typename to every selection set but the operation's root (`data`).
    const type = value.__typename ?? (path.includes('.') ? undefined : 'Query');
    // Operation roots, payloads and connection plumbing are containers, not entities.
    const container =
      /^(Query|Mutation|Subscription|PageInfo|LeadActivityEvent)$|(Payload|Connection|Edge)$/.test(type);
    if (!container) {
      seen.add(type);
      const key = cache.identify(value);
      if (!value.id || key !== `${type}:${value.id}` || !(key in extracted)) {
        notNormalizable.push(`${path} (${type}): identify=${key}`);
      }
    }
    for (const [field, child] of Object.entries(value)) visit(child, `${path}.${field}`);
  };
  results.forEach((result, i) => visit(result, `result${i}`));
  assert.deepEqual(notNormalizable, []);
  assert.deepEqual(
    [...seen].sort(),
    ['Activity', 'Call', 'Contact', 'Deal', 'Email', 'Lead', 'Note', 'Organization', 'Task', 'Viewer'],
  );
});

// ---- auth errors as the app sees them ------------------------------------------------------------

test('expired token: the error is CombinedGraphQLErrors with code UNAUTHENTICATED (HTTP 401)', async () => {
  const expired = apolloClient(EXPIRED_TOKEN);
  const start = requests.length;
  const error = await expired.query({ query: ME }).then(
    () => assert.fail('the query succeeded'),
    (e) => e,
  );
  // Apollo 4 sends `Accept: application/graphql-response+json,application/json;q=0.9`; the
  // server answers the 401 in that media type, and for that media type Apollo parses a non-2xx
  // body as a GraphQL response: app code gets CombinedGraphQLErrors (not ServerError), the code
  // in `error.errors[0].extensions.code`. The HTTP status itself is not on the error.
  assert.ok(CombinedGraphQLErrors.is(error), `got ${error?.name}: ${error?.message}`);
  assert.ok(!ServerError.is(error));
  assert.equal(error.errors.length, 1);
  assert.equal(error.errors[0].extensions.code, 'UNAUTHENTICATED');
  assert.match(error.errors[0].message, /expired/i);
  assert.equal(error.data, undefined, 'a 401 carries no data');
  assert.deepEqual(
    requests.slice(start).map((r) => [r.operationName, r.status, r.contentType]),
    [['Me', 401, 'application/graphql-response+json']],
  );
  expired.stop();
});

test('legacy Accept (application/json only): a 401 is a ServerError whose body holds the code', async () => {
  // What a client gets when it pins Accept to application/json (as Apollo 3 did): per the
  // GraphQL-over-HTTP spec a non-2xx application/json response is not a GraphQL response, so
  // Apollo 4 raises ServerError and the code is in the body text.
  const legacy = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({
      uri: GRAPHQL_URL,
      fetch: countingFetch,
      headers: { authorization: `Bearer ${EXPIRED_TOKEN}`, accept: 'application/json' },
    }),
  });
  const start = requests.length;
  const error = await legacy.query({ query: ME }).then(
    () => assert.fail('the query succeeded'),
    (e) => e,
  );
  assert.ok(ServerError.is(error), `got ${error?.name}: ${error?.message}`);
  assert.equal(error.statusCode, 401);
  assert.equal(JSON.parse(error.bodyText).errors[0].extensions.code, 'UNAUTHENTICATED');
  assert.deepEqual(
    requests.slice(start).map((r) => [r.status, r.contentType]),
    [[401, 'application/json']],
  );
  legacy.stop();
});

test('a valid token with a role the server does not know: CombinedGraphQLErrors with code FORBIDDEN', async () => {
  const user = apolloClient(USER_TOKEN);
  const error = await user.query({ query: LIST_LEADS, variables: { first: 1 } }).then(
    () => assert.fail('the query succeeded'),
    (e) => e,
  );
  assert.ok(CombinedGraphQLErrors.is(error), `got ${error?.name}: ${error?.message}`);
  assert.deepEqual(error.errors.map((e) => e.extensions.code), ['FORBIDDEN']);
  // `me` needs any valid token.
  const { data } = await user.query({ query: ME });
  assert.equal(data.me.role, 'guest');
  user.stop();
});

// ---- the schema keeps every entity normalizable ---------------------------------------------------

test('introspection: every entity object type has id: ID!, every payload returns its lead', async () => {
  const { __schema: schema } = await post(getIntrospectionQuery());
  const roots = new Set(
    [schema.queryType, schema.mutationType, schema.subscriptionType].filter(Boolean).map((t) => t.name),
  );
  assert.deepEqual([...roots].sort(), ['Mutation', 'Query', 'Subscription']);
  const types = new Map(schema.types.map((t) => [t.name, t]));
  const isContainer = (name) =>
    roots.has(name) ||
    /(Payload|Connection|Edge)$/.test(name) ||
    // wrappers around an entity (its score, why it was found), never cached on their own
    ['PageInfo', 'LeadActivityEvent', 'LeadSearchHit', 'DuplicateCandidate'].includes(name);
  const entities = schema.types.filter((t) => t.kind === 'OBJECT' && !t.name.startsWith('__') && !isContainer(t.name));

  const withoutId = entities
    .filter((t) => {
      const id = t.fields.find((f) => f.name === 'id');
      return !(id && id.type.kind === 'NON_NULL' && id.type.ofType.kind === 'SCALAR' && id.type.ofType.name === 'ID');
    })
    .map((t) => t.name);
  assert.deepEqual(withoutId, [], 'entity types without a non-null id: ID!');
  // The check covers at least the entities docs/api.md names (a vanished type fails, too).
  const names = entities.map((t) => t.name);
  for (const name of ['Activity', 'Call', 'Contact', 'Deal', 'Email', 'Lead', 'Note', 'Organization', 'Task', 'Viewer']) {
    assert.ok(names.includes(name), `${name} is missing from the schema`);
  }

  // Every mutation of one lead answers with the lead, which is what keeps the cache current.
  const notOfOneLead = new Set([
    'deleteLead', 'assignLeads', 'createApiKey', 'revokeApiKey', 'startImport', 'revertImport',
  ]);
  const unwrap = (type) => (type.ofType ? unwrap(type.ofType) : type);
  const withoutLead = types
    .get('Mutation')
    .fields.filter((field) => !notOfOneLead.has(field.name))
    .filter((field) => {
      const payload = types.get(unwrap(field.type).name);
      const leadField = payload.fields?.find((f) => f.name === 'lead');
      return !(leadField && leadField.type.kind === 'NON_NULL' && unwrap(leadField.type).name === 'Lead');
    })
    .map((field) => field.name);
  assert.deepEqual(withoutLead, [], 'mutations whose payload has no lead: Lead!');
});
