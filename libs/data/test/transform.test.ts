import t from 'tap';
import { IdMap, describe, filterMinCounts, formatSummary, selectRows, toImplicit, groupByUser, type Ratings } from '../mod.ts';

const r = (rows: [number, number, number][], ts = false): Ratings => ({
  user: Int32Array.from(rows, (x) => x[0]),
  item: Int32Array.from(rows, (x) => x[1]),
  rating: Float32Array.from(rows, (x) => x[2]),
  ...(ts ? { timestamp: Float64Array.from(rows, (_, i) => i) } : {}),
  length: rows.length,
});

t.test('IdMap encodes contiguously and round-trips', async (t) => {
  const m = new IdMap();
  t.equal(m.encode(42), 0);
  t.equal(m.encode('x'), 1);
  t.equal(m.encode(42), 0);
  t.equal(m.decode(1), 'x');
  t.equal(m.get(7), undefined);
  t.throws(() => m.decode(9), /not in this id map/);
  const back = IdMap.fromJSON(JSON.parse(JSON.stringify(m)) as (string | number)[]);
  t.equal(back.get('x'), 1);
  t.throws(() => IdMap.fromJSON([1, 1]), /duplicate/);
  t.throws(() => IdMap.fromJSON([true as unknown as number]), /numbers or strings/);
});

t.test('implicit conversion', async (t) => {
  const data = r([
    [0, 0, 5],
    [0, 1, 2],
    [1, 0, 4],
  ]);
  const drop = toImplicit(data, { threshold: 4 });
  t.same([...drop.item], [0, 0]);
  t.same([...drop.rating], [1, 1]);
  const zero = toImplicit(data, { threshold: 4, below: 'zero' });
  t.same([...zero.rating], [1, 0, 1]);
  t.throws(() => toImplicit(data, { threshold: Number.NaN }), /threshold/);
});

t.test('min-count filters iterate to a fixed point and re-encode ids', async (t) => {
  // user 2 has 1 rating; dropping it leaves item 2 with 1 rating, which must then go too.
  const data = r([
    [0, 0, 1],
    [0, 1, 1],
    [1, 0, 1],
    [1, 1, 1],
    [2, 2, 1],
    [0, 2, 1],
    [1, 3, 1],
    [0, 3, 1],
  ]);
  const users = new IdMap();
  ['a', 'b', 'c'].forEach((x) => users.encode(x));
  const f = filterMinCounts(data, { minUserRatings: 2, minItemRatings: 2 }, { users });
  t.ok(f.rounds >= 2);
  t.equal(f.users?.size, 2);
  t.same([...f.ratings.user].sort(), [0, 0, 0, 1, 1, 1]);
  t.ok([...f.ratings.item].every((i) => i < 3));
  const plain = filterMinCounts(data, { minUserRatings: 1 });
  t.equal(plain.ratings.length, data.length);
});

t.test('describe counts by hand', async (t) => {
  const s = describe(
    r([
      [0, 0, 5],
      [0, 1, 3],
      [1, 0, 4],
      [1, 1, 4.5],
    ]),
  );
  t.equal(s.users, 2);
  t.equal(s.items, 2);
  t.equal(s.ratings, 4);
  t.equal(s.density, 1);
  t.equal(s.mean, 4.125);
  t.equal(s.min, 3);
  t.equal(s.max, 5);
  t.same(s.histogram, [
    [3, 1],
    [4, 1],
    [4.5, 1],
    [5, 1],
  ]);
  t.match(formatSummary(s), /density\s+100\.000 %/);
  t.ok(Number.isNaN(describe(r([])).mean));
});

t.test('selectRows and groupByUser', async (t) => {
  const data = r(
    [
      [1, 0, 1],
      [0, 1, 2],
      [1, 2, 3],
    ],
    true,
  );
  const s = selectRows(data, [2, 0]);
  t.same([...s.rating], [3, 1]);
  t.same([...(s.timestamp ?? [])], [2, 0]);
  const g = groupByUser(data, 2);
  t.same([...g.start], [0, 1, 3]);
  t.same([...g.order], [1, 0, 2]);
});
