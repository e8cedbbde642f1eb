// --on-divergence rollback restores only a checkpoint whose values are all finite (issue 13):
// real checkpoints (libs/checkpoint) holding real parameter-shard and mirrored-trainer states,
// one of them poisoned, and the handler's choice among them.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { discardCheckpointsAfter, listCheckpoints, writeCheckpoint, type Checkpoint } from '@actorflow/checkpoint';
import { shardStateCodec, trainerStateCodec, SHARD_STATE_FORMAT, TRAINER_STATE_FORMAT } from '@actorflow/protocol';
import { DivergenceHandler, EXIT_DIVERGED, nonFiniteIn, type RollbackHooks } from '../src/rollback.ts';
import type { ActorExit, ActorSpec } from '../src/supervisor.ts';

const shardState = (value: number, moment = 0): Uint8Array =>
  shardStateCodec.encode({
    format: SHARD_STATE_FORMAT,
    shard: 0,
    of: 1,
    optimizer: 'adam',
    version: 3,
    pushes: 3,
    dropped: 0,
    tables: { user: { rows: 2, dim: 2, owned: Int32Array.from([0, 1]), values: Float32Array.from([0.1, 0.2, value, 0.4]) } },
    dense: { mean: Float32Array.from([3.5]) },
    slots: { user: { m: new Float32Array(4).fill(moment), v: new Float32Array(4), steps: new Int32Array(2) } },
    clocks: { '0': 3 },
  });

const trainerState = (dense: number): Uint8Array =>
  trainerStateCodec.encode({
    format: TRAINER_STATE_FORMAT,
    job: 'j',
    worldSize: 2,
    step: 4,
    epoch: 0,
    stepInEpoch: 4,
    params: { tables: { item: { rows: 1, dim: 2, data: Float32Array.from([1, 2]) } }, dense: { mean: Float32Array.from([dense]) } },
    optimizer: {},
  });

const root = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'actorflow-rollback-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const kept = async (dir: string): Promise<Checkpoint[]> => (await listCheckpoints(dir)).flatMap((l) => (l.checkpoint !== undefined ? [l.checkpoint] : []));

const exit: ActorExit = {
  name: 'trainer-0',
  spec: { name: 'trainer-0' } as ActorSpec,
  code: EXIT_DIVERGED,
  signal: null,
  stalled: false,
  restarts: 0,
  lastLines: ['[trainer-0] fatal: training diverged at step 9 on rank 0: the loss is NaN'],
};

function hooks(dir: string, lines: string[], used: Checkpoint[], killed: string[]): RollbackHooks {
  return {
    kill: async (name) => void killed.push(name),
    start: () => undefined,
    actors: () => ({ kill: ['trainer-0', 'aggregator-0'], start: () => [] }),
    latestStep: () => 99,
    checkpoints: () => kept(dir),
    use: (cp) => void (cp !== undefined && used.push(cp)),
    log: (l) => void lines.push(l),
  };
}

t.test('nonFiniteIn names the first non-finite value of a shard state or a replica, and accepts finite ones', async (t) => {
  const dir = root(t);
  await writeCheckpoint(dir, 1, { 'ps-0.bin': shardState(0.3), 'data-0.json': new TextEncoder().encode('{"not":"values"}') }, {}, { keep: 10 });
  await writeCheckpoint(dir, 2, { 'ps-0.bin': shardState(Number.NaN) }, {}, { keep: 10 });
  await writeCheckpoint(dir, 3, { 'ps-0.bin': shardState(0.3, Number.POSITIVE_INFINITY) }, {}, { keep: 10 });
  await writeCheckpoint(dir, 4, { 'trainer.bin': trainerState(Number.NEGATIVE_INFINITY) }, {}, { keep: 10 });
  await writeCheckpoint(dir, 5, { 'trainer.bin': trainerState(2) }, {}, { keep: 10 });
  await writeCheckpoint(dir, 6, { 'ps-0.bin': new Uint8Array([0xc1, 1, 2]) }, {}, { keep: 10 });
  const byStep = new Map((await kept(dir)).map((c) => [c.step, c]));
  t.equal(nonFiniteIn(byStep.get(1)!), undefined, 'a finite shard state (the data cursor is not read)');
  t.equal(nonFiniteIn(byStep.get(2)!), 'ps-0.bin: table user, row 1, is NaN');
  t.equal(nonFiniteIn(byStep.get(3)!), 'ps-0.bin: optimizer state user.m[0] is Infinity');
  t.equal(nonFiniteIn(byStep.get(4)!), 'trainer.bin: dense mean[0] is -Infinity');
  t.equal(nonFiniteIn(byStep.get(5)!), undefined, 'a finite replica');
  t.match(nonFiniteIn(byStep.get(6)!), /^ps-0\.bin cannot be read: /, 'a part that does not decode is not restored either');
});

