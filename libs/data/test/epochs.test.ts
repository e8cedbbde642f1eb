import t from 'tap';
import fc from 'fast-check';
import { EpochIterator, Rng, deriveSeed, hash32, shardByRow, shardByUser, shardOf, takeBatch, takeShard, lowRankRatings } from '../mod.ts';

t.test('Rng is deterministic and roughly uniform', async (t) => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 1000 }, () => a.nextUint32());
  t.same(
    xs,
    Array.from({ length: 1000 }, () => b.nextUint32()),
  );
  const r = new Rng(7);
  const buckets = new Int32Array(10);
  for (let i = 0; i < 100_000; i++) buckets[r.nextInt(10)]++;
  t.ok(
    buckets.every((c) => c > 9500 && c < 10500),
    `buckets ${[...buckets]}`,
  );
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < 50_000; i++) {
    const z = r.normal();
    sum += z;
    sq += z * z;
  }
  t.ok(Math.abs(sum / 50_000) < 0.02 && Math.abs(sq / 50_000 - 1) < 0.03, 'normal(0,1)');
  t.not(deriveSeed(1, 'epoch', 0), deriveSeed(1, 'epoch', 1));
  t.equal(deriveSeed(1, 'x'), deriveSeed(1, 'x'));
  t.throws(() => r.nextInt(0), RangeError);
  const p = r.permutation(100);
  t.same(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  t.equal(hash32(5), hash32(5));
});

t.test('epochs: a new permutation per epoch, identical for every node', async (t) => {
  const it = new EpochIterator({ rows: 1000, batchSize: 64, seed: 5 });
  t.same(it.order(0), new EpochIterator({ rows: 1000, batchSize: 64, seed: 5 }).order(0));
  t.not([...it.order(0)].join(), [...it.order(1)].join());
  const seen = new Uint8Array(1000);
  let batches = 0;
  for (const b of it.batches(0)) {
    batches++;
    for (const i of b) seen[i]++;
  }
  t.equal(batches, Math.ceil(1000 / 64));
  t.ok(
    seen.every((c) => c === 1),
    'every row once per epoch',
  );
  const dropped = new EpochIterator({ rows: 1000, batchSize: 64, seed: 5, dropRemainder: true });
  t.equal([...dropped.batches(0)].length, 15);
  t.same([...new EpochIterator({ rows: 5, batchSize: 2, seed: 1, shuffle: false }).order(0)], [0, 1, 2, 3, 4]);
  t.throws(() => new EpochIterator({ rows: 5, batchSize: 0, seed: 1 }), /batch size/);
  t.throws(() => new EpochIterator({ rows: 5, batchSize: 1, seed: 1, rank: 2, worldSize: 2 }), /rank must be/);
});

t.test('property: distributed ranks are disjoint and their union is the single-process batch', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 4 }), fc.integer(), (rows, B, W, seed) => {
      const single = [...new EpochIterator({ rows, batchSize: B * W, seed }).batches(0)];
      const ranks = Array.from({ length: W }, (_, r) => [...new EpochIterator({ rows, batchSize: B, seed, rank: r, worldSize: W }).batches(0)]);
      for (let step = 0; step < single.length; step++) {
        const union = ranks.flatMap((rb) => (rb[step] !== undefined ? [...rb[step]] : []));
        if (union.join() !== [...single[step]].join()) return false;
      }
      return ranks.every((rb) => rb.length <= single.length);
    }),
  );
  t.pass();
});

t.test('sharding: disjoint, complete, users kept together', async (t) => {
  const r = lowRankRatings({ users: 100, items: 50, perUser: 10, seed: 1 }).ratings;
  const byRow = shardByRow(r, 3);
  t.equal(
    byRow.reduce((s, x) => s + x.length, 0),
    r.length,
  );
  const byUser = shardByUser(r, 3);
  for (let k = 0; k < 3; k++) t.ok([...byUser[k].user].every((u) => shardOf(u, 3) === k));
  t.equal(takeShard(r, 1, 3).length, byRow[1].length);
  t.equal(takeShard(r, 2, 3, 'user').length, byUser[2].length);
  t.throws(() => takeShard(r, 3, 3), /shard index/);
  t.throws(() => shardByRow(r, 0), /positive integer/);
  const batch = takeBatch(r, new Int32Array([2, 0]));
  t.same([batch.user[0], batch.item[1]], [r.user[2], r.item[0]]);
});
