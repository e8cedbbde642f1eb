// Checkpoint state kinds: what a parameter shard and a mirrored trainer write into a job
// checkpoint (and answer on `<job>.ps.<k>.state` / `<job>.ctl.state`). msgpack with typed arrays
// as binary, like the messages; each carries a `format` version so a newer reader can refuse (or
// convert) an older checkpoint instead of misreading it.
import { defineMsgpackKind } from './messages.ts';
import type { Check, Obj } from './validate.ts';

export const SHARD_STATE_FORMAT = 1;
export const TRAINER_STATE_FORMAT = 1;

/** Optimizer state of one parameter (RowOptimizer's slot): first and second moments, per-row update counts. */
export interface OptimizerSlotState {
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly steps: Int32Array;
}

/** The rows of one table a parameter shard owns: their ids (ascending) and values. */
export interface OwnedTableState {
  /** Rows of the whole table (its shape, checked on restore). */
  readonly rows: number;
  readonly dim: number;
  readonly owned: Int32Array;
  /** owned.length × dim, row-major. */
  readonly values: Float32Array;
}

/**
 * A parameter shard's state: the rows and dense tensors it owns, their optimizer state, its
 * version and counters. Optimizer slots are named like RowOptimizer's (a table's name, or
 * `dense:<name>`); a table's slot holds only the owned rows, in `owned` order.
 */
export interface ShardState {
  readonly format: number;
  readonly shard: number;
  readonly of: number;
  /** Optimizer name (sgd, adagrad, adam, rmsprop): its state does not mean anything to another. */
  readonly optimizer: string;
  readonly version: number;
  readonly pushes: number;
  readonly dropped: number;
  readonly tables: Readonly<Record<string, OwnedTableState>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
  readonly slots: Readonly<Record<string, OptimizerSlotState>>;
  /** SSP clocks: pushes applied per trainer rank. */
  readonly clocks: Readonly<Record<string, number>>;
}

function slotState(c: Check, v: unknown, path: string): OptimizerSlotState {
  const o = c.obj(v, path);
  const m = c.f32(o.m, `${path}.m`);
  const s = c.f32(o.v, `${path}.v`);
  const steps = c.i32(o.steps, `${path}.steps`);
  if (s.length !== m.length) c.fail(`${path}: v has ${s.length} values, m ${m.length}`);
  return { m, v: s, steps };
}

function formatOf(c: Check, o: Obj, expected: number): number {
  const format = c.int(o, 'format', 1);
  if (format !== expected) c.fail(`format ${format} is not supported (this build reads format ${expected}); resume with the version that wrote the checkpoint`);
  return format;
}

export const shardStateCodec = defineMsgpackKind<ShardState>('ShardState', (o, c) => {
  const format = formatOf(c, o, SHARD_STATE_FORMAT);
  const shard = c.int(o, 'shard');
  const of = c.int(o, 'of', 1);
  if (shard >= of) c.fail(`shard ${shard} is not below the shard count ${of}`);
  const tables = c.record(o.tables, 'tables', (x, p) => {
    const t = c.obj(x, p);
    const rows = c.int(t, 'rows');
    const dim = c.int(t, 'dim', 1);
    const owned = c.i32(t.owned, `${p}.owned`);
    const values = c.f32(t.values, `${p}.values`);
    if (values.length !== owned.length * dim) c.fail(`${p}: ${values.length} values != ${owned.length} owned rows × dim ${dim}`);
    for (let i = 0; i < owned.length; i++) {
      if (owned[i] < 0 || owned[i] >= rows || (i > 0 && owned[i] <= owned[i - 1])) c.fail(`${p}.owned must be ascending rows in 0…${rows - 1}; found ${owned[i]} at ${i}`);
    }
    return { rows, dim, owned, values };
  });
  const dense = c.record(o.dense, 'dense', (x, p) => c.f32(x, p));
  const slots = c.record(o.slots, 'slots', (x, p) => {
    const s = slotState(c, x, p);
    const name = p.slice('slots.'.length);
    if (name.startsWith('dense:')) {
      const d = dense[name.slice('dense:'.length)];
      if (d === undefined) c.fail(`${p}: no dense tensor '${name.slice('dense:'.length)}' in this state`);
      if (s.m.length !== d.length || s.steps.length !== 1) c.fail(`${p}: ${s.m.length} moments / ${s.steps.length} step counts for a dense tensor of ${d.length}`);
    } else {
      if (!Object.hasOwn(tables, name)) c.fail(`${p}: no table '${name}' in this state`);
      const t = tables[name];
      if (s.m.length !== t.values.length || s.steps.length !== t.owned.length) c.fail(`${p}: ${s.m.length} moments / ${s.steps.length} step counts for ${t.owned.length} owned rows × dim ${t.dim}`);
    }
    return s;
  });
  const clocks = c.record(o.clocks, 'clocks', (x, p) => {
    if (!Number.isSafeInteger(x) || (x as number) < 0 || !/^\d+$/.test(p.slice('clocks.'.length))) c.fail(`${p} must be a non-negative integer clock of a rank`);
    return x as number;
  });
  return {
    format,
    shard,
    of,
    optimizer: c.str(o, 'optimizer'),
    version: c.int(o, 'version'),
    pushes: c.int(o, 'pushes'),
    dropped: c.int(o, 'dropped'),
    tables,
    dense,
    slots,
    clocks,
  };
});