t.test('rollback skips a non-finite newest checkpoint for the next older finite one', async (t) => {
  const dir = root(t);
  await writeCheckpoint(dir, 10, { 'ps-0.bin': shardState(0.3) }, {}, { keep: 5 });
  await writeCheckpoint(dir, 20, { 'ps-0.bin': shardState(Number.NaN) }, {}, { keep: 5 });
  const lines: string[] = [];
  const used: Checkpoint[] = [];
  const killed: string[] = [];
  const d = new DivergenceHandler({ mode: 'rollback', maxRollbacks: 3, lrFactor: 0.5 }, hooks(dir, lines, used, killed));
  d.setConfig({ optimizer: { name: 'sgd', lr: 8 } as never });
  t.same(await d.onExit(exit), { action: 'ignore' }, 'rolled back');
  t.same(
    used.map((c) => c.step),
    [10],
    'the launcher is told to restore step 10',
  );
  t.same(killed, ['trainer-0', 'aggregator-0']);
  t.match(lines.join('\n'), /skipping the checkpoint of step 20 \(ps-0\.bin: table user, row 1, is NaN\)/);
  t.match(lines.join('\n'), /restoring the checkpoint of step 10 and lowering the learning rate 8 → 4/);
  t.match(d.log.rollbacks[0], { fromStep: 10, lrBefore: 8, lrAfter: 4 }, 'metrics.json records the step really restored');
});

t.test('rollback stops with a clear error when no kept checkpoint is finite, and restores nothing', async (t) => {
  const dir = root(t);
  await writeCheckpoint(dir, 10, { 'trainer.bin': trainerState(Number.NaN) }, {}, { keep: 5 });
  await writeCheckpoint(dir, 20, { 'ps-0.bin': shardState(Number.NaN) }, {}, { keep: 5 });
  const used: Checkpoint[] = [];
  const killed: string[] = [];
  const d = new DivergenceHandler({ mode: 'rollback', maxRollbacks: 3, lrFactor: 0.5 }, hooks(dir, [], used, killed));
  d.setConfig({ optimizer: { name: 'sgd', lr: 8 } as never });
  const decision = await d.onExit(exit);
  t.equal(decision?.action, 'fail');
  t.match(
    decision?.action === 'fail' ? decision.why : '',
    /diverged \(training diverged at step 9 on rank 0: the loss is NaN\), and cannot roll back: none of the 2 kept checkpoint\(s\) holds finite values — step 20 \(ps-0\.bin: table user, row 1, is NaN\); step 10 \(trainer\.bin: dense mean\[0\] is NaN\)\. Start again with a lower learning rate/,
  );
  t.same(used, [], 'nothing restored');
  t.same(killed, [], 'nothing stopped');
  t.same(d.log.rollbacks, [], 'no rollback recorded');
});

t.test('rollback with no checkpoint kept yet restarts from the start; without the checkpoints hook, the latest step unchecked', async (t) => {
  const dir = root(t);
  const lines: string[] = [];
  const d = new DivergenceHandler({ mode: 'rollback', maxRollbacks: 3, lrFactor: 0.5 }, hooks(dir, lines, [], []));
  d.setConfig({ optimizer: { name: 'sgd', lr: 2 } as never });
  t.same(await d.onExit(exit), { action: 'ignore' });
  t.match(lines.join('\n'), /restoring the start \(no checkpoint yet\)/);
  const { checkpoints: _c, use: _u, ...plain } = hooks(dir, lines, [], []);
  const old = new DivergenceHandler({ mode: 'rollback', maxRollbacks: 3, lrFactor: 0.5 }, plain);
  old.setConfig({ optimizer: { name: 'sgd', lr: 2 } as never });
  t.same(await old.onExit(exit), { action: 'ignore' });
  t.match(old.log.rollbacks[0], { fromStep: 99 });
});

