// A model's sizes as the planner needs them, from the model itself (createModel + tableSpecs/denseSpecs).
import { createModel, modelEntry, withDataHyper, type DataFacts, type Hyper } from '@actorflow/models';
import type { ModelCost } from './planner.ts';

export interface ModelCostOptions {
  readonly hyper?: Hyper;
  /** Rating rows in the training data (interactions models gather a row's whole history). */
  readonly trainRows?: number;
}

/** Builds the model with the data's facts and measures its tables and dense tensors. */
export function modelCost(name: string, facts: DataFacts, o: ModelCostOptions = {}): ModelCost {
  modelEntry(name); // unknown model: the registry's error, listing the models
  const model = createModel(name, withDataHyper(name, facts, o.hyper ?? {}));
  const tables = model.tableSpecs().map((t) => ({ name: t.name, rows: t.rows, dim: t.dim }));
  const denseParams = model.denseSpecs().reduce((s, d) => s + d.size, 0);
  const floats = tables.reduce((s, t) => s + t.rows * t.dim, 0) + denseParams;
  let rowsPerExample = 1;
  if (model.input === 'interactions' && o.trainRows !== undefined) {
    const rows = model.rowsAre === 'items' ? facts.numItems : facts.numUsers;
    rowsPerExample = rows > 0 ? o.trainRows / rows : 1;
  }
  return { name, tables, denseParams, rowsPerExample, parameterBytes: floats * 4 };
}

/** What the job's model flags (`--model-flag FLAG=VALUE`, as the aggregators take them) change in the plan's sizes. */
export interface ModelFlagSizing {
  /** Hyper-parameters from the shortcuts `dim` and `init-std` (the aggregator's `--dim`, `--init-std`). */
  readonly hyper: Hyper;
  /** Optimizer state floats per parameter (adam 2, adagrad and rmsprop 1, sgd 0, +1 with momentum); absent: not named. */
  readonly optimizerSlots?: number;
  /** The optimizer named, for the plan's assumptions. */
  readonly optimizer?: string;
}

const SLOTS: Readonly<Record<string, number>> = { adam: 2, adagrad: 1, rmsprop: 1, sgd: 0 };

/**
 * The sizing part of model flags given as FLAG=VALUE (or a bare FLAG): `dim`/`init-std` are the
 * hyper-parameters the aggregator's shortcuts set, `optimizer` and `momentum` decide the optimizer
 * state; every other flag (lr, l2, dense-updates, …) does not change a size. `recommended` is the
 * model's own optimizer, used when none is named.
 */
export function modelFlagSizing(flags: readonly string[], recommended?: string): ModelFlagSizing {
  const hyper: Record<string, number | string | boolean> = {};
  let optimizer = recommended;
  let momentum = false;
  for (const kv of flags) {
    const eq = kv.indexOf('=');
    const key = (eq < 0 ? kv : kv.slice(0, eq)).replace(/^--/, '');
    const raw = eq < 0 ? '' : kv.slice(eq + 1);
    const num = raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : undefined;
    if (key === 'dim' && num !== undefined) hyper.dim = num;
    else if (key === 'init-std' && num !== undefined) hyper.initStd = num;
    else if (key === 'optimizer' && raw !== '') optimizer = raw;
    else if (key === 'momentum') momentum = num !== undefined && num > 0;
  }
  const base = optimizer !== undefined ? SLOTS[optimizer] : undefined;
  return {
    hyper,
    ...(optimizer !== undefined ? { optimizer } : {}),
    ...(base !== undefined ? { optimizerSlots: base + (momentum && (optimizer === 'sgd' || optimizer === 'rmsprop') ? 1 : 0) } : {}),
  };
}
