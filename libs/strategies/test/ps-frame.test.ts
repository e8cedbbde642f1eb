// The shard's row-frame paths: pullFrame answers exactly what pull does (rows gathered straight
// into the frame), refuses what pull refuses, and a gradient row frame applies exactly like the
// msgpack push it replaces.
import t from 'tap';
import { BiasedMF } from '@actorflow/models';
import { HandlerError } from '@actorflow/bus';
import { decodeGradient, decodePullReplyFrame, encodeGradientFrame, gradientCodec } from '@actorflow/protocol';
import { ParameterShard, ownerOfDense, ownerOfRow } from '../mod.ts';

const model = new BiasedMF({ numUsers: 40, numItems: 30, dim: 3, initStd: 0.1, globalMean: 3 });
const optimizer = { name: 'adam', lr: 0.01 } as const;

t.test('pullFrame == pull, bit for bit, on one and on two shards', (t) => {
  for (const of of [1, 2]) {
    const ps = new ParameterShard({ model, shard: 0, of, seed: 1, optimizer });
    const user = Int32Array.from(Array.from({ length: 40 }, (_, r) => r).filter((r) => ownerOfRow('user', r, of) === 0)).reverse();
    const dense = ownerOfDense('mean', of) === 0 ? ['mean'] : [];
    const want = ps.pull({ user }, dense);
    const got = decodePullReplyFrame(ps.pullFrame({ user }, dense));
    t.equal(got.version, want.version);
    t.same(Array.from(got.tables.user.rows), Array.from(user));
    t.equal(got.tables.user.dim, 3);
    t.same(Buffer.from(got.tables.user.values.buffer, got.tables.user.values.byteOffset, got.tables.user.values.byteLength), Buffer.from(want.tables.user.values.buffer));
    t.same(Object.keys(got.dense), dense);
  }
  t.end();
});

t.test('pullFrame refuses unknown tables, rows out of range and foreign rows', (t) => {
  const ps = new ParameterShard({ model, shard: 0, of: 2, seed: 1, optimizer });
  const foreign = Array.from({ length: 40 }, (_, r) => r).find((r) => ownerOfRow('user', r, 2) === 1) as number;
  for (const [what, req] of [
    ['unknown table', { nope: new Int32Array([0]) }],
    ['row out of range', { user: new Int32Array([40]) }],
    ['negative row', { user: new Int32Array([-1]) }],
    ['foreign row', { user: new Int32Array([foreign]) }],
  ] as const) {
    t.throws(() => ps.pullFrame(req, []), HandlerError, what);
  }
  t.throws(() => ps.pullFrame({}, ['nope']), HandlerError, 'unknown dense');
  t.end();
});

t.test('a gradient row frame applies exactly like the msgpack push', (t) => {
  const a = new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer });
  const b = new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer });
  for (let step = 0; step < 3; step++) {
    const g = {
      job: 'j',
      rank: 0,
      step,
      paramVersion: step,
      count: 2,
      loss: 1,
      dense: { mean: new Float32Array([0.1 * step]) },
      sparse: { user: { rows: new Int32Array([1, 5, 7]), values: Float32Array.from({ length: 9 }, (_, i) => Math.sin(i + step)) } },
      pushId: `0:0:${step}`,
    };
    const viaFrame = decodeGradient(encodeGradientFrame(g));
    const viaMsgpack = decodeGradient(gradientCodec.encode(g));
    a.push({ sparse: viaFrame.sparse, dense: viaFrame.dense }, viaFrame.paramVersion, viaFrame.rank, viaFrame.pushId);
    b.push({ sparse: viaMsgpack.sparse, dense: viaMsgpack.dense }, viaMsgpack.paramVersion, viaMsgpack.rank, viaMsgpack.pushId);
  }
  t.same(
    Buffer.from(a.params.tables.user.data.buffer, a.params.tables.user.data.byteOffset, a.params.tables.user.data.byteLength),
    Buffer.from(b.params.tables.user.data.buffer, b.params.tables.user.data.byteOffset, b.params.tables.user.data.byteLength),
  );
  t.same(Array.from(a.params.dense.mean), Array.from(b.params.dense.mean));
  t.end();
});
