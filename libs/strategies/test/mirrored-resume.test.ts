import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { ProcessGroup } from '@actorflow/collectives';
import { selectBackend, type Engine } from '@actorflow/engine';
import { EpochIterator, lowRankRatings, takeBatch, type RatingsBatch } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import { BiasedMF } from '@actorflow/models';
import { DecodeError, encodeMsg, trainerStateCodec, type TrainerState } from '@actorflow/protocol';
import { TrainerStateError, runMirroredTrainer, storeToSnapshot, type ParamStore } from '../mod.ts';

const data = lowRankRatings({ users: 80, items: 60, perUser: 20, seed: 8 });
const train = data.ratings;
const makeModel = (dim = 4) => new BiasedMF({ numUsers: 80, numItems: 60, dim, initStd: 0.1, globalMean: 3.5 });
const B = 48;
const EPOCHS = 2;

/** Rank `rank`'s item of every global step (an empty batch when its slice is empty), from (epoch, step) on. */
function* rankBatches(rank: number, worldSize: number, from = { epoch: 0, step: 0 }): Generator<{ epoch: number; batch: RatingsBatch }> {
  const it = new EpochIterator({ rows: train.length, batchSize: B, seed: 9, rank, worldSize });
  for (let e = from.epoch; e < EPOCHS; e++) {
    const batches = [...it.batches(e)];
    for (let s = e === from.epoch ? from.step : 0; s < it.globalBatchCount(); s++) yield { epoch: e, batch: takeBatch(train, batches[s] ?? new Int32Array(0)) };
  }
}

function* take<T>(n: number, xs: Iterable<T>): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const x of xs) {
    yield x;
    if (++i >= n) return;
  }
}

interface Run {
  params: ParamStore;
  steps: number;
  final: TrainerState;
  /** TrainerState bytes captured by rank 0's onParams at `captureAt`. */
  captured?: Uint8Array;
}

async function runGroup(
  url: string,
  engine: Engine,
  job: string,
  worldSize: number,
  optimizer: OptimizerConfig,
  data: (rank: number) => Iterable<{ epoch: number; batch: RatingsBatch }>,
  o: { resume?: TrainerState; captureAt?: number } = {},
): Promise<Run[]> {
  const ranks = Array.from({ length: worldSize }, (_, r) => r);
  const ncs = await Promise.all(ranks.map(() => connect({ servers: [url] })));
  const groups = await Promise.all(ranks.map((rank) => ProcessGroup.init({ nc: ncs[rank], job, worldSize, rank, timeoutMs: 20_000 })));
  try {
    return await Promise.all(
      ranks.map(async (rank) => {
        let captured: Uint8Array | undefined;
        const r = await runMirroredTrainer({
          pg: groups[rank],
          engine,
          model: makeModel(),
          data: data(rank),
          optimizer,
          // Rank 1's own seed differs: a fresh run broadcasts rank 0's init, a resumed one loads the state on every rank.
          seed: rank === 0 ? 9 : 777,
          // Each run has its own group (job id); the states carry one job name so they compare whole.
          job: 'resume-test',
          ...(o.resume !== undefined ? { resume: o.resume } : {}),
          onParams: (step, _params, state) => {
            if (step === o.captureAt) captured = trainerStateCodec.encode(state());
            return undefined;
          },
        });
        return { params: r.params, steps: r.steps, final: r.state(), ...(captured !== undefined ? { captured } : {}) };
      }),
    );
  } finally {
    for (const g of groups) g.destroy();
    for (const nc of ncs) await nc.close();
  }
}

const sameParams = (a: ParamStore, b: ParamStore): boolean =>
  Object.keys(a.tables).every((k) =>
    Buffer.from(a.tables[k].data.buffer, a.tables[k].data.byteOffset, a.tables[k].data.byteLength).equals(
      Buffer.from(b.tables[k].data.buffer, b.tables[k].data.byteOffset, b.tables[k].data.byteLength),
    ),
  ) &&
  Object.keys(a.dense).every((k) => Buffer.from(a.dense[k].buffer, a.dense[k].byteOffset, a.dense[k].byteLength).equals(Buffer.from(b.dense[k].buffer, b.dense[k].byteOffset, b.dense[k].byteLength)));

