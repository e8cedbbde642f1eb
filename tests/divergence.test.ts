// A run that diverges by itself (plain SGD with lr 50 on synthetic:small) must stop with a clear
// divergence error and a non-zero exit, and must not save a model — under both strategies. A
// healthy run beside them: the guard does not misfire, and metrics.json carries the shard counters.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

const root = resolve(import.meta.dirname, '..');
const runJob = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NATS_URL: '' } });

for (const strategy of ['ps', 'mirrored'] as const) {
  t.test(`${strategy}: sgd with lr 50 stops with a divergence error and saves no model`, async (t) => {
    const out = join(tmpdir(), `actorflow-diverge-${strategy}-${process.pid}`);
    rmSync(out, { recursive: true, force: true });
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const run = runJob([
      '--job',
      `diverge-${strategy}`,
      '--strategy',
      strategy,
      '--trainers',
      strategy === 'ps' ? '1' : '2',
      '--data-shards',
      '1',
      '--ps-shards',
      '1',
      '--epochs',
      '1',
      '--optimizer',
      'sgd',
      '--lr',
      '50',
      '--eval-every',
      '0',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    t.not(run.status, 0, 'the job exits non-zero');
    t.match(run.stderr, /job failed: .*trainer-\d exited with code 1/s, 'the job names the trainer that stopped');
    t.match(run.stderr, /training diverged at step \d+ on rank \d: the (loss|gradient of '\w+') is (NaN|-?Infinity)/, 'and why: step, rank and where');
    t.notMatch(run.stderr, /Cannot read properties|TypeError/, 'no crash in the summary');
    t.notOk(existsSync(join(out, 'model', 'params.bin')), 'no model saved');
    t.notOk(existsSync(join(out, 'metrics.json')), 'no metrics of a failed run');
  });
}

t.test('a healthy ps run saves its model and metrics.json carries every shard counters, with no rejection', async (t) => {
  const out = join(tmpdir(), `actorflow-healthy-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const run = runJob(['--job', 'healthy-ps', '--strategy', 'ps', '--trainers', '2', '--data-shards', '1', '--ps-shards', '2', '--epochs', '1', '--eval-every', '0', '--backend', 'wasm', '--out', out]);
  t.equal(run.status, 0, run.stderr.slice(-2000));
  t.ok(existsSync(join(out, 'model', 'params.bin')), 'model saved');
  const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as {
    steps: number;
    psShards?: { shard: number; pushes: number; rejected: number; noReply: number; bySender: Record<string, { accepted: number }> }[];
  };
  t.equal(m.psShards?.length, 2, 'one entry per parameter shard');
  for (const s of m.psShards ?? []) {
    t.equal(s.rejected, 0, `shard ${s.shard}: no rejection`);
    t.equal(s.noReply, 0);
    t.ok(s.pushes > 0, `shard ${s.shard}: ${s.pushes} pushes applied`);
    t.same(Object.keys(s.bySender).sort(), ['0', '1'], 'counted per trainer rank');
    t.equal(s.bySender['0'].accepted + s.bySender['1'].accepted, s.pushes);
  }
});
