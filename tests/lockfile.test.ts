// Issue 15: `npm install` leaves package-lock.json unchanged on a fresh clone, and every locked
// package runs on the lowest Node the root `engines` allows (no EBADENGINE). The lock is checked in
// a copy of the manifests (the root's and every workspace's, as git tracks them), never in this
// checkout: `npm install --package-lock-only --offline` there must not change a byte of it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** The manifests a fresh clone has: the root's, and each tracked workspace's package.json. */
function trackedManifests(): string[] {
  const out = execFileSync('git', ['ls-files', '--', 'package.json', 'package-lock.json', 'libs/*/package.json', 'apps/*/package.json', 'tools/*/package.json'], { cwd: root, encoding: 'utf8' });
  return out.split('\n').filter((l) => l !== '');
}

t.test('npm install leaves the lock file unchanged (fresh clone: tracked manifests only)', { timeout: 300_000 }, (t) => {
  const files = trackedManifests();
  t.ok(files.includes('package-lock.json'), 'package-lock.json is tracked');
  const dir = mkdtempSync(join(tmpdir(), 'actorflow-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of files) {
    mkdirSync(join(dir, dirname(f)), { recursive: true });
    copyFileSync(join(root, f), join(dir, f));
  }
  const before = readFileSync(join(dir, 'package-lock.json'), 'utf8');
  // --offline: the packages are all in the lock (and npm's cache); a lock in sync needs no registry.
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const after = readFileSync(join(dir, 'package-lock.json'), 'utf8');
  if (after !== before) {
    const a = before.split('\n');
    const b = after.split('\n');
    const first = a.findIndex((l, i) => l !== b[i]);
    t.fail(
      `npm install rewrites package-lock.json (${a.length} → ${b.length} lines; first change at line ${first + 1}: '${b[first]?.trim()}'): run \`npm install\` and commit the lock with the package.json change`,
    );
  } else t.pass('package-lock.json unchanged');
  t.end();
});

t.test("every locked package's engines.node admits the lowest Node the root engines allows", (t) => {
  // semver comes with npm's and nx's own dependencies; resolved from the workspace root.
  const semver = createRequire(join(root, 'package.json'))('semver') as { minVersion(r: string): { version: string } | null; satisfies(v: string, r: string): boolean };
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines?: { node?: string } };
  const range = pkg.engines?.node;
  t.ok(range !== undefined, 'the root package.json declares engines.node');
  const lowest = semver.minVersion(range ?? '*')?.version ?? '0.0.0';
  t.ok(semver.satisfies(process.version, range ?? '*'), `this Node (${process.version}) is within engines ${range}`);
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: unknown }> };
  const bad: string[] = [];
  for (const [name, p] of Object.entries(lock.packages)) {
    const e = p.engines;
    const node = typeof e === 'object' && e !== null && 'node' in e && typeof e.node === 'string' ? e.node : undefined;
    if (node !== undefined && !semver.satisfies(lowest, node)) bad.push(`${name.replace(/^.*node_modules\//, '')} wants node ${node}`);
  }
  t.same(bad, [], `every package runs on Node ${lowest} (engines ${range}); otherwise pin an older version or raise engines`);
  t.end();
});
