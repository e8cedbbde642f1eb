// Issue 15: a job started by hand — each actor its own process, started in any order, no launcher —
// ends by itself. The trainers finish, the evaluator gives the final score, the aggregator with
// --out writes the model, metrics.json and the evaluation history as the launcher does, and the
// aggregator, data shard and evaluator exit (code 0) once the job has ended.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NatsServer, actorServiceStats, connect, listActorServices } from '@actorflow/bus';
import { evalReportCodec } from '@actorflow/protocol';
import { readScalars } from '@actorflow/tensorboard';

const root = resolve(import.meta.dirname, '..');

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function start(name: string, app: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'apps', app, 'main.ts'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  return { name, child, exited: new Promise((r) => child.on('exit', (code) => r(code))), output: () => out };
}

/** The actors' environment: this test's broker, and not supervised (ACTORFLOW_SUPERVISED unset). */
function handEnv(url: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: url };
  delete env.ACTORFLOW_SUPERVISED;
  delete env.ACTORFLOW_ACTOR;
  return env;
}

async function allExitZero(t: Test, procs: readonly Proc[]): Promise<void> {
  const codes = await Promise.all(procs.map((p) => p.exited));
  procs.forEach((p, i) => t.equal(codes[i], 0, `${p.name} exited 0 by itself${codes[i] !== 0 ? `:\n${p.output().slice(-2000)}` : ''}`));
}

/** Waits until the job's actors `want` (`role rank`) are listed by $SRV.INFO. */
async function waitForServices(t: Test, url: string, job: string, want: readonly string[], procs: readonly Proc[]): Promise<void> {
  const nc = await connect({ servers: [url] });
  try {
    let listed: string[] = [];
    for (let i = 0; i < 600 && !want.every((w) => listed.includes(w)); i++) {
      listed = (await listActorServices(nc, { job, timeoutMs: 500 })).map((s) => `${s.metadata?.role} ${s.metadata?.rank ?? ''}`.trim());
      if (!want.every((w) => listed.includes(w))) await new Promise((r) => setTimeout(r, 500));
    }
    t.ok(
      want.every((w) => listed.includes(w)),
      `${want.join(', ')} registered (${listed.join(', ')})${want.every((w) => listed.includes(w)) ? '' : `:\n${procs.map((p) => `${p.name}: ${p.output().slice(-500)}`).join('\n')}`}`,
    );
  } finally {
    await nc.close();
  }
}

/** A by-hand trainer shows the job's step out of its planned total, and examples/s, as the launcher does. */
function checkTrainerProgress(t: Test, p: Proc, mirrored: boolean): void {
  const out = p.output();
  const planned = /(\d+) steps planned/.exec(out)?.[1];
  t.ok(planned !== undefined && Number(planned) > 0, `${p.name} states the planned step total (${planned})`);
  const lines = [...out.matchAll(/step (\d+)\/(\d+) \((\d+) %\) epoch \d+ loss [\d.]+ (\d+) ex\/s over \d+ rank\(s\)/g)];
  t.ok(lines.length > 0, `${p.name} prints step/total and ex/s`);
  const last = lines.at(-1);
  t.equal(last?.[2], planned, 'counted to the planned total');
  // Mirrored ranks step together: each saw the group reach the total. A ps trainer that ends first
  // may not have heard the other's last pushes yet (the job total is over every trainer).
  if (mirrored) t.equal(last?.[1], planned, 'and reached it when the job ended');
  else t.ok(Number(last?.[1]) > 0 && Number(last?.[1]) <= Number(planned), `the job's pushes so far (${last?.[1]}) within the total`);
  t.ok(Number(last?.[4]) > 0, 'examples/s measured');
}