t.test('the other ranks of a mirrored group, diverging at the same step, join the rollback under way', async (t) => {
  const dir = root(t);
  await writeCheckpoint(dir, 10, { 'trainer.bin': trainerState(1) }, {}, { keep: 5 });
  const killed: string[] = [];
  const d = new DivergenceHandler({ mode: 'rollback', maxRollbacks: 3, lrFactor: 0.5 }, hooks(dir, [], [], killed));
  d.setConfig({ optimizer: { name: 'sgd', lr: 8 } as never });
  const both = await Promise.all([d.onExit(exit), d.onExit({ ...exit, name: 'trainer-1' })]);
  t.same(both, [{ action: 'ignore' }, { action: 'ignore' }]);
  t.equal(d.log.rollbacks.length, 1, 'one rollback, not one per rank');
  t.equal(d.log.lr, 4, 'the learning rate halved once');
});

t.test('a checkpoint restored once is not restored again when training diverges before a newer one: older, then the start', async (t) => {
  const dir = root(t);
  await writeCheckpoint(dir, 4, { 'trainer.bin': trainerState(1) }, {}, { keep: 5 });
  await writeCheckpoint(dir, 6, { 'trainer.bin': trainerState(2) }, {}, { keep: 5 });
  const lines: string[] = [];
  const used: (Checkpoint | undefined)[] = [];
  const h = hooks(dir, lines, [], []);
  const d = new DivergenceHandler({ mode: 'rollback', maxRollbacks: 5, lrFactor: 0.5 }, { ...h, use: (cp) => void used.push(cp) });
  d.setConfig({ optimizer: { name: 'sgd', lr: 8 } as never });
  for (let i = 0; i < 3; i++) t.same(await d.onExit(exit), { action: 'ignore' });
  t.same(
    used.map((c) => c?.step),
    [6, 4, undefined],
    'step 6, then 4, then the start',
  );
  t.same(
    d.log.rollbacks.map((r) => r.fromStep),
    [6, 4, undefined],
  );
  t.match(lines.join('\n'), /skipping the checkpoint of step 6 \(restored before, and training diverged again from it\)/);
  t.match(lines.join('\n'), /rollback 3\/5: restoring the start \(no kept checkpoint left to try\)/);
});

t.test('flush saves what is not on disk yet before the choice; rewind discards the diverged run’s newer checkpoints, whose steps the restored run writes afresh', async (t) => {
  const dir = root(t);
  await writeCheckpoint(dir, 4, { 'trainer.bin': trainerState(1) }, {}, { keep: 10 });
  await writeCheckpoint(dir, 6, { 'trainer.bin': trainerState(2) }, {}, { keep: 10 });
  const order: string[] = [];
  const used: (number | undefined)[] = [];
  const flushes: (number | undefined)[] = [8, undefined, 8, undefined];
  const h = hooks(dir, [], [], []);
  const d = new DivergenceHandler(
    { mode: 'rollback', maxRollbacks: 5, lrFactor: 0.5 },
    {
      ...h,
      kill: async (name) => void order.push(`kill ${name}`),
      use: (cp) => void used.push(cp?.step),
      // The replica the aggregator holds, saved just before the choice (the checkpointer's take).
      flush: async () => {
        const step = flushes.shift();
        if (step !== undefined) await writeCheckpoint(dir, step, { 'trainer.bin': trainerState(step) }, {}, { keep: 10 });
      },
      rewind: async (step) => {
        order.push(`rewind ${step ?? 'start'}`);
        await discardCheckpointsAfter(dir, step ?? -1);
      },
    },
  );
  d.setConfig({ optimizer: { name: 'sgd', lr: 8 } as never });
  t.same(await d.onExit(exit), { action: 'ignore' });
  t.same(order, ['kill trainer-0', 'kill aggregator-0', 'rewind 8'], 'the flushed step 8 is restored; the rewind comes once the diverged actors are gone');
  t.same(await d.onExit(exit), { action: 'ignore' });
  t.same(
    (await kept(dir)).map((c) => c.step),
    [6, 4],
    'restored 8 diverged again: 6 restored, and 8 (of the diverged run) removed',
  );
  t.same(await d.onExit(exit), { action: 'ignore' });
  t.same(used, [8, 6, 8], 'the restored run’s own step 8 is a new checkpoint, restored though an older run’s step 8 was');
  t.same(await d.onExit(exit), { action: 'ignore' });
  t.same(used, [8, 6, 8, 4], 'then 4: 6 was restored once already');
  t.same(await d.onExit(exit), { action: 'ignore' });
  t.same(used.at(-1), undefined, 'every kept one restored and diverged again: the start');
  t.same(await kept(dir), [], 'and nothing of the diverged runs is left to resume from');
});
