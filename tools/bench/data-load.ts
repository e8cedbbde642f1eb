// Loading, encoding and splitting a synthetic ml-20m-sized ratings.csv: rows/s and peak RSS.
// The file is generated first (parent process); the measured part runs in a fresh child process
// so its peak RSS is the loader's alone.
//   npx nx run bench:data-load -- --rows 20000000
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadRatings, lowRankRatings, randomSplit, writeRatingsCsv } from '@actorflow/data';
import { appendSection } from './report.ts';

const { values } = parseArgs({ options: { rows: { type: 'string' }, file: { type: 'string' }, child: { type: 'boolean' }, 'no-report': { type: 'boolean' } } });
const rows = Number(values.rows ?? 20_000_000);
if (!Number.isInteger(rows) || rows < 1000) {
  console.error(`--rows must be an integer >= 1000, got ${values.rows}`);
  process.exit(2);
}

if (values.child === true) {
  // Measured part: load (streaming) + encode (on the fly) + random 10 % split.
  const file = values.file as string;
  const t0 = performance.now();
  const loaded = await loadRatings(file, {
    onProgress: (p) => process.stderr.write(`\r  loading ${(p.bytes / 1e6).toFixed(0)}/${(p.totalBytes / 1e6).toFixed(0)} MB`),
  });
  const t1 = performance.now();
  const split = randomSplit(loaded.ratings, { seed: 1 });
  const t2 = performance.now();
  process.stderr.write('\n');
  console.log(
    JSON.stringify({
      rows: loaded.ratings.length,
      users: loaded.users.size,
      items: loaded.items.size,
      loadSeconds: (t1 - t0) / 1000,
      splitSeconds: (t2 - t1) / 1000,
      test: split.test.length,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    }),
  );
  process.exit(0);
}

const dir = join(tmpdir(), 'actorflow-bench');
mkdirSync(dir, { recursive: true });
const file = values.file ?? join(dir, `ratings-${rows}.csv`);
if (!existsSync(file)) {
  const users = Math.max(10, Math.round(rows / 145));
  console.error(`generating ${rows.toLocaleString('en-US')} synthetic ratings (${users} users) into ${file} …`);
  const g0 = performance.now();
  const s = lowRankRatings({ users, items: Math.min(27_000, Math.max(200, Math.round(rows / 740))), perUser: 145, seed: 1, withTimestamps: true });
  await writeRatingsCsv(s.ratings, file);
  console.error(`  ${s.ratings.length.toLocaleString('en-US')} ratings, ${(statSync(file).size / 1e6).toFixed(0)} MB, in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
}
console.error('measuring load + encode + split in a fresh process …');
const child = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', '--file', file, '--rows', String(rows)], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});
if (child.status !== 0) {
  console.error(`measurement failed (exit ${child.status})`);
  process.exit(1);
}
const r = JSON.parse(child.stdout.trim().split('\n').pop() as string) as Record<string, number>;
const fileMB = statSync(file).size / 1e6;
const line = `| ${r.rows.toLocaleString('en-US')} | ${fileMB.toFixed(0)} MB | ${r.loadSeconds.toFixed(1)} s | ${Math.round(r.rows / r.loadSeconds).toLocaleString('en-US')} | ${r.splitSeconds.toFixed(2)} s | ${r.maxRssMiB.toFixed(0)} MiB |`;
console.log(`rows ${r.rows}, users ${r.users}, items ${r.items}`);
console.log(`load+encode ${r.loadSeconds.toFixed(1)} s (${Math.round(r.rows / r.loadSeconds)} rows/s), split ${r.splitSeconds.toFixed(2)} s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB`);
if (values['no-report'] !== true) {
  appendSection('Data: load + encode + split a synthetic ml-20m-style ratings.csv', `npx nx run bench:data-load -- --rows ${rows}`, [
    '| ratings | file | load + encode | rows/s | random 10 % split | peak RSS |',
    '|---|---|---|---|---|---|',
    line,
  ]);
}
