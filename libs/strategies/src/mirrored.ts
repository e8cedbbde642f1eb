// The synchronous mirrored strategy: every rank holds a full replica; each step the ranks'
// gradients, weighted by their example counts, are reduced at the root of the process group
// (summed in rank order and divided by the total count, once: combineGradients) and the one
// result goes back to every rank, which applies it — so N ranks × batch B equal one process with
// batch N·B, and a run is reproducible bit for bit.
//
// Uneven data never hangs: a rank that has run out keeps taking part with an empty contribution
// (count 0, like torch's Join), and the loop ends on every rank at the first step whose total
// count is 0. A silent rank makes the collective fail on every rank with an error naming it.
import type { ProcessGroup } from '@actorflow/collectives';
import type { Engine } from '@actorflow/engine';
import { batchLength, type AnyBatch } from '@actorflow/data';
import { sumSparseInOrder, type OptimizerConfig, type RowOptimizer, type SparseGradient } from '@actorflow/embeddings';
import type { StepResult, TrainableModel } from '@actorflow/models';
import { TRAINER_STATE_FORMAT, mirroredGradientCodec, mirroredParamsCodec, type MirroredGradient, type OptimizerSlotState, type TableData, type TrainerState } from '@actorflow/protocol';
import { applyStep, createOptimizer, gather, initParams, type ParamStore } from './params.ts';
import { assertFiniteStep } from './guards.ts';
import { prefetch } from './prefetch.ts';

export interface FedExamples {
  readonly epoch: number;
  readonly batch: AnyBatch;
}

type Contribution = MirroredGradient;

/** Ranks contributed gradients that cannot be summed (different models); raised at the root, seen by every rank. */
export class GradientMismatchError extends Error {
  constructor(detail: string) {
    super(`mirrored step: ${detail}`);
    this.name = 'GradientMismatchError';
  }
}

/**
 * The root's reduction of a step (every rank's MirroredGradient bytes, in rank order): counts and
 * count-weighted losses summed, dense and sparse gradients summed in rank order, then divided by
 * the total count — the mean gradient of the global batch, which every rank applies as it is.
 */
export function combineGradients(parts: readonly Uint8Array[]): Uint8Array {
  const all = parts.map((p) => mirroredGradientCodec.decode(p));
  const total = all.reduce((s, c) => s + c.count, 0);
  if (total === 0) return mirroredGradientCodec.encode({ count: 0, loss: 0, dense: {}, sparse: {} });
  const dense: Record<string, Float32Array> = {};
  const sparseParts: Record<string, SparseGradient[]> = {};
  for (const c of all) {
    for (const [k, v] of Object.entries(c.dense)) {
      const acc = (dense[k] ??= new Float32Array(v.length));
      if (acc.length !== v.length)
        throw new GradientMismatchError(`ranks sent dense gradient '${k}' with ${acc.length} and ${v.length} values; start every rank with the same model and hyper-parameters`);
      for (let i = 0; i < v.length; i++) acc[i] = Math.fround(acc[i] + v[i]);
    }
    for (const [k, g] of Object.entries(c.sparse)) (sparseParts[k] ??= []).push(g);
  }
  const inv = 1 / total;
  for (const k of Object.keys(dense)) dense[k] = scaled(dense[k], inv);
  const sparse: Record<string, SparseGradient> = {};
  for (const [k, parts] of Object.entries(sparseParts)) {
    const dims = new Set(parts.filter((g) => g.rows.length > 0).map((g) => g.values.length / g.rows.length));
    if (dims.size > 1) throw new GradientMismatchError(`ranks sent sparse gradient '${k}' with rows of ${[...dims].join(' and ')} values; start every rank with the same model and hyper-parameters`);
    // Summed in rank order from 0, then divided: the bits of folding addSparse and scaling after.
    sparse[k] = sumSparseInOrder(parts, dims.size === 0 ? 1 : [...dims][0], inv);
  }
  return mirroredGradientCodec.encode({ count: total, loss: all.reduce((s, c) => s + c.loss * c.count, 0) / total, dense, sparse });
}

export interface MirroredStep {
  readonly step: number;
  /** The epoch (0-based) of this step's batch. */
  readonly epoch: number;
  readonly loss: number;
  /** Examples over all ranks in this step. */
  readonly examples: number;
  /** This rank's examples. */
  readonly localExamples: number;
  readonly timing: { readonly computeMs: number; readonly serdeMs: number; readonly waitMs: number };
}