/** A whole table (a mirrored replica holds every row). */
export interface TableData {
  readonly rows: number;
  readonly dim: number;
  /** rows × dim, row-major. */
  readonly data: Float32Array;
}

/**
 * A mirrored trainer's state after a global step: enough to continue bit for bit — the replica,
 * the optimizer state, and where in the data the step left off (the data iterable restarts at
 * `epoch`, skipping `stepInEpoch` global steps).
 */
export interface TrainerState {
  readonly format: number;
  readonly job: string;
  /** World size when saved (a resume with another world size changes the global batch; the caller decides). */
  readonly worldSize: number;
  /** Global steps done. */
  readonly step: number;
  /** Epoch of the last step done. */
  readonly epoch: number;
  /** Global steps already done in `epoch`. */
  readonly stepInEpoch: number;
  readonly params: { readonly tables: Readonly<Record<string, TableData>>; readonly dense: Readonly<Record<string, Float32Array>> };
  /** RowOptimizer.state(): slots by name (a table's name or `dense:<name>`), whole parameters. */
  readonly optimizer: Readonly<Record<string, OptimizerSlotState>>;
}

export const trainerStateCodec = defineMsgpackKind<TrainerState>('TrainerState', (o, c) => {
  const format = formatOf(c, o, TRAINER_STATE_FORMAT);
  const p = c.obj(o.params, 'params');
  const tables = c.record(p.tables, 'params.tables', (x, path) => {
    const t = c.obj(x, path);
    const rows = c.int(t, 'rows');
    const dim = c.int(t, 'dim', 1);
    const data = c.f32(t.data, `${path}.data`);
    if (data.length !== rows * dim) c.fail(`${path}: ${data.length} values != ${rows} rows × dim ${dim}`);
    return { rows, dim, data };
  });
  const dense = c.record(p.dense, 'params.dense', (x, path) => c.f32(x, path));
  const optimizer = c.record(o.optimizer, 'optimizer', (x, path) => {
    const s = slotState(c, x, path);
    const name = path.slice('optimizer.'.length);
    const size = name.startsWith('dense:') ? dense[name.slice('dense:'.length)]?.length : Object.hasOwn(tables, name) ? tables[name].data.length : undefined;
    if (size === undefined) c.fail(`${path}: optimizer state for '${name}', which is not among the parameters`);
    if (s.m.length !== size) c.fail(`${path}: ${s.m.length} moments for a parameter of ${size}`);
    return s;
  });
  return {
    format,
    job: c.str(o, 'job'),
    worldSize: c.int(o, 'worldSize', 1),
    step: c.int(o, 'step'),
    epoch: c.int(o, 'epoch'),
    stepInEpoch: c.int(o, 'stepInEpoch'),
    params: { tables, dense },
    optimizer,
  };
});
