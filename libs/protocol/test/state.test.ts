import t from 'tap';
import { DecodeError, SHARD_STATE_FORMAT, TRAINER_STATE_FORMAT, encodeMsg, shardStateCodec, trainerStateCodec, type ShardState, type TrainerState } from '../mod.ts';

const shard: ShardState = {
  format: SHARD_STATE_FORMAT,
  shard: 1,
  of: 2,
  optimizer: 'adam',
  version: 7,
  pushes: 7,
  dropped: 1,
  tables: { user: { rows: 10, dim: 2, owned: Int32Array.from([1, 4, 9]), values: new Float32Array(6).fill(0.5) } },
  dense: { mean: Float32Array.from([3.5]) },
  slots: {
    user: { m: new Float32Array(6).fill(0.1), v: new Float32Array(6).fill(0.2), steps: Int32Array.from([1, 2, 3]) },
    'dense:mean': { m: Float32Array.from([0.3]), v: Float32Array.from([0.4]), steps: Int32Array.from([7]) },
  },
  clocks: { '0': 3, '1': 4 },
};

const trainer: TrainerState = {
  format: TRAINER_STATE_FORMAT,
  job: 'j',
  worldSize: 2,
  step: 12,
  epoch: 1,
  stepInEpoch: 4,
  params: { tables: { item: { rows: 3, dim: 2, data: new Float32Array(6).fill(1) } }, dense: { mean: Float32Array.from([3]) } },
  optimizer: {
    item: { m: new Float32Array(6), v: new Float32Array(6), steps: new Int32Array(3) },
    'dense:mean': { m: new Float32Array(1), v: new Float32Array(1), steps: new Int32Array(1) },
  },
};

t.test('ShardState round trip, typed arrays binary', async (t) => {
  const back = shardStateCodec.decode(shardStateCodec.encode(shard));
  t.same(back, shard);
  t.type(back.tables.user.owned, Int32Array);
  t.type(back.slots.user.m, Float32Array);
});

t.test('ShardState: what does not hang together is a DecodeError naming it', async (t) => {
  const bad = (patch: Record<string, unknown>) => encodeMsg({ ...shard, ...patch });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ format: 2 }, /format 2 is not supported/],
    [{ shard: 2 }, /shard 2 is not below the shard count 2/],
    [{ tables: { user: { ...shard.tables.user, values: new Float32Array(5) } } }, /5 values != 3 owned rows × dim 2/],
    [{ tables: { user: { ...shard.tables.user, owned: Int32Array.from([4, 1, 9]) } } }, /owned must be ascending rows in 0…9/],
    [{ tables: { user: { ...shard.tables.user, owned: Int32Array.from([1, 4, 10]) } } }, /owned must be ascending/],
    [{ slots: { ...shard.slots, user: { ...shard.slots.user, v: new Float32Array(1) } } }, /v has 1 values, m 6/],
    [{ slots: { ...shard.slots, user: { ...shard.slots.user, steps: new Int32Array(1) } } }, /1 step counts for 3 owned rows/],
    [{ slots: { ...shard.slots, item: shard.slots.user } }, /no table 'item' in this state/],
    [{ slots: { ...shard.slots, 'dense:bias': shard.slots['dense:mean'] } }, /no dense tensor 'bias'/],
    [{ slots: { ...shard.slots, 'dense:mean': { ...shard.slots['dense:mean'], steps: new Int32Array(2) } } }, /step counts for a dense tensor of 1/],
    [{ clocks: { '0': -1 } }, /clock of a rank/],
    [{ clocks: { r0: 1 } }, /clock of a rank/],
    [{ optimizer: 5 }, /field 'optimizer' must be a string/],
  ];
  for (const [patch, message] of cases) t.throws(() => shardStateCodec.decode(bad(patch)), { name: 'DecodeError', message }, JSON.stringify(Object.keys(patch)));
  t.throws(() => shardStateCodec.decode(new Uint8Array(0)), DecodeError);
});

t.test('TrainerState round trip and validation', async (t) => {
  t.same(trainerStateCodec.decode(trainerStateCodec.encode(trainer)), trainer);
  const bad = (patch: Record<string, unknown>) => encodeMsg({ ...trainer, ...patch });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ format: 0 }, /field 'format' must be an integer >= 1/],
    [{ format: 3 }, /format 3 is not supported/],
    [{ worldSize: 0 }, /worldSize/],
    [{ params: { ...trainer.params, tables: { item: { rows: 3, dim: 2, data: new Float32Array(5) } } } }, /5 values != 3 rows × dim 2/],
    [{ optimizer: { ...trainer.optimizer, user: trainer.optimizer.item } }, /optimizer state for 'user', which is not among the parameters/],
    [{ optimizer: { ...trainer.optimizer, 'dense:bias': trainer.optimizer['dense:mean'] } }, /'dense:bias', which is not among/],
    [{ optimizer: { ...trainer.optimizer, item: { ...trainer.optimizer.item, m: new Float32Array(2), v: new Float32Array(2) } } }, /2 moments for a parameter of 6/],
    [{ params: null }, /params is not a map/],
  ];
  for (const [patch, message] of cases) t.throws(() => trainerStateCodec.decode(bad(patch)), { name: 'DecodeError', message }, JSON.stringify(Object.keys(patch)));
});
