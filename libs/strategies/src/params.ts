// A full set of model parameters in typed arrays, built from a model's specs, and the helpers every
// strategy uses: gather the rows a batch needs, and apply a step's gradients in one fixed order
// (tables by name, then dense by name) — the same order everywhere, so runs are reproducible.
import { RowOptimizer, createTable, gatherRows, initRow, type EmbeddingTable, type OptimizerConfig } from '@actorflow/embeddings';
import type { GatheredParams, StepResult, TrainableModel } from '@actorflow/models';

export interface ParamStore {
  readonly tables: Record<string, EmbeddingTable>;
  readonly dense: Record<string, Float32Array>;
}

export function initParams(model: TrainableModel<unknown>, seed: number): ParamStore {
  const tables: Record<string, EmbeddingTable> = {};
  for (const s of model.tableSpecs()) tables[s.name] = createTable(s.name, s.rows, s.dim, s.init, seed);
  const dense: Record<string, Float32Array> = {};
  for (const s of model.denseSpecs()) {
    const v = new Float32Array(s.size);
    initRow(s.init, seed, `dense:${s.name}`, 0, v);
    dense[s.name] = v;
  }
  return { tables, dense };
}

export function gather(store: ParamStore, rows: Readonly<Record<string, Int32Array>>): GatheredParams {
  const tables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
  for (const [name, r] of Object.entries(rows)) {
    const t = store.tables[name];
    if (t === undefined) throw new Error(`no table '${name}' in the parameters`);
    tables[name] = { rows: r, values: gatherRows(t, r) };
  }
  return { tables, dense: store.dense };
}

export function applyStep(store: ParamStore, optimizer: RowOptimizer, step: Pick<StepResult, 'sparse' | 'dense'>, lrScale = 1): void {
  for (const name of Object.keys(step.sparse).sort()) {
    const g = step.sparse[name];
    optimizer.applyRows(store.tables[name], g.rows, g.values, lrScale);
  }
  for (const name of Object.keys(step.dense).sort()) optimizer.applyDense(name, store.dense[name], step.dense[name], lrScale);
}

export function createOptimizer(config: OptimizerConfig): RowOptimizer {
  return new RowOptimizer(config);
}