/** A TrainerState that does not fit this model or optimizer; the trainer did not start. */
export class TrainerStateError extends Error {
  constructor(
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`cannot resume the mirrored trainer: ${detail}; resume from a checkpoint of the same job (same model, hyper-parameters and optimizer), or start afresh`, options);
    this.name = 'TrainerStateError';
  }
}

/** Copies a TrainerState's parameters and optimizer state into a fresh replica and optimizer, after checking every shape. */
export function loadTrainerState(params: ParamStore, optimizer: RowOptimizer, state: TrainerState): void {
  const names = (o: object): string => Object.keys(o).sort().join(', ');
  if (names(state.params.tables) !== names(params.tables)) throw new TrainerStateError(`the state has tables [${names(state.params.tables)}], the model [${names(params.tables)}]`);
  if (names(state.params.dense) !== names(params.dense)) throw new TrainerStateError(`the state has dense tensors [${names(state.params.dense)}], the model [${names(params.dense)}]`);
  for (const [name, t] of Object.entries(state.params.tables)) {
    const mine = params.tables[name];
    if (t.rows !== mine.rows || t.dim !== mine.dim || t.data.length !== mine.data.length)
      throw new TrainerStateError(`table ${name} is ${t.rows} × ${t.dim} in the state, ${mine.rows} × ${mine.dim} in the model`);
  }
  for (const [name, v] of Object.entries(state.params.dense)) {
    if (v.length !== params.dense[name].length) throw new TrainerStateError(`dense ${name} has ${v.length} values in the state, ${params.dense[name].length} in the model`);
  }
  const slots: Record<string, { m: Float32Array; v: Float32Array; steps: Int32Array }> = {};
  for (const [name, s] of Object.entries(state.optimizer)) {
    const size = name.startsWith('dense:') ? params.dense[name.slice('dense:'.length)]?.length : params.tables[name]?.data.length;
    const rows = name.startsWith('dense:') ? 1 : params.tables[name]?.rows;
    if (size === undefined || s.m.length !== size || s.v.length !== size || s.steps.length !== rows) {
      throw new TrainerStateError(`optimizer state '${name}' (${s.m.length} moments, ${s.steps.length} step counts) does not fit a parameter of the model`);
    }
    slots[name] = { m: s.m.slice(), v: s.v.slice(), steps: s.steps.slice() };
  }
  for (const [name, t] of Object.entries(state.params.tables)) params.tables[name].data.set(t.data);
  for (const [name, v] of Object.entries(state.params.dense)) params.dense[name].set(v);
  optimizer.loadState(slots);
}

/** `v` times `s`, each product rounded to float32 (the store rounds, as Math.fround would). */
function scaled(v: Float32Array, s: number): Float32Array {
  // A plain loop: Float32Array.prototype.map with a callback was most of a mirrored step's
  // compute (and its garbage) in the CPU profile of a 100-factor MF job.
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * s;
  return out;
}

/** `v` times `s` in place, each product rounded to float32 (the same bits as `scaled`). */
function scaleInPlace(v: Float32Array, s: number): Float32Array {
  for (let i = 0; i < v.length; i++) v[i] *= s;
  return v;
}

/** Rank 0's parameters on every rank (so ranks agree even if their seeds or code differ). */
export async function broadcastParams(pg: ProcessGroup, params: ParamStore): Promise<void> {
  const mine = pg.rank === 0 ? mirroredParamsCodec.encode({ tables: Object.fromEntries(Object.entries(params.tables).map(([k, t]) => [k, t.data])), dense: params.dense }) : new Uint8Array(0);
  const got = mirroredParamsCodec.decode(await pg.broadcast(mine, 0));
  // Same model on every rank, or a clear error (never a TypeError, never a half-copied replica).
  const mismatch = (what: string, name: string, theirs: number, ours: number | undefined): GradientMismatchError =>
    new GradientMismatchError(`rank 0 broadcast ${what} '${name}' with ${theirs} values, this rank has ${ours ?? 'no such parameter'}; start every rank with the same model and hyper-parameters`);
  for (const [k, data] of Object.entries(got.tables)) if (params.tables[k]?.data.length !== data.length) throw mismatch('table', k, data.length, params.tables[k]?.data.length);
  for (const [k, v] of Object.entries(got.dense)) if (params.dense[k]?.length !== v.length) throw mismatch('dense parameter', k, v.length, params.dense[k]?.length);
  for (const [k, data] of Object.entries(got.tables)) params.tables[k].data.set(data);
  for (const [k, v] of Object.entries(got.dense)) params.dense[k].set(v);
}

