// Ratings/s of one vs two trainers in each strategy, and where a step's time goes (compute,
// serialisation, waiting on the network), from the trainers' own train.loss reports.
//   npx nx run bench:ps-throughput -- [--epochs 5] [--dataset synthetic:small]
import { spawn } from 'node:child_process';
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

function runJob(args: string[]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.on('exit', (status) => resolve({ status, stdout }));
  });
}
try {
  for (const [strategy, trainers] of [
    ['ps', 1],
    ['ps', 2],
    ['mirrored', 1],
    ['mirrored', 2],
  ] as const) {
    const job = `bench-${strategy}-${trainers}`;
    const reports: { examples: number; computeMs: number; serdeMs: number; waitMs: number }[] = [];
    const sub = nc.subscribe(subjects.loss, {
      callback: (_e, m) => {
        let r;
        try {
          r = lossReportCodec.decode(m.data);
        } catch (err) {
          console.error(`bad loss report: ${(err as Error).message}`);
          return;
        }
        if (r.job === job && r.timing !== undefined) reports.push({ examples: r.examples, computeMs: r.timing.computeMs, serdeMs: r.timing.serdeMs, waitMs: r.timing.waitMs });
      },
    });
    console.error(`running a ${strategy} job with ${trainers} trainer(s) …`);
    const t0 = performance.now();
    // Asynchronous spawn: this process must keep reading train.loss while the job runs.
    const run = await runJob([
      '--job',
      job,
      '--strategy',
      strategy,
      '--trainers',
      String(trainers),
      '--batch-size',
      String(strategy === 'mirrored' ? 1024 / trainers : 1024),
      '--data-shards',
      '2',
      '--ps-shards',
      '2',
      '--epochs',
      epochs,
      '--dataset',
      dataset,
      '--eval-every',
      '0',
      '--nats-url',
      server.url,
      '--out',
      join(root, 'out', job),
    ]);
    const wall = (performance.now() - t0) / 1000;
    sub.unsubscribe();
    if (run.status !== 0) throw new Error(`job with ${trainers} trainer(s) failed`);
    const examples = reports.reduce((s, r) => s + r.examples, 0);
    const compute = reports.reduce((s, r) => s + r.computeMs, 0) / reports.length;
    const wait = reports.reduce((s, r) => s + r.waitMs, 0) / reports.length;
    const serde = reports.reduce((s, r) => s + r.serdeMs, 0) / reports.length;
    const metrics = JSON.parse(run.stdout.trim().split('\n').pop() as string) as { metrics: { rmse: number } };
    const trainSecs = Number(/done in ([\d.]+) s/.exec(run.stdout)?.[1] ?? wall);
    rows.push(
      `| ${strategy} | ${trainers} | ${examples.toLocaleString('en-US')} | ${trainSecs.toFixed(1)} s | ${Math.round(examples / trainSecs).toLocaleString('en-US')} | ${compute.toFixed(2)} ms | ${serde.toFixed(2)} ms | ${wait.toFixed(2)} ms | ${metrics.metrics.rmse.toFixed(4)} |`,
    );
    console.error(rows.at(-1));
  }
} finally {
  await nc.close();
  await server.stop();
}
console.log(rows.join('\n'));
if (values['no-report'] !== true) {
  appendSection(
    `Strategies: one vs two trainers (${dataset}, ${epochs} epochs, MF dim 16; ps: 2 data shards, 2 parameter shards, batch 1024 per trainer; mirrored: global batch 1024)`,
    `npx nx run bench:ps-throughput -- --epochs ${epochs} --dataset ${dataset}`,
    [
      "Job time is the launcher's \"done in\" (start to final evaluation, incl. process start-up and data generation); per-step means come from the trainers' `train.loss` timing. ps: serialisation = encoding pull/push requests and decoding replies on the trainer, wait = the rest of the pull + push round trips (network and work on the shards). mirrored: serialisation = encoding this rank's gradients, wait = the all-gather round trip through rank 0, compute includes decoding and reducing the other ranks' gradients.",
      '',
      '| strategy | trainers | ratings trained | job time | ratings/s | compute / step | serialisation / step | network wait / step | test RMSE |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows,
    ],
  );
}
