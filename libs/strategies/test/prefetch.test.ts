import t from 'tap';
import { prefetch } from '../src/prefetch.ts';

t.test('prefetch yields every item in order and asks for the next one before the current is used', async (t) => {
  const asked: number[] = [];
  async function* source(): AsyncGenerator<number> {
    for (let k = 0; k < 4; k++) {
      asked.push(k);
      await new Promise((r) => setTimeout(r, 1));
      yield k;
    }
  }
  const seen: number[] = [];
  for await (const x of prefetch(source())) {
    // While item x is being used, item x + 1 has already been requested.
    await new Promise((r) => setTimeout(r, 5));
    t.ok(asked.includes(Math.min(x + 1, 3)), `item ${x + 1} requested while ${x} is used`);
    seen.push(x);
  }
  t.same(seen, [0, 1, 2, 3]);
});

t.test('prefetch passes plain iterables through, surfaces errors, and closes the source on break', async (t) => {
  const plain: number[] = [];
  for await (const x of prefetch([1, 2, 3])) plain.push(x);
  t.same(plain, [1, 2, 3]);
  async function* failing(): AsyncGenerator<number> {
    yield 1;
    throw new Error('shard gone');
  }
  const got: number[] = [];
  await t.rejects(
    (async () => {
      for await (const x of prefetch(failing())) got.push(x);
    })(),
    /shard gone/,
  );
  t.same(got, [1]);
  let closed = false;
  async function* endless(): AsyncGenerator<number> {
    try {
      for (let k = 0; ; k++) yield k;
    } finally {
      closed = true;
    }
  }
  for await (const x of prefetch(endless(), 2)) if (x === 3) break;
  t.ok(closed, 'the source ran its finally block');
});