function checkSaved(t: Test, out: string, strategy: string): void {
  t.ok(existsSync(join(out, 'model', 'params.bin')), 'model/params.bin written');
  const config = JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')) as { model: string; dataset?: { source: string } };
  t.equal(config.model, 'mf');
  t.equal(config.dataset?.source, 'synthetic:tiny', 'the dataset recorded for recommend');
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as {
    strategy: string;
    metrics: Record<string, number>;
    steps: number;
    seconds: number;
    checkpoint: Record<string, string>;
    trainSeconds: number;
    examplesPerSecond: number;
    backend: string;
    stepTiming: { computeMs: number; serdeMs: number; waitMs: number; waitAndSerdeShare: number };
    faults: { restarts: Record<string, number>; stalls: string[]; brokerRestarts: number; groupReformations: number; checkpoints: number; evaluatorGaveUp: boolean; worldSize?: number };
    psShards?: { pushes: number }[];
  };
  t.equal(metrics.strategy, strategy, 'metrics.json names the strategy the trainers ran');
  t.ok(Number.isFinite(metrics.metrics.rmse) && metrics.metrics.rmse > 0 && metrics.metrics.rmse < 2, `final rmse ${metrics.metrics.rmse}`);
  t.ok(metrics.steps > 0, `${metrics.steps} steps`);
  t.equal(metrics.checkpoint.params, join(out, 'model', 'params.bin'));
  // The launcher's throughput and faults fields (apps/job JobResult extends the same JobMetrics).
  t.ok(metrics.trainSeconds > 0 && metrics.trainSeconds < metrics.seconds, `trainSeconds ${metrics.trainSeconds} within the job's ${metrics.seconds} s`);
  t.ok(metrics.examplesPerSecond > 0, `examplesPerSecond ${metrics.examplesPerSecond}`);
  t.equal(metrics.backend, 'cpu', "the trainers' backend");
  const st = metrics.stepTiming;
  t.ok(st.computeMs > 0 && st.serdeMs >= 0 && st.waitMs >= 0 && st.waitAndSerdeShare >= 0 && st.waitAndSerdeShare <= 1, `per-step split ${JSON.stringify(st)}`);
  t.same(
    {
      restarts: metrics.faults.restarts,
      stalls: metrics.faults.stalls,
      brokerRestarts: metrics.faults.brokerRestarts,
      groupReformations: metrics.faults.groupReformations,
      checkpoints: metrics.faults.checkpoints,
      evaluatorGaveUp: metrics.faults.evaluatorGaveUp,
    },
    { restarts: {}, stalls: [], brokerRestarts: 0, groupReformations: 0, checkpoints: 0, evaluatorGaveUp: false },
    'the faults block: nothing went wrong',
  );
  if (strategy === 'mirrored') t.equal(metrics.faults.worldSize, 2, "the mirrored group's world size");
  else t.ok(metrics.psShards !== undefined && metrics.psShards.length === 1 && metrics.psShards[0].pushes > 0, `the parameter shard's counters: ${metrics.psShards?.[0]?.pushes} pushes applied`);
  const evals = readFileSync(join(out, 'eval.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => evalReportCodec.decode(new TextEncoder().encode(l))); // each line a valid EvalReport
  t.equal(evals.at(-1)?.final, true, 'the last evaluation is the final one');
  t.equal(evals.at(-1)?.metrics.rmse, metrics.metrics.rmse, 'metrics.json holds the final evaluation');
  t.match(readFileSync(join(out, 'eval.csv'), 'utf8'), /^ts,step,final,/);
  // TensorBoard, as the launcher writes it: loss per rank, and the eval metrics, read back from the event files.
  const scalars = readScalars(join(out, 'tensorboard'));
  t.ok((scalars['loss/rank0']?.length ?? 0) > 0 && (scalars['loss/rank1']?.length ?? 0) > 0, 'loss of both ranks in the TensorBoard events');
  t.ok(
    scalars['eval/rmse']?.some((p) => Math.abs(p.value - metrics.metrics.rmse) < 1e-6),
    'the final eval RMSE is among the TensorBoard scalars',
  );
}

t.test('by hand, ps: trainers started first, then evaluator, aggregator --out and data shard — the job ends and is saved', { timeout: 900_000 }, async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const env = handEnv(server.url);
  const out = mkdtempSync(join(tmpdir(), 'actorflow-by-hand-ps-'));
  const job = ['--job', 'handps'];
  const procs = [
    start('trainer 0', 'trainer', [...job, '--strategy', 'ps', '--rank', '0', '--backend', 'cpu'], env),
    start('trainer 1', 'trainer', [...job, '--strategy', 'ps', '--rank', '1', '--backend', 'cpu'], env),
  ];
  t.teardown(() => procs.forEach((p) => p.child.kill('SIGKILL')));
  // Both trainers are up and waiting before the rest starts: on a loaded machine one trainer's
  // start-up can take longer than the whole (tiny, async) job, and the other would take every batch.
  await waitForServices(t, server.url, 'handps', ['trainer 0', 'trainer 1'], procs);
  procs.push(
    start('evaluator', 'evaluator', [...job, '--every', '50', '--backend', 'cpu'], env),
    start('aggregator', 'aggregator', [...job, '--dim', '8', '--out', out, '--dataset', 'synthetic:tiny'], env),
    start('data shard', 'data-shard', [...job, '--dataset', 'synthetic:tiny', '--epochs', '3', '--batch-size', '64'], env),
  );
  await allExitZero(t, procs);
  checkSaved(t, out, 'ps');
  checkTrainerProgress(t, procs[0], false);
  checkTrainerProgress(t, procs[1], false);
  t.match(procs[3].output(), /job handps has ended: exiting/);
  t.match(procs[4].output(), /job handps has ended: exiting/);
});

t.test('by hand, mirrored: two ranks, an aggregator that serves either strategy — the job ends and is saved', { timeout: 900_000 }, async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const env = handEnv(server.url);
  const out = mkdtempSync(join(tmpdir(), 'actorflow-by-hand-mirrored-'));
  const job = ['--job', 'handmir'];
  const procs = [
    start('data shard', 'data-shard', [...job, '--dataset', 'synthetic:tiny', '--epochs', '2', '--batch-size', '64'], env),
    start('trainer 1', 'trainer', [...job, '--strategy', 'mirrored', '--rank', '1', '--backend', 'cpu'], env),
    start('aggregator', 'aggregator', [...job, '--world-size', '2', '--dim', '8', '--out', out, '--dataset', 'synthetic:tiny'], env),
    start('trainer 0', 'trainer', [...job, '--strategy', 'mirrored', '--rank', '0', '--backend', 'cpu'], env),
    start('evaluator', 'evaluator', [...job, '--every', '0', '--backend', 'cpu'], env),
  ];
  t.teardown(() => procs.forEach((p) => p.child.kill('SIGKILL')));
  await allExitZero(t, procs);
  checkSaved(t, out, 'mirrored');
  checkTrainerProgress(t, procs[1], true);
  checkTrainerProgress(t, procs[3], true);
});