for (const [worldSize, optimizer] of [
  [1, { name: 'adam', lr: 0.01, l2: 1e-4 }],
  [2, { name: 'adam', lr: 0.01, l2: 1e-4 }],
  [2, { name: 'sgd', lr: 0.3, momentum: 0.5 }],
] as const) {
  t.test(`mirrored resume (${worldSize} rank(s), ${optimizer.name}): N steps, state, M more = N + M uninterrupted, bit for bit`, async (t) => {
    const server = await NatsServer.start({ maxPayload: 64 * 1024 });
    t.teardown(() => server.stop());
    const engine = await selectBackend({ backend: 'cpu' });
    const perEpoch = new EpochIterator({ rows: train.length, batchSize: B, seed: 9, worldSize }).globalBatchCount();
    const straight = await runGroup(server.url, engine, `st${worldSize}${optimizer.name}`, worldSize, optimizer, (r) => rankBatches(r, worldSize));
    t.equal(straight[0].steps, EPOCHS * perEpoch);
    t.equal(straight[0].final.epoch, EPOCHS - 1);
    t.equal(straight[0].final.stepInEpoch, perEpoch);
    // Stop mid-epoch 1, and exactly at the end of epoch 0 (the resumed data starts with the next epoch).
    for (const N of [perEpoch + 5, perEpoch, 3]) {
      const first = await runGroup(server.url, engine, `a${worldSize}${optimizer.name}${N}`, worldSize, optimizer, (r) => take(N, rankBatches(r, worldSize)), { captureAt: N });
      t.equal(first[0].steps, N);
      const bytes = first[0].captured;
      t.ok(bytes !== undefined, 'onParams gave the state at step N');
      if (bytes === undefined) return;
      t.same(bytes, trainerStateCodec.encode(first[0].final), 'the state at N equals the final state of the stopped run');
      const state = trainerStateCodec.decode(bytes);
      t.equal(state.step, N);
      t.equal(state.worldSize, worldSize);
      t.same([state.epoch, state.stepInEpoch], [Math.floor((N - 1) / perEpoch), N - Math.floor((N - 1) / perEpoch) * perEpoch], `N=${N}: epoch and steps done in it`);
      const resumed = await runGroup(
        server.url,
        engine,
        `b${worldSize}${optimizer.name}${N}`,
        worldSize,
        optimizer,
        (r) => rankBatches(r, worldSize, { epoch: state.epoch, step: state.stepInEpoch }),
        {
          resume: state,
        },
      );
      t.equal(resumed[0].steps, EPOCHS * perEpoch, `N=${N}: steps count on from the state`);
      t.ok(sameParams(resumed[0].params, straight[0].params), `N=${N}: parameters identical bit for bit`);
      if (worldSize > 1) t.ok(sameParams(resumed[1].params, resumed[0].params), `N=${N}: replicas identical`);
      t.same(trainerStateCodec.encode(resumed[0].final), trainerStateCodec.encode(straight[0].final), `N=${N}: the whole final state (optimizer moments, step counts, epoch) identical`);
      t.same(storeToSnapshot('j', N, resumed[0].params).tables.user.values, straight[0].params.tables.user.data, 'storeToSnapshot still works');
    }
  });
}

t.test('a state that does not fit the model is refused, naming the mismatch', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const engine = await selectBackend({ backend: 'cpu' });
  const [run] = await runGroup(server.url, engine, 'fit', 1, { name: 'adam', lr: 0.01 }, (r) => take(2, rankBatches(r, 1)));
  const state = run.final;
  const nc = await connect({ servers: [server.url] });
  const pg = await ProcessGroup.init({ nc, job: 'fit2', worldSize: 1, rank: 0, timeoutMs: 5000 });
  t.teardown(async () => {
    pg.destroy();
    await nc.close();
  });
  const attempt = (model: BiasedMF, resume: TrainerState) => runMirroredTrainer({ pg, engine, model, data: [], optimizer: { name: 'adam', lr: 0.01 }, seed: 9, resume });
  await t.rejects(attempt(makeModel(5), state), TrainerStateError);
  await t.rejects(attempt(makeModel(5), state), /table item is 60 × 4 in the state, 60 × 5 in the model/);
  const noTable = { ...state, params: { ...state.params, tables: { user: state.params.tables.user } } };
  await t.rejects(attempt(makeModel(), noTable), /the state has tables \[user\]/);
  await t.rejects(attempt(makeModel(), { ...state, params: { ...state.params, dense: {} } }), /dense tensors \[\]/);
  await t.rejects(attempt(makeModel(), { ...state, params: { ...state.params, dense: { mean: new Float32Array(2) } } }), /dense mean has 2 values/);
  await t.rejects(attempt(makeModel(), { ...state, optimizer: { ...state.optimizer, user: { ...state.optimizer.user, steps: new Int32Array(1) } } }), /optimizer state 'user'/);
  // The codec refuses what does not hang together.
  t.throws(() => trainerStateCodec.decode(encodeMsg({ ...state, format: 7 })), /format 7 is not supported/);
  t.throws(() => trainerStateCodec.decode(encodeMsg({ ...state, optimizer: { nope: state.optimizer.user } })), /not among the parameters/);
  t.throws(
    () => trainerStateCodec.decode(encodeMsg({ ...state, params: { ...state.params, tables: { ...state.params.tables, user: { rows: 3, dim: 4, data: new Float32Array(1) } } } })),
    /values != 3 rows/,
  );
  t.throws(
    () => trainerStateCodec.decode(encodeMsg({ ...state, optimizer: { ...state.optimizer, user: { ...state.optimizer.user, m: new Float32Array(1), v: new Float32Array(1) } } })),
    /moments for a parameter/,
  );
  t.throws(() => trainerStateCodec.decode(new Uint8Array([0x90])), DecodeError);
});
