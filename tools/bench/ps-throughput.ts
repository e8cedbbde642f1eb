// Ratings/s of one vs two trainers with the asynchronous parameter server, and where a step's
// time goes (compute vs waiting on pull/push), from the trainers' own train.loss reports.
//   npx nx run bench:ps-throughput -- [--epochs 5] [--dataset synthetic:small]
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NatsServer, connect } from '@actorflow/bus';
import { lossReportCodec, subjects } from '@actorflow/protocol';
import { appendSection } from './report.ts';

const { values } = parseArgs({ options: { epochs: { type: 'string' }, dataset: { type: 'string' }, 'no-report': { type: 'boolean' } } });
const epochs = values.epochs ?? '5';
const dataset = values.dataset ?? 'synthetic:small';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const server = await NatsServer.start();
const nc = await connect({ servers: [server.url] });
const rows: string[] = [];
try {
  for (const trainers of [1, 2]) {
    const job = `bench-ps-${trainers}`;
    const reports: { examples: number; computeMs: number; waitMs: number }[] = [];
    const sub = nc.subscribe(subjects.loss, {
      callback: (_e, m) => {
        const r = lossReportCodec.decode(m.data);
        if (r.job === job && r.timing !== undefined) reports.push({ examples: r.examples, computeMs: r.timing.computeMs, waitMs: r.timing.waitMs });
      },
    });
    console.error(`running a ps job with ${trainers} trainer(s) …`);
    const t0 = performance.now();
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), '--job', job, '--trainers', String(trainers), '--data-shards', '2', '--ps-shards', '2', '--epochs', epochs, '--dataset', dataset, '--eval-every', '0', '--nats-url', server.url, '--out', join(root, 'out', job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const wall = (performance.now() - t0) / 1000;
    sub.unsubscribe();
    if (run.status !== 0) throw new Error(`job with ${trainers} trainer(s) failed`);
    const examples = reports.reduce((s, r) => s + r.examples, 0);
    const compute = reports.reduce((s, r) => s + r.computeMs, 0) / reports.length;
    const wait = reports.reduce((s, r) => s + r.waitMs, 0) / reports.length;
    const metrics = JSON.parse(run.stdout.trim().split('\n').pop() as string) as { metrics: { rmse: number } };
    const trainSecs = Number(/done in ([\d.]+) s/.exec(run.stdout)?.[1] ?? wall);
    rows.push(`| ${trainers} | ${examples.toLocaleString('en-US')} | ${trainSecs.toFixed(1)} s | ${Math.round(examples / trainSecs).toLocaleString('en-US')} | ${compute.toFixed(2)} ms | ${wait.toFixed(2)} ms | ${metrics.metrics.rmse.toFixed(4)} |`);
    console.error(rows.at(-1));
  }
} finally {
  await nc.close();
  await server.stop();
}
console.log(rows.join('\n'));
if (values['no-report'] !== true) {
  appendSection(`ps: one vs two trainers (${dataset}, ${epochs} epochs, 2 data shards, 2 parameter shards, batch 1024, MF dim 16)`, `npx nx run bench:ps-throughput -- --epochs ${epochs} --dataset ${dataset}`, [
    'Job time is the launcher\'s "done in" (from start to final evaluation, incl. process start-up); compute and wait are per-step means from the trainers\' `train.loss` timing (wait = pull + push round trips incl. msgpack encoding/decoding on both ends; serialisation is not yet timed separately).',
    '',
    '| trainers | ratings trained | job time | ratings/s | compute / step | pull+push wait / step | test RMSE |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ]);
}
