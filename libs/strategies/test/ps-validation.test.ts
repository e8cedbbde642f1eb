// ParameterShard.push validates a whole push before applying any of it: each rejection reason,
// the counters by reason and by sender, the bounded-rate log, and that nothing changed.
import t from 'tap';
import { BiasedMF } from '@actorflow/models';
import { HandlerError } from '@actorflow/bus';
import { ParameterShard, PushRejected, ownerOfDense, ownerOfRow, type PushRejectReason } from '../mod.ts';

const model = new BiasedMF({ numUsers: 40, numItems: 30, dim: 3, initStd: 0.1, globalMean: 3 });
const optimizer = { name: 'sgd', lr: 0.1 } as const;
const owned = (table: string, shard: number, of: number, n: number): number[] => Array.from({ length: n }, (_, r) => r).filter((r) => ownerOfRow(table, r, of) === shard);
const mine = owned('user', 0, 2, 40);
const foreign = owned('user', 1, 2, 40)[0];
// The dense 'mean' lives on one of the two shards: test dense cases on its owner.
const meanOwner = ownerOfDense('mean', 2);

/** The reason of the PushRejected that `f` throws (undefined if it throws none). */
function reasonOf(f: () => unknown): PushRejectReason | undefined {
  try {
    f();
  } catch (err) {
    return err instanceof PushRejected ? err.reason : undefined;
  }
  return undefined;
}

function copyParams(ps: ParameterShard): Record<string, Float32Array> {
  return {
    ...Object.fromEntries(Object.entries(ps.params.tables).map(([k, v]) => [k, v.data.slice()])),
    ...Object.fromEntries(Object.entries(ps.params.dense).map(([k, v]) => [`dense:${k}`, v.slice()])),
  };
}

const userRow = (rows: number[], fill = 0.5): { rows: Int32Array; values: Float32Array } => ({ rows: Int32Array.from(rows), values: new Float32Array(rows.length * 3).fill(fill) });

