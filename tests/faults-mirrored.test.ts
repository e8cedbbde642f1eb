// Issue 12, mirrored jobs: a rank, the aggregator (replica store and config owner), a data shard,
// the evaluator and the broker killed with -9 at ~40 %; the launcher killed with -9 (its children
// and broker must go with it) and the job resumed with --resume. Mirrored training is
// deterministic and every recovery restarts from an exact replica (parameters, optimizer state,
// data position), so each run must end with exactly the clean run's RMSE. Real processes.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunningJob, cleanRmse, faultAt40, rmseOf, runJob, waitGone } from './fixtures/faults.ts';

const base = (job: string): string[] => [
  ...['--job', job, '--strategy', 'mirrored', '--trainers', '2', '--data-shards', '2'],
  ...['--epochs', '6', '--batch-size', '512', '--eval-every', '0', '--checkpoint-every', '1s'],
];
const dir = mkdtempSync(join(tmpdir(), 'faults-mirrored-'));

let clean: number;

t.before(async () => {
  clean = await cleanRmse(base('mi-clean'), join(dir, 'clean'));
});

for (const victim of ['trainer-1', 'aggregator-0', 'data-shard-1', 'evaluator', 'nats-server']) {
  t.test(`mirrored: kill -9 of ${victim} at 40 % ends with the clean run's exact RMSE`, async (t) => {
    const { end, job } = await faultAt40(base(`mi-kill-${victim}`), join(dir, victim), victim);
    t.equal(end.code, 0, 'the job finished', { diagnostic: end.code !== 0, output: end.output.split('\n').slice(-25) });
    const m = job.metrics();
    t.equal(rmseOf(m), clean, 'the same final RMSE as the uninterrupted run, to the last bit');
    if (victim === 'nats-server') t.equal(m.faults?.brokerRestarts, 1, 'the broker was restarted once');
    else if (victim === 'trainer-1') t.equal(m.faults?.groupReformations, 1, 'the group re-formed once');
    else t.ok((m.faults?.restarts[victim] ?? 0) >= 1, `${victim} was restarted (${JSON.stringify(m.faults)})`);
  });
}

t.test('mirrored: kill -9 of the launcher takes every actor with it; --resume reproduces the clean run exactly', async (t) => {
  const out = join(dir, 'launcher');
  const job = new RunningJob(base('mi-launcher'), out);
  await job.waitForProgress(40);
  await job.waitForCheckpoint();
  const pids = [
    job.pidOf('nats-server'),
    ...job
      .actors()
      .actors.filter((a) => a.running && a.pid !== undefined)
      .map((a) => a.pid as number),
  ];
  job.child.kill('SIGKILL');
  await job.done;
  t.same(await waitGone(pids, 15_000), [], 'no actor and no nats-server outlives a launcher killed with -9');
  const resumed = await runJob(['--resume', out], out);
  t.equal(resumed.end.code, 0, 'the resumed job finished', { diagnostic: resumed.end.code !== 0, output: resumed.end.output.split('\n').slice(-25) });
  const m = resumed.job.metrics();
  t.ok((m.faults?.resumedFromStep ?? 0) > 0, `resumed from step ${m.faults?.resumedFromStep}`);
  t.equal(rmseOf(m), clean, 'the resumed job ends with exactly the uninterrupted RMSE');
});

t.test('mirrored: with its restarts used up, a group shrinks to --min-trainers and finishes', async (t) => {
  const args = ['--job', 'mi-shrink', '--strategy', 'mirrored', '--trainers', '3', '--min-trainers', '2', '--max-restarts', '0', '--data-shards', '1'];
  const { end, job } = await faultAt40([...args, '--epochs', '6', '--batch-size', '512', '--eval-every', '0', '--checkpoint-every', '1s'], join(dir, 'shrink'), 'trainer-2');
  t.equal(end.code, 0, 'the job finished', { diagnostic: end.code !== 0, output: end.output.split('\n').slice(-25) });
  t.match(end.output, /world size 3 → 2, global batch 1536 → 1024 examples/, 'the change of world size and global batch is logged');
  const m = job.metrics();
  t.equal(m.faults?.worldSize, 2);
  t.equal(m.faults?.groupReformations, 1);
  t.ok(Math.abs(rmseOf(m) - clean) <= 0.02, `rmse ${rmseOf(m)} near the 2-rank clean run's ${clean} (a different global batch for part of the run)`);
});
