import t from 'tap';
import { batchLength, exampleCount, exampleSet, groupRows, rowsForIds, shardExamples, takeExamples, takeRows, type ImageSet, type InteractionsBatch, type Ratings } from '../mod.ts';

// user, item, rating: user 0 rated items 2 and 0; user 2 rated item 1; user 1 has no ratings.
const r: Ratings = { user: Int32Array.from([0, 2, 0]), item: Int32Array.from([2, 1, 0]), rating: Float32Array.from([5, 3, 4]), length: 3 };

t.test('groupRows: CSR rows by user or item, columns sorted, empty ids have no row', async (t) => {
  const byUser = groupRows(r, 'user');
  t.same([...byUser.user], [0, 2]);
  t.same([...byUser.offsets], [0, 2, 3]);
  t.same([...byUser.items], [0, 2, 1], "user 0's items sorted, then user 2's");
  t.same([...byUser.values], [4, 5, 3], 'values follow their items');
  const byItem = groupRows(r, 'item');
  t.same([...byItem.user], [0, 1, 2]);
  t.same([...byItem.items], [0, 2, 0], 'item rows list users');
  const empty = groupRows({ user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0), length: 0 }, 'user');
  t.equal(empty.user.length, 0);
  t.same([...empty.offsets], [0]);
});

t.test('takeRows and rowsForIds: by position and by id (absent ids get an empty row)', async (t) => {
  const rows = groupRows(r, 'user');
  const second = takeRows(rows, Int32Array.of(1));
  t.same([...second.user], [2]);
  t.same([...second.items], [1]);
  const byId = rowsForIds(rows, Int32Array.of(0, 1, 2, 7));
  t.same([...byId.user], [0, 1, 2, 7]);
  t.same([...byId.offsets], [0, 2, 2, 3, 3], 'ids 1 and 7 have no ratings: empty rows');
  t.same([...byId.items], [0, 2, 1]);
  const none = rowsForIds({ user: new Int32Array(0), offsets: Int32Array.of(0), items: new Int32Array(0), values: new Float32Array(0) }, Int32Array.of(3));
  t.same([...none.offsets], [0, 0]);
});

t.test('example sets of every kind: count, take, batch length, shards', async (t) => {
  const images: ImageSet = { pixels: Float32Array.from({ length: 4 * 784 }, (_, i) => Math.floor(i / 784) / 10), labels: Int32Array.of(3, 1, 4, 1), n: 4 };
  const sets = [exampleSet('ratings', { ratings: r }), exampleSet('user-rows', { ratings: r }), exampleSet('item-rows', { ratings: r }), exampleSet('images', { images })];
  t.same(sets.map(exampleCount), [3, 2, 3, 4]);
  const img = takeExamples(sets[3], Int32Array.of(2, 0));
  t.equal(batchLength(img), 2);
  t.ok('label' in img && img.label[0] === 4 && img.pixels[0] === Math.fround(0.2), 'images keep pixels and labels together');
  const rows = takeExamples(sets[1], Int32Array.of(1)) as InteractionsBatch;
  t.same([...rows.user], [2]);
  t.equal(batchLength(takeExamples(sets[0], Int32Array.of(0, 1))), 2);
  for (const set of sets) {
    const parts = [0, 1, 2].map((k) => shardExamples(set, k, 3));
    t.equal(
      parts.reduce((s, p) => s + exampleCount(p), 0),
      exampleCount(set),
      `${set.kind}: shards partition the examples`,
    );
    t.equal(shardExamples(set, 0, 1), set, 'one shard is the set');
  }
  // User rows are sharded by user id, so a user's items stay together.
  const users = [0, 1].flatMap((k) => [...(shardExamples(sets[1], k, 2) as { rows: InteractionsBatch }).rows.user]);
  t.same(users.sort(), [0, 2]);
  t.throws(() => exampleSet('images', { ratings: r }), /has no images; image models need an image dataset such as mnist:bundled/);
  t.throws(() => exampleSet('user-rows', { images }), /has no ratings/);
  t.throws(() => shardExamples(sets[0], 3, 3), /shard index must be 0…2/);
  t.throws(() => shardExamples(sets[0], 0, 0), /positive integer/);
});
