// actorflow against PyTorch on the same data, same hyper-parameters, same machine, in one run:
// rounds interleave the engines (so load hits all alike); each engine is a whole process of its
// own; the table reports medians and ratios to PyTorch. Rows:
//   actorflow single process  tools/bench/vs-torch-mf.ts (trainLocal: the kernels every strategy runs)
//   actorflow job, 1|2 trainers the launcher (nats-server, data shard, parameter shard or replica
//                             store, trainer(s), evaluator as processes), ps and mirrored; its
//                             metrics.json trainSeconds/examplesPerSecond
//   PyTorch                   tools/bench/torch_mf.py on Debian's python3-torch, 1 thread
//   plain JS reference        tools/bench/mf_ref.ts, mf_ref.c line for line in scalar JavaScript
//   C limit                   tools/bench/mf_ref.c, gcc -O3 -march=native, the same lazy Adam loop
// MF on the seed experiment's shape: ~670 users × 9k items × 100k ratings, random 80/20 split, dim
// 100, Adam 0.01, l2 0.00028, batch 5001, 100 epochs.
//   npx nx run bench:vs-torch -- [--rounds 3] [--epochs 100] [--jobs ps1,ps2,mirrored1,mirrored2] [--no-job] [--no-job2] [--no-report]
//   (--jobs: which job rows, default all four; --no-job: none; --no-job2: no 2-trainer rows)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lowRankRatings, randomSplit, type Ratings } from '@actorflow/data';
import { appendSection } from './report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: v } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    epochs: { type: 'string', default: '100' },
    'no-job': { type: 'boolean' },
    'no-job2': { type: 'boolean' },
    jobs: { type: 'string', default: 'ps1,ps2,mirrored1,mirrored2' },
    'no-report': { type: 'boolean' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const rounds = Number(v.rounds);
const epochs = Number(v.epochs);
const hp = { dim: 100, lr: 0.01, l2: 0.00028, batch: 5001 };

function torchVersion(python: string): string | undefined {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const torch = torchVersion(String(v.python));
if (torch === undefined) {
  console.error(`bench:vs-torch: ${v.python} has no torch. Install Debian's PyTorch (apt-get install -y python3-torch) or pass --python PATH.`);
  process.exit(2);
}
const blas = spawnSync(String(v.python), ['-c', 'import torch; print(torch.__config__.show())'], { encoding: 'utf8' }).stdout.match(/BLAS_INFO=(\w+)/)?.[1] ?? 'unknown';

// Data: the seed experiment's shape, written once as 0-based CSV that every engine reads.
const dir = join(tmpdir(), 'actorflow-vs-torch');
mkdirSync(dir, { recursive: true });
const s = lowRankRatings({ users: 670, items: 9000, perUser: 150, seed: 1, clip: [0.5, 5] });
const split = randomSplit(s.ratings, { fraction: 0.2, seed: 42 });
const write = (r: Ratings, path: string): void => {
  let out = 'user,item,rating\n';
  for (let k = 0; k < r.length; k++) out += `${r.user[k]},${r.item[k]},${r.rating[k]}\n`;
  writeFileSync(path, out);
};
const trainCsv = join(dir, 'train.csv');
const testCsv = join(dir, 'test.csv');
write(split.train, trainCsv);
write(split.test, testCsv);
// The launcher's loaders read 1-based MovieLens-style files: the same rows, ids + 1.
const mlTrain = join(dir, 'ml-train.csv');
const mlTest = join(dir, 'ml-test.csv');
const writeMl = (r: Ratings, path: string): void => {
  let out = 'userId,movieId,rating,timestamp\n';
  for (let k = 0; k < r.length; k++) out += `${r.user[k] + 1},${r.item[k] + 1},${r.rating[k]},0\n`;
  writeFileSync(path, out);
};
writeMl(split.train, mlTrain);
writeMl(split.test, mlTest);
console.error(`data: ${s.ratings.length} ratings (${split.train.length} train, ${split.test.length} test), ${s.numUsers} users × ${s.numItems} items, in ${dir}`);

const cBin = join(dir, 'mf_ref');
execFileSync('gcc', ['-O3', '-march=native', '-o', cBin, join(here, 'mf_ref.c'), '-lm']);

interface Run {
  readonly trainSeconds: number;
  /** Process CPU time (user + system) of the training loop; less sensitive to a loaded machine than wall time. */
  readonly cpuSeconds?: number;
  readonly wallSeconds: number;
  readonly testMse: number;
  readonly ratings: number;
}
type Engine = { readonly name: string; readonly what: string; readonly run: () => Run };

function timed(cmd: string, args: string[], opts: { cwd?: string } = {}): { out: string; wall: number } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, cwd: opts.cwd ?? root, env: { ...process.env, NX_DAEMON: 'false', NX_TUI: 'false' } });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  return { out: r.stdout, wall };
}
const lastJson = (out: string): Record<string, number> =>
  JSON.parse(
    out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .at(-1) ?? '{}',
  ) as Record<string, number>;