t.test('each bad push is rejected whole with its reason, counted by reason and sender, and changes nothing', async (t) => {
  const lines: string[] = [];
  const ps = new ParameterShard({ model, shard: 0, of: 2, seed: 1, optimizer, log: (l) => lines.push(l) });
  const dps = new ParameterShard({ model, shard: meanOwner, of: 2, seed: 1, optimizer, log: () => undefined });
  // Two good pushes first: version 2.
  t.ok(ps.push({ sparse: { user: userRow([mine[0]]) }, dense: {} }, 0, 3).accepted);
  t.ok(ps.push({ sparse: { user: userRow([mine[1]]) }, dense: {} }, 1, 3).accepted);
  const before = copyParams(ps);
  const good = userRow([mine[2]]);
  const nan = userRow([mine[2], mine[3]]);
  nan.values[4] = Number.NaN;
  const inf = new Float32Array([Number.POSITIVE_INFINITY]);
  const cases: [PushRejectReason, () => unknown][] = [
    ['UNKNOWN_TABLE', () => ps.push({ sparse: { nope: userRow([0]) }, dense: {} }, 2, 7)],
    ['UNKNOWN_TABLE', () => ps.push({ sparse: { __proto__x: userRow([0]), constructor: userRow([0]) } as never, dense: {} }, 2, 7)],
    ['UNKNOWN_DENSE', () => ps.push({ sparse: {}, dense: { nope: new Float32Array(1) } }, 2, 7)],
    ['UNKNOWN_DENSE', () => ps.push({ sparse: {}, dense: { toString: new Float32Array(1) } }, 2, 7)],
    ['NOT_OWNER', () => ps.push({ sparse: { user: userRow([foreign]) }, dense: {} }, 2, 7)],
    ['BAD_ROW', () => ps.push({ sparse: { user: userRow([40]) }, dense: {} }, 2, 7)],
    ['BAD_ROW', () => ps.push({ sparse: { user: userRow([-1]) }, dense: {} }, 2, 7)],
    ['DUPLICATE_ROW', () => ps.push({ sparse: { user: userRow([mine[2], mine[2]]) }, dense: {} }, 2, 8)],
    ['BAD_SHAPE', () => ps.push({ sparse: { user: { rows: Int32Array.from([mine[2]]), values: new Float32Array(2) } }, dense: {} }, 2, 8)],
    ['NON_FINITE', () => ps.push({ sparse: { user: nan }, dense: {} }, 2, 8)],
    ['BAD_VERSION', () => ps.push({ sparse: { user: good }, dense: {} }, 2 ** 53, 8)],
    ['BAD_VERSION', () => ps.push({ sparse: { user: good }, dense: {} }, 3, 8)],
    ['BAD_VERSION', () => ps.push({ sparse: { user: good }, dense: {} }, 1.5, 8)],
    ['BAD_VERSION', () => ps.push({ sparse: { user: good }, dense: {} }, -1, 8)],
    ['BAD_SENDER', () => ps.push({ sparse: { user: good }, dense: {} }, 2, -4)],
    // Atomic: a valid sparse part with a bad dense part applies nothing.
    [
      'NOT_OWNER',
      () => (meanOwner === 0 ? new ParameterShard({ model, shard: 1, of: 2, seed: 1, optimizer, log: () => undefined }) : ps).push({ sparse: {}, dense: { mean: new Float32Array(1) } }, 0, 7),
    ],
  ];
  for (const [reason, run] of cases) {
    try {
      run();
      t.fail(`${reason}: expected a rejection`);
    } catch (err) {
      t.ok(err instanceof PushRejected, `${reason}: a PushRejected (${(err as Error).message})`);
      t.ok(err instanceof HandlerError, 'travels to the pusher as a coded remote error');
      t.equal((err as PushRejected).reason, reason);
      t.equal((err as PushRejected).code, reason);
    }
  }
  // Dense checks on the dense owner: wrong size, non-finite, and a good sparse part beside it.
  const dBefore = copyParams(dps);
  const drow = owned('user', meanOwner, 2, 40)[0];
  t.equal(
    reasonOf(() => dps.push({ sparse: { user: userRow([drow]) }, dense: { mean: new Float32Array(2) } }, 0, 1)),
    'BAD_SHAPE',
  );
  t.equal(
    reasonOf(() => dps.push({ sparse: { user: userRow([drow]) }, dense: { mean: inf } }, 0, 1)),
    'NON_FINITE',
  );
  t.same(copyParams(dps), dBefore, 'a push with a bad dense part applied none of its (valid) sparse rows');
  t.equal(dps.version, 0);
  t.same(dps.stats.rejectedByReason, { BAD_SHAPE: 1, NON_FINITE: 1 });

  t.same(copyParams(ps), before, 'no rejected push changed a single value');
  t.equal(ps.version, 2, 'the version did not move');
  const s = ps.stats;
  t.equal(s.pushes, 2);
  t.same(s.rejectedByReason, { UNKNOWN_TABLE: 2, UNKNOWN_DENSE: 2, NOT_OWNER: meanOwner === 0 ? 1 : 2, BAD_ROW: 2, DUPLICATE_ROW: 1, BAD_SHAPE: 1, NON_FINITE: 1, BAD_VERSION: 4, BAD_SENDER: 1 });
  t.equal(
    s.rejected,
    Object.values(s.rejectedByReason).reduce((a, b) => a + b, 0),
  );
  t.same(s.bySender['3'], { accepted: 2, rejected: {} }, 'the good sender');
  t.equal(s.bySender['7'].accepted, 0);
  t.equal(s.bySender['7'].rejected.UNKNOWN_TABLE, 2);
  t.equal(s.bySender['8'].rejected.BAD_VERSION, 4);
  t.equal(s.bySender['-1'].rejected.BAD_SENDER, 1, 'an invalid sender rank is counted under -1');
  // One log line per reason within the interval (the default 5 s), naming sender and reason.
  t.match(lines.find((l) => l.includes('DUPLICATE_ROW')) ?? '', /rejected push from rank 8: DUPLICATE_ROW: table user: row \d+ appears more than once/);
  t.equal(lines.filter((l) => l.includes('BAD_VERSION')).length, 1, 'four BAD_VERSION rejections, one line');
  t.equal(new Set(lines.map((l) => /: ([A-Z_]+):/.exec(l)?.[1])).size, lines.length, 'one line per reason');
  // A good push still applies afterwards.
  t.ok(ps.push({ sparse: { user: good }, dense: {} }, 2, 3).accepted);
  t.equal(ps.version, 3);
});

t.test('the log is rate-limited per reason and reports how many it folded', async (t) => {
  const lines: string[] = [];
  let now = 0;
  const ps = new ParameterShard({ model, shard: 0, of: 2, seed: 1, optimizer, log: (l) => lines.push(l), logIntervalMs: 1000, now: () => now });
  for (let i = 0; i < 5; i++) t.throws(() => ps.push({ sparse: { user: userRow([foreign]) }, dense: {} }, 0, 1));
  t.equal(lines.length, 1);
  now = 1000;
  t.throws(() => ps.push({ sparse: { user: userRow([foreign]) }, dense: {} }, 0, 1));
  t.equal(lines.length, 2);
  t.match(lines[1], /\(5 NOT_OWNER rejections since the last such line\)/);
  ps.countNoReply('j.ps.0.push');
  ps.countNoReply('j.ps.0.push');
  t.equal(ps.stats.noReply, 2);
  t.match(lines[2], /without a reply subject/);
  t.equal(lines.length, 3);
});

t.test('pull of an unknown or inherited dense / table name is a coded error, not a TypeError', async (t) => {
  const ps = new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer });
  t.throws(() => ps.pull({}, ['constructor']), { code: 'UNKNOWN_DENSE' });
  t.throws(() => ps.pull({}, ['nope']), { code: 'UNKNOWN_DENSE' });
  t.throws(() => ps.pull({ toString: new Int32Array([0]) }, []), { code: 'UNKNOWN_TABLE' });
});
