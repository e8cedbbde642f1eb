// The WebAssembly SIMD kernels against the JavaScript loops they replace: bit-identical results
// (same operations, order and roundings), on odd and even dims, repeated ids and rows, several
// steps; the arena's views and the optimizer state that lives in it.
import t from 'tap';
import { RowOptimizer, biasedDotMse, createTable, type BiasedDotInputs, type EmbeddingTable } from '../mod.ts';
import { setWasmKernels } from '../src/interactions.ts';
import { setWasmOptimizer } from '../src/optimizers.ts';
import { ARENA_MIN_VALUES, arenaOf, wasmKernelsAvailable } from '../src/wasm/kernels.ts';

t.ok(wasmKernelsAvailable(), 'Node has WebAssembly SIMD: the kernels run (so the comparisons below compare two implementations)');

/** Deterministic pseudo-random floats in [−s, s). */
function floats(n: number, seed: number, s = 0.5): Float32Array {
  let x = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 2 ** 32 - 0.5) * 2 * s;
  });
}
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));

for (const d of [1, 7, 8, 100]) {
  t.test(`biasedDotMse: wasm = JS bit for bit (dim ${d})`, async (t) => {
    const users = new Int32Array([0, 3, 4, 9, 12]);
    const items = new Int32Array([1, 2, 5, 6, 8, 11, 20]);
    const n = 301;
    const user = Int32Array.from({ length: n }, (_, e) => users[(e * 7 + (e >> 3)) % users.length]);
    const item = Int32Array.from({ length: n }, (_, e) => items[(e * 5 + 3) % 6]); // items[6] is gathered but unused
    const x: BiasedDotInputs = {
      user,
      item,
      dim: d,
      users: { rows: users, values: floats(users.length * d, 1) },
      items: { rows: items, values: floats(items.length * d, 2) },
      userBias: { rows: users, values: floats(users.length, 3, 0.2) },
      itemBias: { rows: items, values: floats(items.length, 4, 0.2) },
      mean: 3.25,
    };
    const target = floats(n, 5, 2).map((v) => v + 3);
    setWasmKernels(false);
    const js = biasedDotMse(x, target);
    setWasmKernels(true);
    const wasm = biasedDotMse(x, target);
    t.equal(wasm.loss, js.loss, 'loss');
    t.equal(wasm.mean, js.mean, 'gradient of the mean');
    for (const k of ['user', 'item', 'userBias', 'itemBias'] as const) {
      t.same([...wasm[k].rows], [...js[k].rows], `${k} rows`);
      t.same(bits(wasm[k].values), bits(js[k].values), `${k} gradient bits`);
    }
    t.same([...wasm.item.rows], [...items.subarray(0, 6)], 'the unused gathered row has no gradient');
  });
}

/** Adam on a table of `rows` × d from the same start, JS or wasm; returns the table and the optimizer. */
function adamRun(wasm: boolean, rows: number, d: number, steps: number): { tbl: EmbeddingTable; opt: RowOptimizer } {
  setWasmOptimizer(wasm);
  const tbl = createTable('q', rows, d, { kind: 'normal', std: 0.1 }, 7);
  const opt = new RowOptimizer({ name: 'adam', lr: 0.01, l2: 0.00028 });
  for (let s = 0; s < steps; s++) {
    // Touched rows change with the step (some rows many times, so their step counts differ); one
    // step repeats a row, which lazy Adam applies twice in order.
    const touched = Int32Array.from({ length: 50 }, (_, i) => (i * (s + 3) * 37) % rows).sort();
    const uniq = Int32Array.from(new Set(touched));
    const ids = s === 2 ? Int32Array.from([...uniq, uniq[0]]) : uniq;
    opt.applyRows(tbl, ids, floats(ids.length * d, 100 + s, 0.05), s === 3 ? 0.5 : 1);
  }
  setWasmOptimizer(true);
  return { tbl, opt };
}

for (const d of [7, 100]) {
  t.test(`lazy Adam: wasm on an arena table = JS bit for bit (dim ${d})`, async (t) => {
    const rows = Math.ceil(ARENA_MIN_VALUES / d) + 5;
    const js = adamRun(false, rows, d, 6);
    const wasm = adamRun(true, rows, d, 6);
    t.ok(arenaOf(wasm.tbl.data) !== undefined, 'a table this large lives in an arena');
    t.same(bits(wasm.tbl.data), bits(js.tbl.data), 'weights');
    t.same(bits(wasm.opt.state().q.m), bits(js.opt.state().q.m), 'first moments');
    t.same(bits(wasm.opt.state().q.v), bits(js.opt.state().q.v), 'second moments');
    t.same([...wasm.opt.state().q.steps], [...js.opt.state().q.steps], 'per-row step counts');
    t.ok(Math.max(...wasm.opt.state().q.steps) > 1, 'rows were updated more than once');
  });
}

