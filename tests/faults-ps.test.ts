// Issue 12, parameter-server jobs: every actor kind and the broker killed with -9 at ~40 % of the
// training; the job must finish (exit 0) with a final RMSE within 0.01 of the clean run, saying
// what it restarted. Also: a SIGSTOPped trainer is declared dead by its missing heartbeats and
// replaced, and SIGTERM to the launcher stops every process, writes a last checkpoint and exits
// 143, after which --resume finishes the job. Real nats-server, real processes (docs/RELIABILITY.md).
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunningJob, alive, cleanRmse, faultAt40, rmseOf, runJob, waitGone } from './fixtures/faults.ts';

const base = (job: string): string[] => [
  ...['--job', job, '--strategy', 'ps', '--trainers', '2', '--data-shards', '2', '--ps-shards', '2'],
  ...['--epochs', '8', '--batch-size', '512', '--eval-every', '0', '--checkpoint-every', '1s'],
];
const dir = mkdtempSync(join(tmpdir(), 'faults-ps-'));

let clean: number;

t.before(async () => {
  clean = await cleanRmse(base('ps-clean'), join(dir, 'clean'));
});

for (const victim of ['trainer-1', 'aggregator-1', 'data-shard-0', 'evaluator', 'nats-server']) {
  t.test(`ps: kill -9 of ${victim} at 40 % is survived`, async (t) => {
    const { end, job } = await faultAt40(base(`ps-kill-${victim}`), join(dir, victim), victim);
    t.equal(end.code, 0, 'the job finished', { diagnostic: end.code !== 0, output: end.output.split('\n').slice(-25) });
    const m = job.metrics();
    t.ok(Math.abs(rmseOf(m) - clean) <= 0.01, `rmse ${rmseOf(m)} within 0.01 of the clean run's ${clean}`);
    if (victim === 'nats-server') t.equal(m.faults?.brokerRestarts, 1, 'the broker was restarted once');
    else t.ok((m.faults?.restarts[victim] ?? 0) >= 1, `${victim} was restarted (${JSON.stringify(m.faults)})`);
    t.match(end.output, victim === 'nats-server' ? /nats-server .*died/ : new RegExp(`${victim} was killed by SIGKILL`), 'the log names the fault');
  });
}

t.test('ps: a SIGSTOPped trainer is declared dead by its heartbeats and replaced', async (t) => {
  const { end, job, pid } = await faultAt40([...base('ps-stop'), '--heartbeat-timeout', '6'], join(dir, 'stop'), 'trainer-0', 'SIGSTOP');
  t.match(end.output, /trainer-0 \(pid \d+\) sent no heartbeat for [\d.]+ s \(stopped or stuck\): killing it/, 'the stall is named in the log');
  t.equal(end.code, 0, 'the job finished', { diagnostic: end.code !== 0, output: end.output.split('\n').slice(-25) });
  t.notOk(alive(pid), 'the stopped process was killed');
  const m = job.metrics();
  t.ok(m.faults?.stalls.includes('trainer-0'), 'metrics.json lists the stall');
  t.ok(Math.abs(rmseOf(m) - clean) <= 0.01, `rmse ${rmseOf(m)} within 0.01 of the clean run's ${clean}`);
});

t.test('ps: SIGTERM to the launcher stops every process (exit 143) and --resume finishes the job', async (t) => {
  const out = join(dir, 'term');
  const job = new RunningJob(base('ps-term'), out);
  await job.waitForProgress(40);
  const pids = [
    job.pidOf('nats-server'),
    ...job
      .actors()
      .actors.filter((a) => a.running && a.pid !== undefined)
      .map((a) => a.pid as number),
  ];
  t.ok(pids.length >= 8, `${pids.length} processes: broker, 2 data shards, 2 ps shards, evaluator, 2 trainers`);
  job.child.kill('SIGTERM');
  const end = await job.done;
  t.equal(end.code, 143, 'exit code 143 (128 + SIGTERM)');
  t.match(end.output, /resume with: npx nx run job -- --resume/);
  t.same(await waitGone(pids, 15_000), [], 'no process of the job is left');
  const resumed = await runJob(['--resume', out], out);
  t.equal(resumed.end.code, 0, 'the resumed job finished', { diagnostic: resumed.end.code !== 0, output: resumed.end.output.split('\n').slice(-25) });
  t.match(resumed.end.output, /resuming job ps-term from its checkpoint of step \d+/);
  const m = resumed.job.metrics();
  t.ok((m.faults?.resumedFromStep ?? 0) > 0, 'resumed from a checkpoint');
  t.ok(Math.abs(rmseOf(m) - clean) <= 0.01, `rmse ${rmseOf(m)} within 0.01 of the clean run's ${clean}`);
});