const common = ['--users', `${s.numUsers}`, '--items', `${s.numItems}`, '--dim', `${hp.dim}`, '--lr', `${hp.lr}`, '--l2', `${hp.l2}`, '--batch', `${hp.batch}`, '--epochs', `${epochs}`];

const engines: Engine[] = [
  {
    name: 'actorflow, single process',
    what: 'trainLocal: fused MF kernel + lazy row-wise Adam in WebAssembly SIMD (f64x2, bit-identical to the JS loops; no TF.js op per step)',
    run: () => {
      const { out, wall } = timed(join(root, 'node_modules/.bin/tsx'), [join(here, 'vs-torch-mf.ts'), '--train', trainCsv, '--test', testCsv, ...common]);
      const j = lastJson(out);
      return { trainSeconds: j.trainSeconds, cpuSeconds: j.cpuSeconds, wallSeconds: wall, testMse: j.testMse, ratings: j.ratings };
    },
  },
  {
    name: 'PyTorch',
    what: `torch ${torch} (Debian python3-torch, BLAS ${blas}), 1 thread, nn.Embedding + dense Adam(weight_decay=l2)`,
    run: () => {
      const { out, wall } = timed(String(v.python), [join(here, 'torch_mf.py'), '--train', trainCsv, '--test', testCsv, ...common, '--threads', '1']);
      const j = lastJson(out);
      return { trainSeconds: j.trainSeconds, cpuSeconds: j.cpuSeconds, wallSeconds: wall, testMse: j.testMse, ratings: j.ratings };
    },
  },
  {
    name: 'plain JS reference',
    what: 'tools/bench/mf_ref.ts: mf_ref.c line for line in scalar JavaScript (whole-table Float32Arrays, lazy row-wise Adam)',
    run: () => {
      const { out, wall } = timed(join(root, 'node_modules/.bin/tsx'), [
        join(here, 'mf_ref.ts'),
        trainCsv,
        testCsv,
        `${s.numUsers}`,
        `${s.numItems}`,
        `${hp.dim}`,
        `${epochs}`,
        `${hp.batch}`,
        `${hp.lr}`,
        `${hp.l2}`,
      ]);
      const j = lastJson(out);
      return { trainSeconds: j.trainSeconds, cpuSeconds: j.cpuSeconds, wallSeconds: wall, testMse: j.testMse, ratings: j.ratings };
    },
  },
  {
    name: 'C limit',
    what: 'tools/bench/mf_ref.c, gcc -O3 -march=native, lazy row-wise Adam',
    run: () => {
      const { out, wall } = timed(cBin, [trainCsv, testCsv, `${s.numUsers}`, `${s.numItems}`, `${hp.dim}`, `${epochs}`, `${hp.batch}`, `${hp.lr}`, `${hp.l2}`]);
      const j = lastJson(out);
      return { trainSeconds: j.trainSeconds, cpuSeconds: j.cpuSeconds, wallSeconds: wall, testMse: j.testMse, ratings: j.ratings };
    },
  },
];
// The job: one trainer (the done-criterion row: ≥ 3× PyTorch) and two (the scaling row: ≥ 0.9× one
// trainer on this 2-core machine), for each strategy. 2 trainers: the same 100 epochs of examples,
// each trainer half (ps: trainers share the epoch; mirrored: the global batch is 2 × batch / 2).
type JobStrategy = 'ps' | 'mirrored';
const jobName = (trainers: number, strategy: JobStrategy): string => `actorflow job, ${trainers} trainer${trainers === 1 ? '' : 's'} (${strategy})`;
const jobEngine = (trainers: number, strategy: JobStrategy): Engine => ({
  name: jobName(trainers, strategy),
  what:
    strategy === 'ps'
      ? `npx nx run job: nats-server, 1 data shard, 1 parameter shard, ${trainers} trainer${trainers === 1 ? '' : 's'}, evaluator — separate processes; pipelined steps (the next pull rides behind the push), broker max_payload 8 MiB`
      : `npx nx run job --strategy mirrored: nats-server, 1 data shard, the aggregator (replica store), ${trainers} rank${trainers === 1 ? ' (no collective: a group of one applies its own gradients)' : 's (star all-reduce through rank 0)'}, evaluator — separate processes; replica to the aggregator each epoch`,
  run: () => {
    const out = join(dir, `job-${Date.now()}`);
    const { wall } = timed(join(root, 'node_modules/.bin/tsx'), [
      join(root, 'apps/job/main.ts'),
      '--model',
      'mf',
      '--dataset',
      mlTrain,
      '--split',
      `file:${mlTest}`,
      '--hyper',
      `dim=${hp.dim}`,
      // PyTorch's recipe: the optimizer's l2 only (mf's per-example reg defaults to 0.05).
      '--hyper',
      'reg=0',
      '--model-flag',
      `lr=${hp.lr}`,
      '--model-flag',
      `l2=${hp.l2}`,
      '--batch-size',
      // mirrored: --batch-size is per rank (the global batch is ranks × it), so 2 ranks take half each.
      `${strategy === 'mirrored' ? Math.ceil(hp.batch / trainers) : hp.batch}`,
      '--epochs',
      `${epochs}`,
      '--trainers',
      `${trainers}`,
      '--strategy',
      strategy,
      '--data-shards',
      '1',
      '--ps-shards',
      '1',
      '--eval-every',
      '0',
      '--out',
      out,
    ]);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { trainSeconds: number; examplesPerSecond: number; metrics: { rmse: number } };
    return { trainSeconds: m.trainSeconds, wallSeconds: wall, testMse: m.metrics.rmse ** 2, ratings: m.examplesPerSecond * m.trainSeconds };
  },
});
const jobRows: [number, JobStrategy][] = (String(v.jobs) === '' ? [] : String(v.jobs).split(',')).map((spec) => {
  const m = /^(ps|mirrored)([12])$/.exec(spec.trim());
  if (m === null) throw new Error(`--jobs takes a comma-separated list of ps1, ps2, mirrored1, mirrored2; got '${spec}'`);
  return [Number(m[2]), m[1] as JobStrategy];
});
if (v['no-job'] !== true) engines.splice(1, 0, ...jobRows.filter(([t]) => v['no-job2'] !== true || t === 1).map(([t, st]) => jobEngine(t, st)));

