// File upload with Apollo Client 4 and apollo-upload-client's UploadHttpLink (the GraphQL
// multipart request spec) against the live server: startImport with a CSV File, the job's
// progress and report through importJob, the leads it made, and the CSRF guard that refuses a
// multipart request without a preflight header (what a plain browser form would send).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import UploadHttpLink from 'apollo-upload-client/UploadHttpLink.mjs';

import { ADMIN_TOKEN, GRAPHQL_URL, post, uniqueTag } from './support.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const START_IMPORT = gql`
  mutation StartImport($input: StartImportInput!) {
    startImport(input: $input) { id status fileName mode dryRun }
  }
`;
const IMPORT_JOB = gql`
  query ImportJob($id: ID!) {
    importJob(id: $id) {
      id status totalRows processedRows created updated unchanged failed unknownColumns
    }
  }
`;
const IMPORT_ERRORS = gql`
  query ImportErrors($id: ID!) {
    importJob(id: $id) {
      id
      errors(first: 10) { totalCount nodes { row column field code message value } }
    }
  }
`;

function client() {
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: new UploadHttpLink({
      uri: GRAPHQL_URL,
      // Apollo Server's CSRF rule, which this server applies to multipart requests too.
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'apollo-require-preflight': 'true' },
    }),
  });
}

test('startImport uploads a CSV through UploadHttpLink and the job reports every row', async () => {
  const tag = uniqueTag('up');
  const csv = [
    'First Name,E-mail,Company,Shoe Size',
    `Ana${tag},ana.${tag}@example.com,Acme,38`,
    `Ben${tag},not-an-email,Beta,44`,
    `Cleo${tag},cleo.${tag}@example.com,Gamma,40`,
  ].join('\r\n');
  const file = new File([csv], `${tag}.csv`, { type: 'text/csv' });
  const apollo = client();

  const { data } = await apollo.mutate({ mutation: START_IMPORT, variables: { input: { file } } });
  const job = data.startImport;
  assert.equal(job.fileName, `${tag}.csv`);
  assert.equal(job.mode, 'CREATE');
  assert.equal(job.dryRun, false);

  let report;
  const deadline = Date.now() + 15000;
  do {
    assert.ok(Date.now() < deadline, `import did not finish: ${JSON.stringify(report)}`);
    await sleep(50);
    ({ data: { importJob: report } } = await apollo.query({
      query: IMPORT_JOB,
      variables: { id: job.id },
      fetchPolicy: 'network-only',
    }));
  } while (report.status !== 'COMPLETED' && report.status !== 'FAILED');

  assert.equal(report.status, 'COMPLETED');
  assert.deepEqual(
    [report.totalRows, report.processedRows, report.created, report.failed],
    [3, 3, 2, 1],
  );
  assert.deepEqual(report.unknownColumns, ['Shoe Size']);

  const errors = await apollo.query({
    query: IMPORT_ERRORS,
    variables: { id: job.id },
    fetchPolicy: 'network-only',
  });
  const { totalCount, nodes } = errors.data.importJob.errors;
  assert.equal(totalCount, 1);
  assert.equal(nodes[0].row, 3);
  assert.equal(nodes[0].column, 'E-mail');
  assert.equal(nodes[0].field, 'email');
  assert.equal(nodes[0].code, 'BAD_USER_INPUT');
  assert.equal(nodes[0].value, 'not-an-email');

  const leads = await post(
    'query($search: String) { leads(first: 10, filter: {search: $search}) { nodes { firstName organization } } }',
    { search: tag },
  );
  assert.deepEqual(
    leads.leads.nodes.map((lead) => lead.firstName).sort(),
    [`Ana${tag}`, `Cleo${tag}`],
  );
});

test('a multipart request without a preflight header is refused (CSRF)', async () => {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({ query: 'mutation($f: Upload!) { startImport(input: {file: $f}) { id } }', variables: { f: null } }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new File(['firstName\nX\n'], 'x.csv'));
  const response = await fetch(GRAPHQL_URL, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body: form,
  });
  assert.equal(response.status, 400);
  const body = await response.json();
  assert.equal(body.errors[0].extensions.code, 'BAD_REQUEST');
  assert.match(body.errors[0].message, /Apollo-Require-Preflight/);
});
