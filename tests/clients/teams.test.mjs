// Teams (README "Teams") as a sales rep's Apollo Client 4 sees them: the cached lead list holds
// only the rep's own leads, and when a manager assigns one of them to someone else the rep's
// live timeline (GraphQLWsLink) carries the ASSIGNED entry whose payload (`lead.leadOwnerId`)
// lets the cache evict that lead: the cached list never shows another owner's lead, before
// or after a refetch.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { GRAPHQL_URL, SALES_SUB, SALES_TOKEN, WS_URL, post, uniqueTag } from './support.mjs';

globalThis.WebSocket ??= WebSocket;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const MY_LEADS = gql`
  query MyLeads($search: String) {
    leads(first: 50, filter: { search: $search }) {
      totalCount
      nodes { id leadId firstName leadOwnerId }
    }
  }
`;
const MY_ACTIVITY = gql`
  subscription MyActivity {
    leadActivity {
      lead { id leadId leadOwnerId }
      activity { id type oldValue newValue }
    }
  }
`;

const ws = createClient({
  url: WS_URL,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${SALES_TOKEN}` },
});
const http = new HttpLink({ uri: GRAPHQL_URL, headers: { authorization: `Bearer ${SALES_TOKEN}` } });
const rep = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(ws),
    http,
  ),
});

after(async () => {
  rep.stop();
  await ws.dispose();
});

/** A lead made by an admin (plain HTTP) for `ownerId`. */
async function leadFor(ownerId, firstName) {
  const data = await post(
    `mutation($input: CreateLeadInput!, $owner: String) {
       createLead(input: $input, ownerId: $owner) { lead { id leadId leadOwnerId } } }`,
    { input: { firstName, leadOwner: ownerId === SALES_SUB ? 'Sales Rep' : 'Someone Else' }, owner: ownerId },
  );
  return data.createLead.lead;
}

function cachedList(search) {
  return rep.readQuery({ query: MY_LEADS, variables: { search } })?.leads.nodes.map((n) => n.leadId);
}

test("a sales rep's cached list drops a lead as soon as it is assigned away", async () => {
  const tag = uniqueTag('Team');
  const kept = await leadFor(SALES_SUB, `${tag}Kept`);
  const moved = await leadFor(SALES_SUB, `${tag}Moved`);
  const foreign = await leadFor('client-tests-someone-else', `${tag}Foreign`);

  // The rep's list: their two leads, never the other owner's.
  const { data } = await rep.query({ query: MY_LEADS, variables: { search: tag } });
  assert.deepEqual(data.leads.nodes.map((n) => n.leadId).sort(), [kept.leadId, moved.leadId].sort());
  assert.ok(!cachedList(tag).includes(foreign.leadId));

  // The rep's live timeline: an ASSIGNED entry that takes a lead away from them evicts it.
  const events = [];
  const subscription = rep.subscribe({ query: MY_ACTIVITY }).subscribe({
    next: ({ data: event, error }) => {
      assert.equal(error, undefined);
      events.push(event.leadActivity);
      const { lead, activity } = event.leadActivity;
      if (activity.type === 'ASSIGNED' && lead.leadOwnerId !== SALES_SUB) {
        rep.cache.evict({ id: rep.cache.identify(lead) });
        rep.cache.gc();
      }
    },
  });
  try {
    // Wait until the subscription is live: a note on the rep's own lead comes back.
    for (let attempt = 0; attempt < 40 && events.length === 0; attempt++) {
      await post(`mutation($id: String!) { createNote(leadId: $id, input: { content: "ping" }) { lead { id } } }`, {
        id: kept.leadId,
      });
      await sleep(100);
    }
    assert.ok(events.length > 0, 'the subscription never became active');

    // A manager (here the admin) assigns one of the rep's leads to someone else.
    const assigned = await post(
      `mutation($id: String!) {
         assignLead(leadId: $id, ownerId: "client-tests-someone-else", ownerName: "Someone Else") {
           lead { id leadOwnerId activities { type oldValue newValue } } } }`,
      { id: moved.leadId },
    );
    const entry = assigned.assignLead.lead.activities[0];
    assert.deepEqual(entry, { type: 'ASSIGNED', oldValue: SALES_SUB, newValue: 'client-tests-someone-else' });

    const deadline = Date.now() + 3000;
    while (!events.some((e) => e.activity.type === 'ASSIGNED') && Date.now() < deadline) await sleep(20);
    const event = events.find((e) => e.activity.type === 'ASSIGNED');
    assert.ok(event, `no ASSIGNED event: ${JSON.stringify(events)}`);
    assert.equal(event.lead.leadId, moved.leadId);
    assert.equal(event.activity.oldValue, SALES_SUB);

    // From the cache alone, then from the server: only the lead the rep still owns.
    assert.deepEqual(cachedList(tag), [kept.leadId]);
    const refetched = await rep.query({ query: MY_LEADS, variables: { search: tag }, fetchPolicy: 'network-only' });
    assert.deepEqual(refetched.data.leads.nodes.map((n) => n.leadId), [kept.leadId]);
    assert.equal(refetched.data.leads.totalCount, 1);

    // Later events of the moved lead never reach the rep.
    const seen = events.length;
    await post(`mutation($id: String!) { createNote(leadId: $id, input: { content: "after" }) { lead { id } } }`, {
      id: moved.leadId,
    });
    await sleep(300);
    assert.ok(events.slice(seen).every((e) => e.lead.leadId !== moved.leadId));
    assert.deepEqual(cachedList(tag), [kept.leadId]);
  } finally {
    subscription.unsubscribe();
  }
});
