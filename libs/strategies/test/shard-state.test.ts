import t from 'tap';
import { NatsServer, connect, requestLarge } from '@actorflow/bus';
import { Rng } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import { BiasedMF } from '@actorflow/models';
import { DecodeError, encodeMsg, gradientCodec, pushReplyCodec, shardStateCodec, subjects, type ShardState } from '@actorflow/protocol';
import { PUSH_ID_MEMORY, ParameterShard, ShardStateError, ownerOfDense, parseStaleness, servePsShard, type StalenessPolicy } from '../internal_mod.ts';

const makeModel = (dim = 3) => new BiasedMF({ numUsers: 60, numItems: 45, dim, initStd: 0.1, globalMean: 3.2 });
type Grad = { sparse: Record<string, { rows: Int32Array; values: Float32Array }>; dense: Record<string, Float32Array> };

/** A seeded stream of pushes to one shard: random owned rows of every table, and the owned dense tensors. */
function gradients(shard: ParameterShard, seed: number): (i: number) => Grad {
  return (i) => {
    const rng = new Rng(seed * 1000 + i);
    const sparse: Grad['sparse'] = {};
    for (const [name, table] of Object.entries(shard.params.tables)) {
      const owned = shard.ownedRows(name);
      const rows = Int32Array.from(new Set(Array.from({ length: 6 }, () => owned[Math.floor(rng.nextFloat() * owned.length)]))).sort();
      sparse[name] = { rows, values: Float32Array.from({ length: rows.length * table.dim }, () => rng.normal() * 0.5) };
    }
    const dense: Grad['dense'] = {};
    for (const [name, v] of Object.entries(shard.params.dense)) if (ownerOfDense(name, shard.of) === shard.shard) dense[name] = v.map(() => rng.normal());
    return { sparse, dense };
  };
}

/** Pushes i in [from, to) from two alternating ranks, one step stale every third push (exercises scale/drop and the clocks). */
function train(shard: ParameterShard, grad: (i: number) => Grad, from: number, to: number): void {
  for (let i = from; i < to; i++) shard.push(grad(i), Math.max(0, shard.version - (i % 3 === 0 ? 1 : 0)), i % 2);
}

const optimizers: [string, OptimizerConfig, StalenessPolicy][] = [
  ['adam', { name: 'adam', lr: 0.01, l2: 1e-4 }, parseStaleness('scale')],
  ['dense adam', { name: 'adam', lr: 0.01, dense: true }, parseStaleness('none')],
  ['sgd+momentum', { name: 'sgd', lr: 0.05, momentum: 0.9 }, parseStaleness('drop:0')],
  ['adagrad', { name: 'adagrad', lr: 0.1 }, parseStaleness('none')],
  ['rmsprop', { name: 'rmsprop', lr: 0.01 }, parseStaleness('bound:2')],
];

for (const [what, optimizer, staleness] of optimizers) {
  t.test(`${what}: export, restore into a new shard, continue = never stopped, bit for bit`, async (t) => {
    for (const [k, K] of [
      [0, 1],
      [1, 2],
    ]) {
      const make = (restore?: Uint8Array) => new ParameterShard({ model: makeModel(), shard: k, of: K, seed: 5, optimizer, staleness, ...(restore !== undefined ? { restore } : {}) });
      const N = 17;
      const M = 23;
      const straight = make();
      const grad = gradients(straight, 3 + k);
      train(straight, grad, 0, N + M);

      const first = make();
      train(first, grad, 0, N);
      const saved = first.exportState();
      const decoded: ShardState = shardStateCodec.decode(saved);
      t.equal(decoded.version, first.version);
      t.equal(decoded.shard, k);
      train(first, grad, N, N + 5); // the exported bytes are a copy: training on does not change them
      t.same(shardStateCodec.decode(saved), decoded);

      const resumed = make(saved);
      t.equal(resumed.version, decoded.version, 'version restored');
      t.same(resumed.stats.pushes, decoded.pushes);
      train(resumed, grad, N, N + M);
      t.equal(resumed.version, straight.version, `K=${K}: same version`);
      t.same(resumed.snapshot('j', 0), straight.snapshot('j', 0), `K=${K}: owned parameters identical`);
      t.same(resumed.exportState(), straight.exportState(), `K=${K}: the whole state (parameters, optimizer moments, step counts, counters, clocks) identical`);
      t.equal(resumed.stats.dropped, straight.stats.dropped);
      // restoreState on an existing shard works the same way as the constructor option.
      const later = make();
      later.restoreState(saved);
      t.same(later.exportState(), saved);
    }
  });
}