export async function runMirroredTrainer(o: {
  readonly pg: ProcessGroup;
  readonly engine: Engine;
  readonly model: TrainableModel<unknown>;
  /** This rank's batches with their epochs (an empty batch: this rank sits a step out). */
  readonly data: AsyncIterable<FedExamples> | Iterable<FedExamples>;
  readonly optimizer: OptimizerConfig;
  readonly seed: number;
  /** star (default): everything through rank 0, summed in rank order; ring: dense gradients by ring all-reduce. */
  readonly allreduce?: 'star' | 'ring';
  readonly onStep?: (s: MirroredStep) => void;
  /**
   * Called after each step with the updated replica (e.g. to checkpoint every k steps) and a
   * builder of this step's TrainerState (a copy: call it before the callback's promise settles).
   */
  readonly onParams?: (step: number, params: ParamStore, state: () => TrainerState) => Promise<void> | undefined;
  /**
   * Called when the next batch starts a new epoch, before it is computed: the replica is then the
   * finished epoch's (`epoch`, 0-based) last step's — what early stopping scores. Not called after the last epoch (the loop ends).
   */
  readonly onEpochEnd?: (epoch: number, step: number, state: () => TrainerState) => Promise<void> | undefined;
  /**
   * Continue from a TrainerState (the same bytes on every rank): its parameters and optimizer
   * state are loaded on every rank (no broadcast), and steps count on from `resume.step`. The
   * caller starts `data` at (resume.epoch, resume.stepInEpoch) — the next global step's batch.
   */
  readonly resume?: TrainerState;
  /** Recorded in the TrainerState (default: the resumed state's job, else ''). */
  readonly job?: string;
}): Promise<{ params: ParamStore; steps: number; state: () => TrainerState }> {
  const params = initParams(o.model, o.seed);
  const optimizer = createOptimizer(o.optimizer);
  if (o.resume !== undefined) loadTrainerState(params, optimizer, o.resume);
  else await broadcastParams(o.pg, params);
  const job = o.job ?? o.resume?.job ?? '';
  // The next batch is requested while this step computes and all-reduces (src/prefetch.ts).
  const it = prefetch(o.data)[Symbol.asyncIterator]();
  let exhausted = false;
  let step = o.resume?.step ?? 0;
  // Where in the data the steps are: each item of `data` is one global step; a new epoch value starts the count again.
  let epoch = o.resume?.epoch ?? 0;
  let stepInEpoch = o.resume?.stepInEpoch ?? 0;
  const state = (): TrainerState => trainerState(job, o.pg.worldSize, step, epoch, stepInEpoch, params, optimizer);
  const denseSpecs = [...o.model.denseSpecs()].sort((a, b) => a.name.localeCompare(b.name));
  const denseSize = denseSpecs.reduce((s, d) => s + d.size, 0);
  for (;;) {
    const t0 = performance.now();
    let mine: Contribution = { count: 0, loss: 0, dense: {}, sparse: {} };
    let solo: StepResult | undefined;
    if (!exhausted) {
      const next = await it.next();
      if (next.done === true) exhausted = true;
      else if (next.value.epoch !== epoch) {
        // Every rank sees the new epoch on the same global step (the batches are slices of one global batch).
        if (stepInEpoch > 0) await o.onEpochEnd?.(epoch, step, state);
        epoch = next.value.epoch;
        stepInEpoch = 0;
      }
      if (next.done !== true && batchLength(next.value.batch) > 0) {
        // (An empty batch: this rank's slice of a short last batch is empty; it sits this step out.)
        const { batch } = next.value;
        // ctx.step is the global step, the same on every rank and in the single-process reference.
        const ctx = { seed: o.seed, epoch: next.value.epoch, step };
        const r = o.model.computeGradients(o.engine.tf, batch, gather(params, o.model.rowsFor(batch, ctx)), ctx);
        assertFiniteStep(r, { step, rank: o.pg.rank });
        if (o.pg.worldSize === 1) {
          // A group of one: the batch's mean gradient is already the global one. No weighting,
          // codec or collective round trip (they were a third of a 1-rank step's CPU), and the
          // bits are the single process's (trainLocal).
          solo = r;
        } else {
          // Weight by count so the sum over ranks divided by the total count is the global mean gradient.
          mine = {
            count: r.count,
            loss: r.loss,
            // In place: the step's gradients are this loop's to consume (encoded right below, read by nothing after).
            dense: Object.fromEntries(Object.entries(r.dense).map(([k, v]) => [k, scaleInPlace(v, r.count)])),
            sparse: Object.fromEntries(Object.entries(r.sparse).map(([k, g]) => [k, { rows: g.rows, values: scaleInPlace(g.values, r.count) }])),
          };
        }
      }
    }
    const t1 = performance.now();
    if (o.pg.worldSize === 1) {
      // No examples at this step (the data ended): the end, as for a group whose total count is 0.
      if (solo === undefined) break;
      applyStep(params, optimizer, solo);
      step++;
      stepInEpoch++;
      const t4 = performance.now();
      o.onStep?.({ step, epoch, loss: solo.loss, examples: solo.count, localExamples: solo.count, timing: { computeMs: t4 - t0, serdeMs: 0, waitMs: 0 } });
      await o.onParams?.(step, params, state);
      continue;
    }
    const ring = o.allreduce === 'ring';
    // With the ring, dense gradients (and count, loss) travel as one flat vector around the ring;
    // sparse rows differ by rank, so they are always reduced at the root.
    const payload = mirroredGradientCodec.encode(ring ? { ...mine, dense: {} } : mine);
    const t2 = performance.now();
    const reduced = await o.pg.allReduceWith(payload, combineGradients, 'gradients');
    let ringSum: Float32Array | undefined;
    if (ring) {
      const flat = new Float32Array(denseSize + 2);
      let off = 0;
      for (const d of denseSpecs) {
        const g = mine.dense[d.name];
        if (g !== undefined) flat.set(g, off);
        off += d.size;
      }
      flat[off] = mine.count;
      flat[off + 1] = mine.loss * mine.count;
      ringSum = await o.pg.allReduceRing(flat);
    }
    const t3 = performance.now();
    const got = mirroredGradientCodec.decode(reduced);
    const total = ringSum !== undefined ? ringSum[denseSize] : got.count;
    if (total === 0) break;
    // The root summed in rank order and divided by the total count; the ring's dense sum is divided here.
    const dense: Record<string, Float32Array> = { ...got.dense };
    const sparse: Record<string, SparseGradient> = { ...got.sparse };
    if (ringSum !== undefined) {
      const inv = 1 / total;
      let off = 0;
      for (const d of denseSpecs) {
        dense[d.name] = scaled(ringSum.slice(off, off + d.size), inv);
        off += d.size;
      }
    }
    applyStep(params, optimizer, { dense, sparse });
    step++;
    stepInEpoch++;
    const t4 = performance.now();
    o.onStep?.({
      step,
      epoch,
      loss: ringSum !== undefined ? ringSum[denseSize + 1] / total : got.loss,
      examples: total,
      localExamples: mine.count,
      timing: { computeMs: t1 - t0 + (t4 - t3), serdeMs: t2 - t1, waitMs: t3 - t2 },
    });
    await o.onParams?.(step, params, state);
  }
  return { params, steps: step, state };
}

