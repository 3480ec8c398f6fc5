// Runs every test file with Node's test runner (TypeScript through tsx) and ends with the
// line CI reads: "N passed, N failed[, N skipped]". Pass file or folder paths to run only those
// (`npm run test:chaos` passes test/chaos). When the chaos suite ran, its table comes before
// that line: one row per scenario with the requests sent, the 5xx seen and the data checks held.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

const files = process.argv.length > 2 ? process.argv.slice(2).flatMap((p) => (statSync(p).isDirectory() ? find(p).sort() : [p])) : find('test').sort();
const tap = join(tmpdir(), `pasargad-tests-${process.pid}.tap`);
const chaos = join(tmpdir(), `pasargad-chaos-${process.pid}.jsonl`);
const args = [
  '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...files,
];
const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', CHAOS_REPORT: chaos } });

function chaosTable() {
  if (!existsSync(chaos)) return;
  const rows = readFileSync(chaos, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  rmSync(chaos, { force: true });
  rows.sort((a, b) => a.suite.localeCompare(b.suite));
  const sum = (k) => rows.reduce((n, r) => n + r[k], 0);
  console.log(['', '| suite | scenario | requests | 5xx | data checks held |', '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.suite} | ${r.scenario} | ${r.requests} | ${r.serverErrors} | ${r.checksPassed}/${r.checks} |`),
    `| **all** | ${rows.length} scenarios | ${sum('requests')} | ${sum('serverErrors')} | ${sum('checksPassed')}/${sum('checks')} |`, ''].join('\n'));
}

child.on('exit', (code, signal) => {
  chaosTable();
  let pass = 0, fail = 0, skip = 0;
  try {
    const out = readFileSync(tap, 'utf8');
    const count = (name) => Number(out.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
    pass = count('pass');
    fail = count('fail') + count('cancelled');
    skip = count('skipped') + count('todo');
    rmSync(tap, { force: true });
  } catch {
    fail = Math.max(fail, 1);
  }
  if ((code !== 0 || signal) && fail === 0) fail = 1;
  console.log(`${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}`);
  process.exit(fail > 0 ? 1 : 0);
});