const results = new Map<string, Run[]>(engines.map((e) => [e.name, []]));
const failures = new Map<string, string>();
for (let round = 0; round < rounds; round++) {
  for (const e of engines) {
    if (failures.has(e.name)) continue;
    try {
      const r = e.run();
      results.get(e.name)?.push(r);
      console.error(
        `round ${round + 1}/${rounds} ${e.name}: train ${r.trainSeconds.toFixed(2)} s${r.cpuSeconds !== undefined ? ` (cpu ${r.cpuSeconds.toFixed(2)} s)` : ''}, process ${r.wallSeconds.toFixed(2)} s, test MSE ${r.testMse.toFixed(4)}`,
      );
    } catch (err) {
      failures.set(e.name, (err as Error).message.split('\n').slice(0, 3).join(' '));
      console.error(`${e.name}: ${(err as Error).message}`);
    }
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const torchRuns = results.get('PyTorch') ?? [];
const torchRate = torchRuns.length > 0 ? median(torchRuns.map((r) => r.ratings / r.trainSeconds)) : Number.NaN;
const cpuMedian = (rs: Run[]): number | undefined => {
  const c = rs.map((r) => r.cpuSeconds).filter((x): x is number => x !== undefined);
  return c.length === rs.length && c.length > 0 ? median(c) : undefined;
};
const torchCpu = cpuMedian(torchRuns);
const rows = ['| engine | what runs | train s (median) | train CPU s (median) | process s | ratings/s | × PyTorch | × PyTorch by CPU s | test MSE |', '|---|---|---|---|---|---|---|---|---|'];
for (const e of engines) {
  const rs = results.get(e.name) ?? [];
  if (rs.length === 0) {
    rows.push(`| ${e.name} | ${e.what} | failed: ${failures.get(e.name) ?? 'no run'} | | | | | | |`);
    continue;
  }
  const rate = median(rs.map((r) => r.ratings / r.trainSeconds));
  const cpu = cpuMedian(rs);
  const byCpu = cpu !== undefined && torchCpu !== undefined ? `${(torchCpu / cpu).toFixed(2)}×` : '';
  rows.push(
    `| ${e.name} | ${e.what} | ${median(rs.map((r) => r.trainSeconds)).toFixed(2)} | ${cpu?.toFixed(2) ?? ''} | ${median(rs.map((r) => r.wallSeconds)).toFixed(2)} | ${Math.round(rate).toLocaleString('en-US')} | ${(rate / torchRate).toFixed(2)}× | ${byCpu} | ${median(rs.map((r) => r.testMse)).toFixed(4)} |`,
  );
}
// The scaling rows: 2 trainers' examples/s over 1 trainer's, per round (rounds interleave, so each pair saw the same load).
for (const strategy of ['ps', 'mirrored'] as const) {
  const one = results.get(jobName(1, strategy)) ?? [];
  const two = results.get(jobName(2, strategy)) ?? [];
  if (one.length === 0 || two.length === 0) continue;
  const perRound = two
    .slice(0, one.length)
    .map((r, i) => `${(r.ratings / r.trainSeconds / (one[i].ratings / one[i].trainSeconds)).toFixed(2)}×`)
    .join(', ');
  rows.push('', `${strategy} scaling, 2 trainers ÷ 1 trainer (examples/s), per round: ${perRound} (target ≥ 0.9×).`);
}
console.log(rows.join('\n'));
if (v['no-report'] !== true) {
  appendSection('MF against PyTorch and C, seed-experiment shape', `npx nx run bench:vs-torch -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    `${s.ratings.length} synthetic ratings (low rank + noise, clipped to 0.5–5), ${s.numUsers} users × ${s.numItems} items, random 80/20 split (seed 42); dim ${hp.dim}, Adam lr ${hp.lr}, l2 ${hp.l2}, batch ${hp.batch}, ${epochs} epochs; ${rounds} interleaved rounds, medians. CPU s: the training loop's process CPU time (user + system; the job: not measured) — on a loaded machine wall time also counts waiting for a core. ratings/s = training ratings × epochs / train s (the job: metrics.json examplesPerSecond). PyTorch's Adam is dense (every row each step, weight_decay = l2), the classic recipe; actorflow's and C's are lazy (touched rows).`,
  ]);
}
if (!existsSync(dir)) process.exit(1);
