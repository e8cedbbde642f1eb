// The wire kinds of distributed kNN: a similarity block going to the collector, the collector's
// acknowledgement, and the merged neighbour lists anyone may fetch. They live here rather than in
// @actorflow/protocol because only kNN speaks them; they use protocol's msgpack (typed arrays as
// binary) and its validator, so they look like every other kind.
//
// Subjects (job-scoped like the rest):
//   <job>.knn.block       trainer → aggregator: one SimilarityBlock (request; the reply is a KnnBlockAck)
//   <job>.knn.neighbours  anyone → aggregator: the merged Neighbours (request, empty payload)
import { defineMsgpackKind, validateToken, type Codec } from '@actorflow/protocol';
import type { Check, Obj } from '@actorflow/protocol/internal';
import type { Neighbours, SimilarityBlock } from './similarity.ts';

export const knnSubjects = {
  block: (job: string): string => `${validateToken(job, 'job id')}.knn.block`,
  neighbours: (job: string): string => `${validateToken(job, 'job id')}.knn.neighbours`,
} as const;

/** Error codes the collector answers with (RemoteError.code on the requesting side). */
export const KNN_NOT_READY = 'KNN_NOT_READY';
export const KNN_FOREIGN_BLOCK = 'KNN_FOREIGN_BLOCK';

/** One computed block, with where it sits in the plan so the collector can check it belongs. */
export interface KnnBlockMessage extends SimilarityBlock {
  readonly job: string;
  /** The rank that computed it (for progress and error messages). */
  readonly rank: number;
  /** Its index in the plan, and the plan's size and row count. */
  readonly index: number;
  readonly blocks: number;
  readonly numRows: number;
  /** Time the block took to compute, ms. */
  readonly computeMs: number;
}

export interface KnnBlockAck {
  readonly index: number;
  /** True when the collector already had this block (it was ignored). */
  readonly duplicate: boolean;
  /** Blocks held after this one, out of `total`. */
  readonly received: number;
  readonly total: number;
}

/** The merged neighbour lists of a job (also the on-disk format of model/neighbours.bin). */
export interface NeighboursMessage extends Neighbours {
  readonly job: string;
}

/**
 * Checks neighbour lists for `rows` rows over `numRows` candidates: offsets start at 0, never
 * decrease, end at the list length, no row keeps more than kMax, ids are in range. A malformed
 * message fails here, naming the field, instead of as a wrong prediction later.
 */
function lists(o: Obj, c: Check, rows: number, numRows: number, kMax: number): Pick<Neighbours, 'offsets' | 'neighbors' | 'sims' | 'support'> {
  const offsets = c.i32(o.offsets, 'offsets');
  const neighbors = c.i32(o.neighbors, 'neighbors');
  const sims = c.f32(o.sims, 'sims');
  const support = c.i32(o.support, 'support');
  if (offsets.length !== rows + 1) c.fail(`offsets has ${offsets.length} entries for ${rows} rows (want ${rows + 1})`);
  if (offsets[0] !== 0 || offsets[rows] !== neighbors.length) c.fail(`offsets must run from 0 to neighbors.length (${neighbors.length}), got ${offsets[0]} … ${offsets[rows]}`);
  for (let r = 0; r < rows; r++) {
    const n = offsets[r + 1] - offsets[r];
    if (n < 0 || n > kMax) c.fail(`row ${r} has ${n} neighbours (must be 0…kMax ${kMax})`);
  }
  if (sims.length !== neighbors.length || support.length !== neighbors.length) c.fail(`neighbors, sims and support differ in length (${neighbors.length}, ${sims.length}, ${support.length})`);
  for (let p = 0; p < neighbors.length; p++) {
    if (neighbors[p] < 0 || neighbors[p] >= numRows) c.fail(`neighbors[${p}] = ${neighbors[p]} is outside 0…${numRows - 1}`);
  }
  return { offsets, neighbors, sims, support };
}

export const knnBlockCodec: Codec<KnnBlockMessage> = defineMsgpackKind<KnnBlockMessage>('KnnBlock', (o, c) => {
  const numRows = c.int(o, 'numRows');
  const blocks = c.int(o, 'blocks', 1);
  const index = c.int(o, 'index');
  const from = c.int(o, 'from');
  const to = c.int(o, 'to');
  const kMax = c.int(o, 'kMax', 1);
  if (index >= blocks) c.fail(`index ${index} is not below blocks ${blocks}`);
  if (from > to || to > numRows) c.fail(`rows [${from}, ${to}) are not inside 0…${numRows}`);
  return { job: c.str(o, 'job'), rank: c.int(o, 'rank'), index, blocks, numRows, from, to, kMax, computeMs: c.num(o, 'computeMs'), ...lists(o, c, to - from, numRows, kMax) };
});

export const knnBlockAckCodec: Codec<KnnBlockAck> = defineMsgpackKind<KnnBlockAck>('KnnBlockAck', (o, c) => ({
  index: c.int(o, 'index'),
  duplicate: c.bool(o, 'duplicate'),
  received: c.int(o, 'received'),
  total: c.int(o, 'total'),
}));

export const neighboursCodec: Codec<NeighboursMessage> = defineMsgpackKind<NeighboursMessage>('KnnNeighbours', (o, c) => {
  const numRows = c.int(o, 'numRows');
  const kMax = c.int(o, 'kMax', 1);
  return { job: c.str(o, 'job'), numRows, kMax, ...lists(o, c, numRows, numRows, kMax) };
});
