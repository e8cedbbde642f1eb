// What a trainable model is, as the strategies see it. Parameters live outside the model, as
// typed arrays (embedding tables and dense tensors); the model says which table rows a batch needs
// and turns (batch, gathered rows, dense tensors) into a loss and gradients with TF.js. So the
// same model runs under every strategy: local, parameter server, mirrored.
import type { Tf } from '@actorflow/engine';
import type { Initializer, SparseGradient } from '@actorflow/embeddings';

export interface TableSpec {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  readonly init: Initializer;
}

export interface DenseSpec {
  readonly name: string;
  readonly size: number;
  readonly init: Initializer;
}

/** Rows of each table gathered for one batch (rows sorted, unique), and every dense tensor. */
export interface GatheredParams {
  readonly tables: Readonly<Record<string, { readonly rows: Int32Array; readonly values: Float32Array }>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}

export interface StepResult {
  /** Mean loss over the batch. */
  readonly loss: number;
  /** Examples in the batch; gradients are of the mean loss, reducers weight by count. */
  readonly count: number;
  /** Per table: deduplicated, sorted rows and their gradients. */
  readonly sparse: Readonly<Record<string, SparseGradient>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}

export interface TrainableModel<Batch> {
  readonly name: string;
  tableSpecs(): readonly TableSpec[];
  denseSpecs(): readonly DenseSpec[];
  /** Unique, sorted rows of each table that this batch reads. */
  rowsFor(batch: Batch): Record<string, Int32Array>;
  computeGradients(tf: Tf, batch: Batch, params: GatheredParams): StepResult;
  predict(tf: Tf, batch: Batch, params: GatheredParams): Float32Array;
}

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

/** Unique sorted values of an id column. */
export function uniqueSorted(ids: Int32Array): Int32Array {
  return Int32Array.from(new Set(ids)).sort();
}

/**
 * Expands gathered rows to one row per example: position of each id in `rows` (sorted) → its
 * values. This happens outside TF.js on purpose (see DESIGN.md: gather gradients are dense).
 */
export function perExample(ids: Int32Array, gathered: { rows: Int32Array; values: Float32Array }, dim: number, what: string): Float32Array {
  const out = new Float32Array(ids.length * dim);
  const { rows, values } = gathered;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    let lo = 0;
    let hi = rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    if (rows[lo] !== id) throw new ModelError(`${what} row ${id} was not gathered for this batch`);
    out.set(values.subarray(lo * dim, (lo + 1) * dim), i * dim);
  }
  return out;
}