/** This replica's TrainerState (copies of the parameters and of the optimizer state). */
function trainerState(job: string, worldSize: number, step: number, epoch: number, stepInEpoch: number, params: ParamStore, optimizer: RowOptimizer): TrainerState {
  const tables: Record<string, TableData> = {};
  for (const [name, t] of Object.entries(params.tables)) tables[name] = { rows: t.rows, dim: t.dim, data: t.data.slice() };
  const dense = Object.fromEntries(Object.entries(params.dense).map(([k, v]) => [k, v.slice()]));
  const slots: Record<string, OptimizerSlotState> = {};
  for (const [name, s] of Object.entries(optimizer.state())) slots[name] = { m: s.m.slice(), v: s.v.slice(), steps: s.steps.slice() };
  return { format: TRAINER_STATE_FORMAT, job, worldSize, step, epoch, stepInEpoch, params: { tables, dense }, optimizer: slots };
}

/** A full replica as a snapshot message (every row of every table). */
export function storeToSnapshot(job: string, step: number, store: ParamStore): import('@actorflow/protocol').Snapshot {
  const tables: Record<string, { rows: Int32Array; values: Float32Array; dim: number }> = {};
  for (const [name, t] of Object.entries(store.tables)) tables[name] = { rows: Int32Array.from({ length: t.rows }, (_, i) => i), values: t.data.slice(), dim: t.dim };
  return { job, step, version: step, tables, dense: Object.fromEntries(Object.entries(store.dense).map(([k, v]) => [k, v.slice()])) };
}