t.test('no --job: the aggregator mints a fresh id, the others join it; --keep-serving keeps the data shard up after the end', { timeout: 900_000 }, async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const env = handEnv(server.url);
  const shard = start('data shard', 'data-shard', ['--dataset', 'synthetic:tiny', '--epochs', '1', '--batch-size', '256', '--keep-serving'], env);
  const agg = start('aggregator', 'aggregator', ['--dim', '4'], env);
  const trainer = start('trainer 0', 'trainer', ['--strategy', 'ps', '--rank', '0', '--backend', 'cpu'], env);
  t.teardown(() => [shard, agg, trainer].forEach((p) => p.child.kill('SIGKILL')));
  t.equal(await trainer.exited, 0, trainer.output().slice(-1500));
  t.equal(await agg.exited, 0, agg.output().slice(-1500));
  const minted = /job (hand-[0-9a-z]+-[0-9a-f]{4}) \(a fresh id/.exec(agg.output())?.[1];
  t.ok(minted !== undefined, 'the aggregator minted a job id');
  t.match(trainer.output(), `joining job ${minted}`, 'the trainer found it');
  t.match(shard.output(), `joining job ${minted}`, 'the data shard found it');
  t.match(agg.output(), `no evaluator of job ${minted} is running: no final evaluation`);
  t.equal(shard.child.exitCode, null, 'the data shard still runs (--keep-serving)');
  shard.child.kill('SIGTERM');
  t.equal(await shard.exited, 0, 'and stops on SIGTERM');
});

t.test('$SRV.INFO / STATS list every actor of every job with its role, job and rank', { timeout: 900_000 }, async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const env = handEnv(server.url);
  const procs: Proc[] = [];
  for (const job of ['svc-a', 'svc-b'])
    procs.push(
      start(`aggregator ${job}`, 'aggregator', ['--job', job, '--dim', '4'], env),
      start(`data shard ${job}`, 'data-shard', ['--job', job, '--dataset', 'synthetic:tiny'], env),
      start(`evaluator ${job}`, 'evaluator', ['--job', job, '--every', '0', '--backend', 'cpu'], env),
    );
  t.teardown(() => procs.forEach((p) => p.child.kill('SIGKILL')));
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  // No trainer: nobody ends these jobs, so every actor serves until it is stopped.
  const want = ['svc-a aggregator 0/1', 'svc-a data-shard 0/1', 'svc-a evaluator', 'svc-b aggregator 0/1', 'svc-b data-shard 0/1', 'svc-b evaluator'];
  let listed: string[] = [];
  for (let i = 0; i < 240 && listed.length < want.length; i++) {
    listed = (await listActorServices(nc, { timeoutMs: 500 }))
      .map((s) => `${s.metadata?.job} ${s.metadata?.role}${s.metadata?.rank !== undefined && s.metadata.rank !== '' ? ` ${s.metadata.rank}` : ''}`)
      .sort();
    if (listed.length < want.length) await new Promise((r) => setTimeout(r, 500));
  }
  t.same(listed, want, `every actor of both jobs listed:\n${procs.map((p) => `${p.name}: ${p.output().slice(-300)}`).join('\n')}`);
  const stats = await actorServiceStats(nc, { job: 'svc-a' });
  t.same(stats.map((s) => s.metadata?.role).sort(), ['aggregator', 'data-shard', 'evaluator'], "one job's STATS: its actors only");
  for (const s of stats) t.match(s.endpoints?.[0]?.data, { role: s.metadata?.role, job: 'svc-a' }, `${s.metadata?.role}: live stats with role and job`);
  procs.forEach((p) => p.child.kill('SIGTERM'));
  await Promise.all(procs.map((p) => p.exited));
});