t.test('a state that does not fit is refused with what differs, and nothing changes', async (t) => {
  const optimizer = { name: 'adam', lr: 0.01 } as const;
  // The shard that owns the dense tensor (the global mean), so its state has dense parts to get wrong.
  const k = ownerOfDense('mean', 2);
  const a = new ParameterShard({ model: makeModel(), shard: k, of: 2, seed: 5, optimizer });
  train(a, gradients(a, 1), 0, 5);
  const saved = a.exportState();
  const target = () => new ParameterShard({ model: makeModel(), shard: k, of: 2, seed: 5, optimizer });
  const cases: [string, () => ParameterShard, RegExp][] = [
    ['another shard', () => new ParameterShard({ model: makeModel(), shard: 1 - k, of: 2, seed: 5, optimizer }), new RegExp(`state is of shard ${k} of 2, this is shard ${1 - k} of 2`)],
    ['another shard count', () => new ParameterShard({ model: makeModel(), shard: k, of: 3, seed: 5, optimizer }), new RegExp(`shard ${k} of 2, this is shard ${k} of 3`)],
    ['another optimizer', () => new ParameterShard({ model: makeModel(), shard: k, of: 2, seed: 5, optimizer: { name: 'sgd' } }), /optimizer is adam, this shard's is sgd/],
    ['another shape', () => new ParameterShard({ model: makeModel(4), shard: k, of: 2, seed: 5, optimizer }), /table item is 45 × 3 in the state, 45 × 4 in the model/],
    [
      'another model',
      () => new ParameterShard({ model: new BiasedMF({ numUsers: 61, numItems: 45, dim: 3, initStd: 0.1, globalMean: 3 }), shard: k, of: 2, seed: 5, optimizer }),
      /table user(Bias)? is 60 × \d in the state, 61 × \d in the model/,
    ],
  ];
  for (const [what, make, message] of cases) {
    const s = make();
    const before = s.exportState();
    const err = (() => {
      try {
        s.restoreState(saved);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.type(err, ShardStateError, what);
    t.match((err as Error).message, message, what);
    t.match((err as Error).message, /restore each shard from its own part/);
    t.same(s.exportState(), before, `${what}: nothing changed`);
  }
  const decoded = shardStateCodec.decode(saved);
  const tamper = (f: (s: Record<string, unknown>) => Record<string, unknown>) => encodeMsg(f({ ...decoded }));
  const bad: [string, Uint8Array, RegExp][] = [
    ['garbage', new Uint8Array([1, 2, 3]), /cannot decode ShardState/],
    ['format 2', tamper((s) => ({ ...s, format: 2 })), /format 2 is not supported/],
    ['missing table', tamper((s) => ({ ...s, tables: { user: decoded.tables.user } })), /no table 'item' in this state|tables \[user\]/],
    [
      'other owned rows',
      tamper((s) => ({ ...s, tables: { ...decoded.tables, user: { ...decoded.tables.user, owned: decoded.tables.user.owned.map((r) => r + 1) } } })),
      /not the \d+ this shard owns|ascending rows/,
    ],
    ['missing dense', tamper((s) => ({ ...s, dense: {}, slots: Object.fromEntries(Object.entries(decoded.slots).filter(([n]) => !n.startsWith('dense:'))) })), /dense tensors/],
    ['short values', tamper((s) => ({ ...s, tables: { ...decoded.tables, user: { ...decoded.tables.user, values: new Float32Array(1) } } })), /values != \d+ owned rows/],
    ['short moments', tamper((s) => ({ ...s, slots: { ...decoded.slots, user: { ...decoded.slots.user, m: new Float32Array(1), v: new Float32Array(1) } } })), /moments/],
    ['bad clock', tamper((s) => ({ ...s, clocks: { x: 1 } })), /clock of a rank/],
    ['shard past count', tamper((s) => ({ ...s, shard: 2 })), /shard 2 is not below the shard count 2/],
  ];
  for (const [what, bytes, message] of bad) {
    const s = target();
    const err = (() => {
      try {
        s.restoreState(bytes);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.type(err, ShardStateError, what);
    t.match((err as Error).message, message, what);
    t.equal(s.version, 0, `${what}: nothing changed`);
  }
  t.throws(() => shardStateCodec.decode(new Uint8Array([0xc1])), DecodeError);
  t.throws(() => new ParameterShard({ model: makeModel(), shard: 1 - k, of: 2, seed: 5, optimizer, restore: saved }), ShardStateError, 'the constructor option validates too');
});

t.test('idempotent push: a known pushId returns the first reply and applies nothing', async (t) => {
  const shard = new ParameterShard({ model: makeModel(), shard: 0, of: 1, seed: 5, optimizer: { name: 'adam', lr: 0.01 } });
  const grad = gradients(shard, 9);
  const r1 = shard.push(grad(0), 0, 0, 'r0:1');
  const after = shard.exportState();
  const r2 = shard.push(grad(0), 0, 0, 'r0:1');
  t.same(r2, r1, 'same reply');
  t.same(shard.exportState(), after, 'nothing applied');
  t.equal(shard.stats.duplicates, 1);
  t.equal(shard.stats.pushes, 1);
  // Without an id every push applies; a rejected push is not remembered (its retry is rejected again).
  shard.push(grad(1), 1, 0);
  t.equal(shard.stats.pushes, 2);
  t.throws(() => shard.push(grad(2), 99, 0, 'r0:bad'), /BAD_VERSION/);
  t.throws(() => shard.push(grad(2), 99, 0, 'r0:bad'), /BAD_VERSION/);
  t.equal(shard.stats.duplicates, 1);
  // The memory is bounded: the oldest ids are forgotten.
  for (let i = 0; i < PUSH_ID_MEMORY; i++) shard.push(grad(3), shard.version, 1, `r1:${i}`);
  const pushes = shard.stats.pushes;
  shard.push(grad(3), shard.version, 1, `r1:${PUSH_ID_MEMORY - 1}`);
  t.equal(shard.stats.pushes, pushes, 'a recent id is still known');
  shard.push(grad(3), shard.version, 0, 'r0:1');
  t.equal(shard.stats.pushes, pushes + 1, 'an id older than the memory applies again');
  // A restore to an earlier state forgets the ids: the pushes they stood for were undone.
  const saved = shard.exportState();
  shard.push(grad(4), shard.version, 0, 'r0:after');
  shard.restoreState(saved);
  const version = shard.version;
  shard.push(grad(4), shard.version, 0, 'r0:after');
  t.equal(shard.version, version + 1, 'a push retried after a restore applies again');
});

t.test('servePsShard: state on <job>.ps.<k>.state, pushId through the wire', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const shard = new ParameterShard({ model: makeModel(), shard: 1, of: 2, seed: 5, optimizer: { name: 'adam', lr: 0.01 } });
  const subs = servePsShard(nc, 'st', shard);
  await nc.flush();
  const grad = gradients(shard, 4)(0);
  const push = async (pushId: string) =>
    pushReplyCodec.decode(
      await requestLarge(nc, subjects.psPush('st', 1, 0), gradientCodec.encode({ job: 'st', rank: 0, step: 0, paramVersion: 0, count: 1, loss: 0, ...grad, pushId }), { timeoutMs: 5000 }),
    );
  const a = await push('r0:0:1');
  const b = await push('r0:0:1');
  t.same(b, a);
  t.equal(shard.stats.pushes, 1);
  t.equal(shard.stats.duplicates, 1);
  const state = await requestLarge(nc, subjects.psState('st', 1), new Uint8Array(0), { timeoutMs: 5000 });
  t.same(state, shard.exportState(), 'the served state is exportState()');
  const restored = new ParameterShard({ model: makeModel(), shard: 1, of: 2, seed: 5, optimizer: { name: 'adam', lr: 0.01 }, restore: state });
  t.same(restored.snapshot('st', 0), shard.snapshot('st', 0));
  for (const s of subs) s.unsubscribe();
});