t.test('arena tables: small tables stay plain; optimizer state through state()/loadState(); a second optimizer', async (t) => {
  t.equal(arenaOf(createTable('small', 10, 4, { kind: 'zeros' }, 0).data), undefined, 'a small table is a plain Float32Array');
  const d = 64;
  const rows = Math.ceil(ARENA_MIN_VALUES / d);
  const step = (opt: RowOptimizer, tbl: EmbeddingTable, s: number): void => opt.applyRows(tbl, new Int32Array([1, 5, 9 + s]), floats(3 * d, 40 + s, 0.1));
  // Reference: one optimizer, four steps.
  const ref = createTable('q', rows, d, { kind: 'normal', std: 0.1 }, 3);
  const refOpt = new RowOptimizer({ name: 'adam', lr: 0.02 });
  for (let s = 0; s < 4; s++) step(refOpt, ref, s);
  // Two steps, state out (copied, as a checkpoint would), a new optimizer and table loaded with it, two more.
  const a = createTable('q', rows, d, { kind: 'normal', std: 0.1 }, 3);
  const aOpt = new RowOptimizer({ name: 'adam', lr: 0.02 });
  step(aOpt, a, 0);
  step(aOpt, a, 1);
  t.equal(aOpt.state().q.m, arenaOf(a.data)?.m, 'state() hands out the moments that live in the arena');
  const saved = structuredClone(aOpt.state());
  const b = createTable('q', rows, d, { kind: 'zeros' }, 0);
  b.data.set(a.data);
  const bOpt = new RowOptimizer({ name: 'adam', lr: 0.02 });
  bOpt.loadState(saved);
  step(bOpt, b, 2);
  step(bOpt, b, 3);
  t.same(bits(b.data), bits(ref.data), 'resumed from state() = uninterrupted');
  t.same(bits(bOpt.state().q.m), bits(refOpt.state().q.m), 'moments too');
  t.same([...bOpt.state().q.steps], [...refOpt.state().q.steps], 'step counts too');
  // A second optimizer on a table whose arena is taken keeps arrays of its own (JS loop), same result.
  const c = createTable('q', rows, d, { kind: 'normal', std: 0.1 }, 3);
  const first = new RowOptimizer({ name: 'adam', lr: 0.02 });
  first.applyRows(c, new Int32Array([0]), new Float32Array(d));
  const second = new RowOptimizer({ name: 'adam', lr: 0.02 });
  const plain = createTable('q', rows, d, { kind: 'normal', std: 0.1 }, 3);
  const plainOpt = new RowOptimizer({ name: 'adam', lr: 0.02 });
  plain.data.set(c.data);
  for (let s = 0; s < 2; s++) {
    step(second, c, s);
    step(plainOpt, plain, s);
  }
  t.not(second.state().q.m, arenaOf(c.data)?.m, 'the second optimizer does not share the first one’s moments');
  t.same(bits(c.data), bits(plain.data), 'and updates the table as a lone optimizer would');
  t.throws(() => refOpt.applyRows(ref, new Int32Array([rows]), new Float32Array(d)), /out of range/, 'rows are checked on the wasm path');
});

t.test('a short MF training loop (kernel → lazy Adam, 5 steps) ends bit-identical with wasm and with JS', async (t) => {
  const d = 32;
  const numUsers = 600;
  const numItems = 700; // 700 × 32 and 600 × 32 values: both tables live in arenas
  const run = (wasm: boolean): Float32Array[] => {
    setWasmKernels(wasm);
    setWasmOptimizer(wasm);
    const P = createTable('user', numUsers, d, { kind: 'normal', std: 0.1 }, 11);
    const Q = createTable('item', numItems, d, { kind: 'normal', std: 0.1 }, 11);
    const Bu = createTable('userBias', numUsers, 1, { kind: 'zeros' }, 11);
    const Bi = createTable('itemBias', numItems, 1, { kind: 'zeros' }, 11);
    const opt = new RowOptimizer({ name: 'adam', lr: 0.01, l2: 0.00028 });
    for (let s = 0; s < 5; s++) {
      const n = 400;
      const user = Int32Array.from({ length: n }, (_, e) => (e * 13 + s * 101) % numUsers);
      const item = Int32Array.from({ length: n }, (_, e) => (e * 29 + s * 7) % numItems);
      const rating = floats(n, 200 + s, 2).map((v) => v + 3);
      const us = Int32Array.from(new Set(user)).sort();
      const is = Int32Array.from(new Set(item)).sort();
      const take = (tbl: EmbeddingTable, rows: Int32Array): Float32Array => {
        const out = new Float32Array(rows.length * tbl.dim);
        rows.forEach((r, i) => out.set(tbl.data.subarray(r * tbl.dim, (r + 1) * tbl.dim), i * tbl.dim));
        return out;
      };
      const g = biasedDotMse(
        {
          user,
          item,
          dim: d,
          users: { rows: us, values: take(P, us) },
          items: { rows: is, values: take(Q, is) },
          userBias: { rows: us, values: take(Bu, us) },
          itemBias: { rows: is, values: take(Bi, is) },
          mean: 3,
        },
        rating,
      );
      opt.applyRows(Q, g.item.rows, g.item.values);
      opt.applyRows(Bi, g.itemBias.rows, g.itemBias.values);
      opt.applyRows(P, g.user.rows, g.user.values);
      opt.applyRows(Bu, g.userBias.rows, g.userBias.values);
    }
    setWasmKernels(true);
    setWasmOptimizer(true);
    t.ok(arenaOf(P.data) !== undefined && arenaOf(Q.data) !== undefined, `factor tables in arenas (wasm ${wasm})`);
    return [P.data, Q.data, Bu.data, Bi.data];
  };
  const js = run(false);
  const wasm = run(true);
  js.forEach((a, k) => t.same(bits(wasm[k]), bits(a), `table ${['user', 'item', 'userBias', 'itemBias'][k]}`));
  const fresh = createTable('user', numUsers, d, { kind: 'normal', std: 0.1 }, 11).data;
  t.ok(
    js[0].some((v, i) => v !== fresh[i]),
    'training moved the weights',
  );
});
