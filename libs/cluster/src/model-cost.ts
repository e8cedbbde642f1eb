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
