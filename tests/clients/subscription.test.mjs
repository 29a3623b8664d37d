// The live timeline with the real graphql-ws client: `leadActivity` over graphql-transport-ws,
// authenticated by the connection_init payload. Every mutation that writes a lead's timeline
// is sent over HTTP (plain fetch), and its entries must reach the subscribers within a second.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';

import { CloseCode, createClient } from 'graphql-ws';
import WebSocket from 'ws';

import {
  ADMIN_NAME,
  ADMIN_TOKEN,
  EXPIRED_TOKEN,
  USER_TOKEN,
  WS_URL,
  median,
  post,
  postForBody,
  tokenValidFor,
  uniqueTag,
} from './support.mjs';

const MAX_LATENCY_MS = 1000;

const LEAD_ACTIVITY = `
  subscription LeadActivity($leadId: String) {
    leadActivity(leadId: $leadId) {
      lead { id leadId status activitiesCount convertedToDeal }
      activity { id type description by timestamp field oldValue newValue }
    }
  }
`;

// What each mutation asks back: the lead's timeline as the write left it (newest first).
const TIMELINE = 'lead { id leadId status activitiesCount activities { id type description by timestamp field oldValue newValue } }';

const MUTATIONS = {
  createLead: `mutation($input: CreateLeadInput!) { createLead(input: $input) { ${TIMELINE} } }`,
  updateLead: `mutation($leadId: String!, $input: UpdateLeadInput!) { updateLead(leadId: $leadId, input: $input) { ${TIMELINE} } }`,
  updateLeadStatus: `mutation($leadId: String!, $status: LeadStatus!) { updateLeadStatus(leadId: $leadId, status: $status) { ${TIMELINE} } }`,
  sendEmail: `mutation($leadId: String!, $input: SendEmailInput!) { sendEmail(leadId: $leadId, input: $input) { email { id } ${TIMELINE} } }`,
  logCall: `mutation($leadId: String!, $input: LogCallInput!) { logCall(leadId: $leadId, input: $input) { call { id } ${TIMELINE} } }`,
  createTask: `mutation($leadId: String!, $input: CreateTaskInput!) { createTask(leadId: $leadId, input: $input) { task { id } ${TIMELINE} } }`,
  updateTask: `mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { task { id } ${TIMELINE} } }`,
  createNote: `mutation($leadId: String!, $input: CreateNoteInput!) { createNote(leadId: $leadId, input: $input) { note { id } ${TIMELINE} } }`,
  convertLeadToDeal: `mutation($leadId: String!) { convertLeadToDeal(leadId: $leadId) { deal { id } ${TIMELINE} } }`,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function wsClient(connectionParams, options = {}) {
  return createClient({ url: WS_URL, webSocketImpl: WebSocket, connectionParams, ...options });
}

const bearer = (token) => ({ Authorization: `Bearer ${token}` });

/** One `leadActivity` subscription: what it received, when, and how it ended. */
class LeadActivity {
  constructor(client, variables = {}) {
    this.events = []; // { lead, activity, at } in arrival order; `at` from performance.now()
    this.errors = []; // GraphQL errors (from `error` or an errors-only `next`), or a CloseEvent
    this.completed = false;
    this.listeners = new Set();
    this.unsubscribe = client.subscribe(
      { query: LEAD_ACTIVITY, variables },
      {
        next: (result) => {
          const at = performance.now();
          if (result.errors) this.errors.push(...result.errors);
          if (result.data) this.events.push({ ...result.data.leadActivity, at });
          this.changed();
        },
        error: (error) => {
          this.errors.push(...(Array.isArray(error) ? error : [error]));
          this.changed();
        },
        complete: () => {
          this.completed = true;
          this.changed();
        },
      },
    );
  }

  changed() {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves when the subscription has ended (error or complete), or after `timeout` ms. */
  ended(timeout) {
    return this.until(() => this.completed || this.errors.length > 0, timeout).catch(() => false);
  }

  /** The first event matching `predicate`; rejects after `timeout` ms or when the stream ends. */
  waitFor(predicate, timeout, what) {
    return this.until(() => {
      const event = this.events.find(predicate);
      if (event) return event;
      if (this.completed || this.errors.length) {
        throw new Error(`${what}: the subscription ended: ${JSON.stringify(this.errors)}`);
      }
      return undefined;
    }, timeout).catch((error) => {
      throw error === 'timeout'
        ? new Error(`${what}: no event within ${timeout} ms; got ${this.events.map((e) => e.activity.id)}`)
        : error;
    });
  }

  until(check, timeout) {
    return new Promise((resolve, reject) => {
      const listener = () => {
        let value;
        try {
          value = check();
        } catch (error) {
          stop();
          reject(error);
          return;
        }
        if (value) {
          stop();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        stop();
        reject('timeout');
      }, timeout);
      const stop = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
      listener();
    });
  }
}

/**
 * graphql-ws has no "subscribed" acknowledgement: repeat a write (`poke`) until the subscription
 * hears of one (`isPoke`), so the writes under test cannot race its start.
 */
async function untilActive(subscription, poke, isPoke) {
  for (let attempt = 0; attempt < 20; attempt++) {
    await poke();
    try {
      return await subscription.waitFor(isPoke, 250, 'warm-up');
    } catch (error) {
      if (subscription.errors.length || subscription.completed) throw error;
    }
  }
  throw new Error('the subscription never received an event');
}

/** The codes of a subscription's GraphQL errors. */
const codes = (subscription) => subscription.errors.map((e) => e?.extensions?.code ?? `not a GraphQL error: ${e}`);

test('every timeline write reaches leadActivity subscribers within a second', { timeout: 60_000 }, async () => {
  const client = wsClient(bearer(ADMIN_TOKEN));
  const tag = uniqueTag('Ws');
  const ours = new Set(); // lead ids this test created
  const latencies = []; // event arrival minus HTTP response, per event on the lead's subscription
  try {
    // All leads: the only way to hear of a createLead.
    const all = new LeadActivity(client);
    await untilActive(
      all,
      async () => {
        const { createLead } = await post(MUTATIONS.createLead, { input: { firstName: 'Warm', lastName: tag } });
        ours.add(createLead.lead.leadId);
      },
      (event) => ours.has(event.lead.leadId),
    );

    let lead; // the lead under test: { leadId, count } (count: its entries so far)
    let one; // the subscription to that lead only

    /**
     * Send a mutation over HTTP; check that its new entries (as its payload shows them) arrive,
     * with the lead, on `all` and (once subscribed) on `one`, within MAX_LATENCY_MS.
     */
    async function expectWrite(name, variables, expectedTypes) {
      const data = await post(MUTATIONS[name], variables);
      const received = performance.now();
      const written = data[name].lead;
      lead ??= { leadId: written.leadId, count: 0 };
      assert.equal(written.leadId, lead.leadId);
      const added = written.activitiesCount - lead.count;
      assert.deepEqual(
        written.activities.slice(0, added).reverse().map((a) => a.type),
        expectedTypes,
        `${name} wrote other entries than expected`,
      );
      for (const entry of written.activities.slice(0, added).reverse()) {
        for (const subscription of one ? [one, all] : [all]) {
          const event = await subscription.waitFor((e) => e.activity.id === entry.id, 3 * MAX_LATENCY_MS, `${name} ${entry.id}`);
          const { at, ...pushed } = event;
          assert.deepEqual(pushed.activity, entry, `${name}: the pushed entry is the one written`);
          assert.equal(pushed.activity.by, ADMIN_NAME);
          assert.deepEqual(
            [pushed.lead.id, pushed.lead.leadId, pushed.lead.status, pushed.lead.activitiesCount],
            [written.id, written.leadId, written.status, written.activitiesCount],
            `${name}: the event's lead is the lead as written`,
          );
          const latency = at - received;
          assert.ok(latency <= MAX_LATENCY_MS, `${name}: ${entry.id} arrived ${latency.toFixed(0)} ms after the response`);
          if (subscription === one || !one) latencies.push({ name, latency });
        }
      }
      lead.count = written.activitiesCount;
      return data[name];
    }

    await expectWrite(
      'createLead',
      {
        input: {
          firstName: 'Grace',
          lastName: tag,
          email: `${tag.toLowerCase()}@example.com`,
          mobile: '+44 20 7946 0000',
          organization: `${tag} Ltd`,
        },
      },
      ['CREATED'],
    );
    ours.add(lead.leadId);

    one = new LeadActivity(client, { leadId: lead.leadId });
    await untilActive(
      one,
      // "Status confirmed as New": updateLeadStatus always writes an entry.
      async () => {
        const { updateLeadStatus } = await post(MUTATIONS.updateLeadStatus, { leadId: lead.leadId, status: 'NEW' });
        lead.count = updateLeadStatus.lead.activitiesCount;
      },
      (event) => event.lead.leadId === lead.leadId,
    );
    const firstSeen = Math.min(...one.events.map((e) => Number(e.activity.id.split(':')[1])));

    // Another lead's writes, interleaved: they reach `all`, never `one`.
    const { createLead: other } = await post(MUTATIONS.createLead, { input: { firstName: 'Other', lastName: tag } });
    ours.add(other.lead.leadId);

    await expectWrite('updateLead', { leadId: lead.leadId, input: { jobTitle: 'CTO', website: 'https://example.com' } }, [
      'UPDATED',
      'UPDATED',
    ]);
    await expectWrite('updateLeadStatus', { leadId: lead.leadId, status: 'CONTACTED' }, ['STATUS_CHANGED']);
    await post(MUTATIONS.createNote, { leadId: other.lead.leadId, input: { content: 'not for the other lead' } });
    await expectWrite('sendEmail', { leadId: lead.leadId, input: { subject: 'Hello', body: 'Nice to meet you' } }, [
      'EMAIL_SENT',
    ]);
    await expectWrite('logCall', { leadId: lead.leadId, input: { duration: 60, type: 'INBOUND' } }, ['CALL_LOGGED']);
    const { task } = await expectWrite('createTask', { leadId: lead.leadId, input: { title: 'Send the proposal' } }, [
      'TASK_CREATED',
    ]);
    await post(MUTATIONS.updateLeadStatus, { leadId: other.lead.leadId, status: 'JUNK' });
    await expectWrite('updateTask', { id: task.id, input: { status: 'DONE', priority: 'HIGH' } }, ['TASK_UPDATED']);
    await expectWrite('createNote', { leadId: lead.leadId, input: { title: 'Call notes', content: 'Wants a demo' } }, [
      'NOTE_ADDED',
    ]);
    await expectWrite('convertLeadToDeal', { leadId: lead.leadId }, ['STATUS_CHANGED', 'CONVERTED_TO_DEAL']);
    const final = one.events.find((e) => e.activity.type === 'CONVERTED_TO_DEAL');
    assert.deepEqual([final.lead.status, final.lead.convertedToDeal], ['QUALIFIED', true]);

    // The other lead's entries were published (`all` has them) ...
    await all.waitFor((e) => e.lead.leadId === other.lead.leadId && e.activity.type === 'STATUS_CHANGED', 3 * MAX_LATENCY_MS, 'other lead');
    await sleep(100); // ... and anything stray would have arrived by now.
    assert.ok(all.events.some((e) => e.lead.leadId === other.lead.leadId && e.activity.type === 'NOTE_ADDED'));
    // ... but `one` only ever got its own lead's, each entry once, none missing.
    assert.deepEqual([...new Set(one.events.map((e) => e.lead.leadId))], [lead.leadId]);
    const numbers = (events) => events.filter((e) => e.lead.leadId === lead.leadId).map((e) => Number(e.activity.id.split(':')[1]));
    const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    assert.deepEqual(numbers(one.events), range(firstSeen, lead.count));
    assert.deepEqual(numbers(all.events), range(1, lead.count), 'the all-leads subscription got every entry once');
    assert.deepEqual(one.errors, []);
    assert.deepEqual(all.errors, []);

    const values = latencies.map((l) => l.latency);
    const after = values.map((v) => Math.max(0, v));
    console.log(
      `leadActivity latency after the mutation's HTTP response, ${values.length} events: ` +
        `max ${Math.max(...after).toFixed(1)} ms, median ${median(after).toFixed(1)} ms ` +
        `(${values.filter((v) => v < 0).length} arrived before the response; raw range ` +
        `${Math.min(...values).toFixed(1)} … ${Math.max(...values).toFixed(1)} ms)`,
    );
    one.unsubscribe();
    all.unsubscribe();
  } finally {
    await client.dispose();
  }
});

test('a bad, expired or missing token: the server closes the socket with 4403', { timeout: 20_000 }, async () => {
  const cases = {
    expired: bearer(EXPIRED_TOKEN),
    'not a JWT': bearer('not-a-jwt'),
    'no Authorization': {},
  };
  for (const [name, connectionParams] of Object.entries(cases)) {
    const closes = [];
    let connected = false;
    // graphql-ws retries a 4403 by default (it may mean "refresh the token"): not here.
    const client = wsClient(connectionParams, {
      retryAttempts: 0,
      on: { closed: (event) => closes.push(event.code), connected: () => (connected = true) },
    });
    try {
      const subscription = new LeadActivity(client);
      await subscription.ended(5000);
      assert.equal(subscription.errors.length, 1, `${name}: ${subscription.errors}`);
      assert.equal(subscription.errors[0].code, CloseCode.Forbidden, `${name}: the error sink gets the CloseEvent`);
      assert.deepEqual(closes, [4403], name);
      assert.equal(connected, false, `${name}: the connection was acknowledged`);
      assert.deepEqual(subscription.events, []);
    } finally {
      await client.dispose();
    }
  }
});

test('a connectionParams function gets a fresh token when graphql-ws retries after a 4403', { timeout: 20_000 }, async () => {
  const tokens = [EXPIRED_TOKEN, ADMIN_TOKEN];
  const closes = [];
  const client = wsClient(async () => bearer(tokens.shift()), {
    retryAttempts: 1,
    retryWait: async () => {},
    on: { closed: (event) => closes.push(event.code) },
  });
  try {
    // NOT_FOUND needs an admin's connection: the retried connection is the authenticated one.
    const subscription = new LeadActivity(client, { leadId: 'LEAD-999999' });
    await subscription.ended(5000);
    assert.deepEqual(codes(subscription), ['NOT_FOUND']);
    assert.equal(closes[0], 4403);
    assert.deepEqual(tokens, []);
  } finally {
    await client.dispose();
  }
});

test('a valid token with an unknown role connects, but subscribing is FORBIDDEN', { timeout: 20_000 }, async () => {
  let connected = false;
  const client = wsClient(bearer(USER_TOKEN), { retryAttempts: 0, on: { connected: () => (connected = true) } });
  try {
    const subscription = new LeadActivity(client);
    await subscription.ended(5000);
    assert.equal(connected, true, 'the connection itself is accepted (the role rule is per operation)');
    assert.deepEqual(codes(subscription), ['FORBIDDEN']);
    assert.deepEqual(subscription.events, []);
  } finally {
    await client.dispose();
  }
});

test('an unknown leadId is NOT_FOUND', { timeout: 20_000 }, async () => {
  const client = wsClient(bearer(ADMIN_TOKEN), { retryAttempts: 0 });
  try {
    const subscription = new LeadActivity(client, { leadId: 'LEAD-999999' });
    await subscription.ended(5000);
    assert.deepEqual(codes(subscription), ['NOT_FOUND']);
    assert.deepEqual(subscription.events, []);
  } finally {
    await client.dispose();
  }
});

/** One query or mutation over the socket: its results, and its error (GraphQL errors or a CloseEvent). */
function overSocket(client, query, variables = {}) {
  return new Promise((resolve) => {
    const results = [];
    client.subscribe(
      { query, variables },
      {
        next: (result) => results.push(result),
        error: (error) => resolve({ results, error }),
        complete: () => resolve({ results, error: undefined }),
      },
    );
  });
}

/** Resolves once `check()` is true; rejects after `timeout` ms. */
async function eventually(check, timeout, what) {
  const deadline = performance.now() + timeout;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await sleep(20);
  }
}

test('queries and mutations over the socket: fresh data each time, the errors HTTP gives', { timeout: 30_000 }, async () => {
  // Not lazy: every operation below runs on one socket (a lazy client closes it when idle).
  const client = wsClient(bearer(ADMIN_TOKEN), { lazy: false, retryAttempts: 0 });
  let sockets = 0;
  client.on('connected', () => sockets++);
  const data = async (query, variables) => {
    const { results, error } = await overSocket(client, query, variables);
    assert.equal(error, undefined, JSON.stringify(error));
    assert.equal(results.length, 1);
    assert.equal(results[0].errors, undefined, JSON.stringify(results[0].errors));
    return results[0].data;
  };
  try {
    // Each operation has loaders of its own: none serves what an earlier one cached.
    const lastName = uniqueTag('Socket');
    const input = { firstName: 'Ada', lastName, email: `${lastName.toLowerCase()}@example.com` };
    const { createLead } = await data(MUTATIONS.createLead, { input });
    const leadId = createLead.lead.leadId;
    const EMAILS = 'query($leadId: String!) { lead(leadId: $leadId) { emails { subject } } }';
    const SEND = 'mutation($leadId: String!) { sendEmail(leadId: $leadId, input: {subject: "Hi", body: "Hello"}) { lead { emails { subject } } } }';
    assert.deepEqual(await data(EMAILS, { leadId }), { lead: { emails: [] } });
    const { sendEmail } = await data(SEND, { leadId });
    assert.deepEqual(sendEmail.lead.emails, [{ subject: 'Hi' }], 'the mutation sees its own write');
    assert.deepEqual(await data(EMAILS, { leadId }), { lead: { emails: [{ subject: 'Hi' }] } });

    // The same errors as over HTTP (codes, limits), and each answers its operation only.
    const cases = {
      'unknown field': ['{ nope }', 'GRAPHQL_VALIDATION_FAILED'],
      'syntax error': ['{ me { id }', 'GRAPHQL_PARSE_FAILED'],
      'depth 11': [`{ me { ${'f { '.repeat(9)}id${' }'.repeat(10)} }`, 'BAD_USER_INPUT'],
      '31 aliases': [`{ ${Array.from({ length: 31 }, (_, i) => `a${i}: me { id }`).join(' ')} }`, 'BAD_USER_INPUT'],
      '2001 tokens': [`{ leads(filter: {status: [${Array(1985).fill('NEW').join(' ')}]}) { totalCount } }`, 'BAD_USER_INPUT'],
      'unknown lead': ['{ lead(leadId: "LEAD-999999") { id } }', 'NOT_FOUND'],
    };
    for (const [name, [query, code]] of Object.entries(cases)) {
      const overHttp = await postForBody(query);
      const { results, error } = await overSocket(client, query);
      const overWs = error === undefined ? results[0] : { errors: error };
      assert.deepEqual(overWs, overHttp, name);
      assert.deepEqual(overWs.errors.map((e) => e.extensions.code), [code], name);
    }
    assert.deepEqual(await data('{ me { id } }'), { me: { id: 'client-tests-admin' } });
    assert.equal(sockets, 1, 'all on one socket, none closed by an error');
  } finally {
    await client.dispose();
  }
});

test('a token that expires on an open socket: UNAUTHENTICATED, then a 4403 close', { timeout: 30_000 }, async () => {
  const { token, acceptedUntil } = tokenValidFor(5);
  const tag = uniqueTag('Expiring');
  const closes = { listener: [], caller: [] };
  // Not lazy: the socket stays open between operations (a lazy client closes it when idle).
  const connect = (name) =>
    wsClient(bearer(token), {
      lazy: false,
      onNonLazyError: () => {}, // the 4403 is asserted below, not printed
      retryAttempts: 0,
      on: { closed: (event) => closes[name].push(event.code) },
    });
  const listener = connect('listener');
  const caller = connect('caller');
  try {
    const ours = new Set();
    const all = new LeadActivity(listener);
    await untilActive(
      all,
      async () => {
        const { createLead } = await post(MUTATIONS.createLead, { input: { firstName: 'Warm', lastName: tag } });
        ours.add(createLead.lead.leadId);
      },
      (event) => ours.has(event.lead.leadId),
    );
    const before = await overSocket(caller, '{ me { id } }');
    assert.deepEqual(before, { results: [{ data: { me: { id: 'client-tests-admin' } } }], error: undefined });
    assert.ok(Date.now() < acceptedUntil, 'the warm-up took longer than the token lives');

    await sleep(acceptedUntil - Date.now() + 300);
    // A mutation after the expiry: UNAUTHENTICATED, nothing written, and the socket is closed.
    const late = await overSocket(caller, MUTATIONS.createLead, { input: { firstName: 'Late', lastName: tag } });
    assert.deepEqual(late.results, []);
    assert.deepEqual(late.error, [{ message: 'Token has expired', extensions: { code: 'UNAUTHENTICATED' } }]);
    await eventually(() => closes.caller.length > 0, 2000, 'the caller socket closed');
    assert.deepEqual(closes.caller, [CloseCode.Forbidden]);

    // A subscription hears of the expiry at its next event; then its socket is closed too.
    await post(MUTATIONS.createLead, { input: { firstName: 'After', lastName: tag } });
    assert.ok(await all.ended(3000), 'the subscription ended');
    assert.deepEqual(codes(all), ['UNAUTHENTICATED']);
    await eventually(() => closes.listener.length > 0, 2000, 'the listener socket closed');
    assert.deepEqual(closes.listener, [CloseCode.Forbidden]);

    const { leads } = await post('query($search: String) { leads(filter: {search: $search}) { nodes { firstName } } }', { search: tag });
    assert.deepEqual(leads.nodes.map((lead) => lead.firstName).sort(), ['After', ...Array(ours.size).fill('Warm')].sort());
  } finally {
    await Promise.all([listener.dispose(), caller.dispose()]);
  }
});
