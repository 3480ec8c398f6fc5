// The authorisation matrix (issue 11): every route of the app × {anonymous guest, customer A,
// customer B, staff}, each with a valid-shaped request, against the one access table in
// access.ts. The route list is read from the running app, so a new route that the table does not
// classify fails here. Also checked on every answer: refusals in the contract's shapes, personal
// routes marked private for caches, and none of A's data in an answer to the guest or to B.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../helpers/app.ts';
import { openTestDatabase } from '../helpers/db.ts';
import { ACCESS, CALLERS, EXPECTED, documentedRoutes, isPersonal, routeKey, routerEntries, setUp, type Ctx, type Reply, type Rule } from './access.ts';
import { reportRow } from './report.ts';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let app: FastifyInstance;
let ctx: Ctx;

before(async () => {
  database = await openTestDatabase('pglite');
  app = await testApp(database);
  ctx = await setUp(app, database);
});

after(async () => {
  await app?.close();
  await database?.drop();
});

const table = new Map<string, { key: string; rule: Rule }>(Object.entries(ACCESS).map(([key, rule]) => {
  const [method, path] = key.split(' ');
  return [routeKey(method!, path!), { key, rule }];
}));

/** The contract's refusal bodies (§1.3, §1.6): wrapped, or the ad-hoc `{"error": …}` some routes use. */
function refusalShapeProblem(status: number, r: Reply): string | undefined {
  const body = r.body as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object') return `no JSON body`;
  if (status === 401) {
    if (body.error !== true || body.status_code !== 401 || typeof body.message !== 'string') return `401 body ${r.raw}`;
    if (r.headers['www-authenticate'] !== 'Bearer realm="api"') return '401 without WWW-Authenticate: Bearer realm="api"';
  }
  if (status === 403 && !(body.error === true && body.status_code === 403) && body.error !== 'Permission denied') return `403 body ${r.raw}`;
  if (status === 404 && !(body.error === true && body.status_code === 404) && typeof body.error !== 'string') return `404 body ${r.raw}`;
  return undefined;
}

function cacheHeaderProblem(r: Reply): string | undefined {
  const cc = String(r.headers['cache-control'] ?? '');
  if (!/\b(private|no-store)\b/.test(cc)) return `Cache-Control "${cc}" on a personal route`;
  const vary = String(r.headers.vary ?? '').toLowerCase();
  if (!vary.includes('authorization') || !vary.includes('cookie')) return `Vary "${r.headers.vary ?? ''}" lacks Authorization/Cookie`;
  return undefined;
}

test('the access table classifies every route the app serves, and only those', async () => {
  const documented = documentedRoutes(app);
  const missingFromTable = documented.filter((k) => !table.has(k));
  assert.deepEqual(missingFromTable, [], 'documented routes the access table does not classify');

  // The router also holds hidden routes (pages, docs, metrics) and the 405 answers for a known
  // path's other methods. Anything unclassified must be one of those 405s.
  const served = new Set<string>();
  const unclassified: string[] = [];
  for (const { method, path } of routerEntries(app)) {
    const key = routeKey(method, path);
    if (table.has(key)) {
      served.add(key);
      continue;
    }
    const url = path.replace(/:\w+/g, '1').replace(/\*$/, 'x');
    const r = await app.inject({ method: method as 'GET', url: url.endsWith('/') || url.includes('.') ? url : `${url}/` });
    if (r.statusCode !== 405) unclassified.push(`${key} (answered ${r.statusCode})`);
  }
  assert.deepEqual(unclassified, [], 'routes the access table does not classify: add them to ACCESS in test/chaos/access.ts');
  const stale = [...table.entries()].filter(([k]) => !served.has(k)).map(([, { key }]) => key);
  assert.deepEqual(stale, [], 'lines in the access table for routes that do not exist');
});

test('every route × {anonymous, customer A, customer B, staff} gets in or is refused as the table says', async () => {
  const problems: string[] = [];
  let requests = 0;
  let serverErrors = 0;
  let checks = 0;
  for (const [key, rule] of Object.entries(ACCESS)) {
    const [method, path] = key.split(' ') as [string, string];
    for (const who of CALLERS) {
      const caller = ctx.callers[who];
      const req = await rule.req?.(ctx, caller) ?? {};
      const r = await ctx.call(who, method, req.url ?? path, req);
      requests++;
      if (r.status >= 500 && !rule.ok?.includes(r.status)) serverErrors++;
      const expected = EXPECTED[rule.access][who];
      const where = `${key} as ${who}: ${r.status}`;
      checks++;
      if (expected === 'in') {
        if (!(r.status < 400 || rule.ok?.includes(r.status))) problems.push(`${where}, expected to get in — ${r.raw.slice(0, 200)}`);
      } else if (r.status !== expected) {
        problems.push(`${where}, expected ${expected} — ${r.raw.slice(0, 200)}`);
      } else {
        const shape = refusalShapeProblem(r.status, r);
        if (shape) problems.push(`${where}: ${shape}`);
      }
      // Personal answers, refusals included, are private to caches and vary by who asks.
      if (isPersonal(rule.access)) {
        checks++;
        const cache = cacheHeaderProblem(r);
        if (cache) problems.push(`${where}: ${cache}`);
      }
      // A's own strings never reach the guest or B.
      if (who === 'anonymous' || who === 'b') {
        checks++;
        const leaked = ctx.fx.secretsOfA.filter((s) => r.raw.includes(s));
        if (leaked.length) problems.push(`${where}: answer holds A's ${leaked.join(', ')}`);
      }
    }
  }
  reportRow({ suite: 'authorisation', scenario: `${Object.keys(ACCESS).length} routes × 4 callers (guest, customer A, customer B, staff)`, requests, serverErrors, checks, checksPassed: checks - problems.length });
  assert.deepEqual(problems, []);
});
