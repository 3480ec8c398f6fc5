// Runs every test file with Node's test runner (TypeScript through tsx) and ends with the
// line CI reads: "N passed, N failed[, N skipped]". Pass file paths to run only those.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

const files = process.argv.length > 2 ? process.argv.slice(2) : find('test').sort();
const tap = join(tmpdir(), `pasargad-tests-${process.pid}.tap`);
const args = [
  '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...files,
];
const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } });
child.on('exit', (code, signal) => {
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
