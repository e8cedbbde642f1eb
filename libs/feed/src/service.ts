// A data shard over NATS. It owns the rows of its partition (row hash mod `of`) and answers:
//   <job>.data.info          (queue group: any shard answers) dataset facts, JSON
//   <job>.data.<shard>.next  the next Arrow batch: shared mode (first come, first served, for the
//                            parameter server) or distributed mode (the request names rank, world
//                            size, epoch and step; stateless, like torch's DistributedSampler)
//   <job>.data.test          (queue group) the test split, Arrow (chunked when large); the request
//                            names what: {"kind": "ratings"|"user-rows"|"item-rows"|"images"}, or the
//                            training rows by user ("history") or by item ("item-history")
//   <job>.data.<shard>.state the shard's cursor state for a checkpoint (DataShardState, JSON)
// A request names the kind of examples it wants (the model's input: rating rows, one row per user
// or per item, images); the shard builds each kind's partition once, on first use.
import { HandlerError, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import {
  EpochIterator,
  exampleCount,
  exampleSet,
  groupRows,
  rowsForIds,
  shardExamples,
  takeExamples,
  type AnyBatch,
  type ExampleKind,
  type ExampleSet,
  type ImageBatch,
  type InteractionsBatch,
  type Ratings,
  type RatingsBatch,
} from '@actorflow/data';
import { batchReplyCodec, batchRequestCodec, encodeImageBatch, encodeInteractionsBatch, encodeRatingsBatch, subjects, type BatchKind } from '@actorflow/protocol';
import { historyRatings, type JobDataset } from './dataset.ts';

export interface DatasetInfo {
  /** 'images' for image datasets (MNIST), else 'ratings'. */
  readonly kind: 'ratings' | 'images';
  readonly numUsers: number;
  readonly numItems: number;
  /** Training rows over all shards (ratings, or images). */
  readonly trainRows: number;
  readonly testRows: number;
  readonly globalMean: number;
  readonly shards: number;
  readonly batchSize: number;
  readonly epochs: number;
  readonly noiseFloorRmse?: number;
  /** The lowest and highest training rating (rating models' predictions are clipped to it). */
  readonly ratingRange?: readonly [number, number];
  readonly numClasses?: number;
  /** Users and items with training ratings (the example counts of user-rows and item-rows models). */
  readonly trainUsers?: number;
  readonly trainItems?: number;
}

export interface DataShardOptions {
  readonly job: string;
  readonly shard: number;
  readonly of: number;
  readonly dataset: JobDataset;
  readonly batchSize: number;
  readonly epochs: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
  /** Continue the shared-mode cursors of a checkpoint (exportState() of an earlier incarnation of this shard). */
  readonly restore?: DataShardState;
}

export const DATA_SHARD_STATE_FORMAT = 1;
/** Shared-mode replies remembered per request id, to answer a retried request with the same batch. */
export const REQUEST_ID_MEMORY = 64;

/** A shared-mode cursor: the epoch, the batches of it handed out, whether every epoch is done. */
export interface SharedCursor {
  readonly epoch: number;
  readonly index: number;
  readonly done: boolean;
}

/**
 * A data shard's state for a checkpoint (JSON): per example kind its shared-mode cursor, the
 * batches served, and what the cursor means (batch size, seed, epochs). The epoch order is a
 * function of (seed, shard, epoch), so the cursor is all the RNG state there is; distributed mode
 * is stateless (the request names epoch and step).
 */
export interface DataShardState {
  readonly format: number;
  readonly shard: number;
  readonly of: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly epochs: number;
  readonly served: number;
  readonly kinds: Readonly<Partial<Record<ExampleKind, SharedCursor>>>;
}

/** A DataShardState that does not fit this shard (another shard, batch size, seed or dataset); the shard did not start. */
export class DataShardStateError extends Error {
  constructor(
    readonly shard: number,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(
      `data shard ${shard}: cannot restore the checkpointed cursor state: ${detail}; restore each data shard from its own part of a checkpoint of the same job (same dataset, batch size, seed and shard count)`,
      options,
    );
    this.name = 'DataShardStateError';
  }
}

export interface DataShardService {
  /** This shard's rating rows (empty for image datasets). */
  readonly partition: Ratings;
  stats(): { served: number; epoch: number; done: boolean };
  /** The shared-mode cursors and counters, for a checkpoint (also served on `<job>.data.<shard>.state`). */
  exportState(): DataShardState;
  stop(): void;
}

/** Shard k's epoch order is seeded with seed + k: one shard reproduces a single-process run with `seed`. */
export function shardSeed(seed: number, shard: number): number {
  return seed + shard;
}

/** Any kind of batch as Arrow IPC. */
export function encodeBatch(kind: ExampleKind, b: AnyBatch): Uint8Array {
  if (kind === 'images') return encodeImageBatch(b as ImageBatch);
  if (kind === 'ratings') return encodeRatingsBatch(b as RatingsBatch);
  return encodeInteractionsBatch(b as InteractionsBatch);
}

const enc = new TextEncoder();
const KINDS: readonly ExampleKind[] = ['ratings', 'user-rows', 'item-rows', 'images'];

/** One kind of examples of this shard's partition, with its shared-mode cursor. */
class KindState {
  readonly set: ExampleSet;
  readonly shared: EpochIterator;
  readonly distributed = new Map<string, EpochIterator>();
  /** The current epoch's batches per `rank/worldSize` (distributed mode). */
  readonly epochBatches = new Map<string, { readonly epoch: number; readonly batches: readonly Int32Array[] }>();
  epoch = 0;
  index = 0;
  cursor: Iterator<Int32Array>;
  done: boolean;

  constructor(set: ExampleSet, o: DataShardOptions) {
    this.set = set;
    this.shared = new EpochIterator({ rows: exampleCount(set), batchSize: o.batchSize, seed: shardSeed(o.seed, o.shard) });
    this.cursor = this.shared.batches(0);
    this.done = exampleCount(set) === 0 || o.epochs === 0;
  }

  /** Moves the shared cursor to (epoch, index): the epoch's order is deterministic, so skip `index` batches of it. */
  restore(c: SharedCursor): void {
    this.epoch = c.epoch;
    this.index = c.index;
    this.done = this.done || c.done;
    if (this.done) return;
    this.cursor = this.shared.batches(c.epoch);
    for (let i = 0; i < c.index; i++) this.cursor.next();
  }
}

/** Checks a DataShardState's shape and its fit to this shard's options (not yet the example counts). */
function checkState(st: unknown, o: DataShardOptions): DataShardState {
  const fail = (detail: string): never => {
    throw new DataShardStateError(o.shard, detail);
  };
  if (typeof st !== 'object' || st === null || Array.isArray(st)) return fail('the state is not an object');
  const s = st as Record<string, unknown>;
  const int = (v: unknown, what: string): number => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : fail(`${what} must be a non-negative integer, got ${JSON.stringify(v)}`));
  if (s.format !== DATA_SHARD_STATE_FORMAT) fail(`format ${JSON.stringify(s.format)} is not supported (this build reads format ${DATA_SHARD_STATE_FORMAT})`);
  const want = { shard: o.shard, of: o.of, batchSize: o.batchSize, seed: o.seed, epochs: o.epochs };
  for (const [k, v] of Object.entries(want)) {
    if (k === 'seed' ? s[k] !== v : int(s[k], k) !== v) fail(`the state's ${k} is ${JSON.stringify(s[k])}, this shard's is ${v}`);
  }
  const served = int(s.served, 'served');
  if (typeof s.kinds !== 'object' || s.kinds === null || Array.isArray(s.kinds)) return fail('kinds is not an object');
  const kinds: Partial<Record<ExampleKind, SharedCursor>> = {};
  for (const [kind, c] of Object.entries(s.kinds as Record<string, unknown>)) {
    if (!KINDS.includes(kind as ExampleKind)) fail(`unknown example kind '${kind}' (kinds: ${KINDS.join(', ')})`);
    if (typeof c !== 'object' || c === null) fail(`kinds.${kind} is not an object`);
    const cur = c as Record<string, unknown>;
    const epoch = int(cur.epoch, `kinds.${kind}.epoch`);
    const index = int(cur.index, `kinds.${kind}.index`);
    if (typeof cur.done !== 'boolean') fail(`kinds.${kind}.done must be a boolean`);
    const done = cur.done as boolean;
    if (epoch > o.epochs || (epoch === o.epochs && !done)) fail(`kinds.${kind}.epoch ${epoch} is past the job's ${o.epochs} epoch(s)`);
    kinds[kind as ExampleKind] = { epoch, index, done };
  }
  return { format: DATA_SHARD_STATE_FORMAT, shard: o.shard, of: o.of, batchSize: o.batchSize, seed: o.seed, epochs: o.epochs, served, kinds };
}

export function serveDataShard(nc: NatsConnection, o: DataShardOptions): DataShardService {
  const log = o.log ?? (() => undefined);
  const ds = o.dataset;
  const whole = { ratings: ds.train, ...(ds.images !== undefined ? { images: ds.images.train } : {}) };
  const kinds = new Map<ExampleKind, KindState>();
  const state = (kind: ExampleKind): KindState => {
    let st = kinds.get(kind);
    if (st === undefined) {
      st = new KindState(shardExamples(exampleSet(kind, whole, `data shard ${o.shard}`), o.shard, o.of), o);
      kinds.set(kind, st);
      log(`shard ${o.shard}: serving ${exampleCount(st.set)} ${kind} examples`);
    }
    return st;
  };
  const ratingsPartition = ds.images === undefined ? (state('ratings').set as { ratings: Ratings }).ratings : ds.train;
  // Training histories by user over the whole training set (not the partition): SVD++ and NeuMF
  // need a user's every rated item, and the evaluator needs them to exclude seen items.
  let historyRows: InteractionsBatch | undefined;
  // With a strong split the held-out users' fold-in items are their histories too.
  const history = (): InteractionsBatch => (historyRows ??= groupRows(historyRatings(ds), 'user'));
  let served = 0;
  if (o.restore !== undefined) {
    const restore = checkState(o.restore, o);
    for (const [kind, c] of Object.entries(restore.kinds) as [ExampleKind, SharedCursor][]) {
      let st: KindState;
      try {
        st = state(kind);
      } catch (err) {
        throw new DataShardStateError(o.shard, `the state has a cursor for '${kind}', but this dataset has no such examples (${(err as Error).message})`, { cause: err });
      }
      const batches = st.shared.globalBatchCount();
      if (c.index > batches) throw new DataShardStateError(o.shard, `the '${kind}' cursor is at batch ${c.index} of epoch ${c.epoch}, but an epoch here has ${batches} batches`);
      st.restore(c);
      log(`shard ${o.shard}: ${kind} cursor restored at epoch ${c.epoch + 1}, batch ${c.index}${c.done ? ' (all epochs done)' : ''}`);
    }
    served = restore.served;
  }
  // Shared mode: replies by request id (oldest first), so a retried request gets the same batch.
  const answered = new Map<string, Uint8Array>();
  const exportState = (): DataShardState => ({
    format: DATA_SHARD_STATE_FORMAT,
    shard: o.shard,
    of: o.of,
    batchSize: o.batchSize,
    seed: o.seed,
    epochs: o.epochs,
    served,
    kinds: Object.fromEntries([...kinds].map(([k, st]) => [k, { epoch: st.epoch, index: st.index, done: st.done }])),
  });
  const info: DatasetInfo = {
    kind: ds.images !== undefined ? 'images' : 'ratings',
    numUsers: ds.numUsers,
    numItems: ds.numItems,
    trainRows: ds.images !== undefined ? ds.images.train.n : ds.train.length,
    testRows: ds.images !== undefined ? ds.images.test.n : ds.test.length,
    globalMean: ds.globalMean,
    shards: o.of,
    batchSize: o.batchSize,
    epochs: o.epochs,
    ...(ds.noiseFloorRmse !== undefined ? { noiseFloorRmse: ds.noiseFloorRmse } : {}),
    ...(ds.ratingRange !== undefined ? { ratingRange: ds.ratingRange } : {}),
    ...(ds.images !== undefined ? { numClasses: ds.images.numClasses } : { trainUsers: distinct(ds.train.user), trainItems: distinct(ds.train.item) }),
  };
  const empty = new Uint8Array(0);
  const reply = (kind: ExampleKind, withHistory: boolean, epoch: number, index: number, batch: AnyBatch): Uint8Array => {
    served++;
    const extra = withHistory && kind === 'ratings' ? { history: encodeInteractionsBatch(rowsForIds(history(), Int32Array.from(new Set((batch as RatingsBatch).user)).sort())) } : {};
    return batchReplyCodec.encode({ epoch, index, endOfEpoch: false, endOfData: false, arrow: encodeBatch(kind, batch), ...extra });
  };
  const testSet = (what: string): Uint8Array => {
    if (what === 'history') return encodeInteractionsBatch(history());
    if (what === 'item-history') return encodeInteractionsBatch(groupRows(ds.train, 'item'));
    if (what === 'images') {
      if (ds.images === undefined) throw new HandlerError('NO_IMAGES', 'this dataset has no images');
      return encodeImageBatch({ pixels: ds.images.test.pixels, label: ds.images.test.labels });
    }
    if (what === 'ratings') return encodeRatingsBatch(ds.test);
    if (what === 'user-rows' || what === 'item-rows') return encodeInteractionsBatch(groupRows(ds.test, what === 'user-rows' ? 'user' : 'item'));
    throw new HandlerError('BAD_REQUEST', `unknown test set kind '${what}'; ask for ratings, user-rows, item-rows, images, history or item-history`);
  };
  const subs: Subscription[] = [
    serveLarge(nc, subjects.dataInfo(o.job), () => enc.encode(JSON.stringify(info)), { queue: 'data-info' }),
    serveLarge(nc, subjects.dataTest(o.job), (payload) => testSet(payload.length === 0 ? 'ratings' : ((JSON.parse(new TextDecoder().decode(payload)) as { kind?: string }).kind ?? 'ratings')), {
      queue: 'data-test',
    }),
    serveLarge(nc, subjects.dataNext(o.job, o.shard), (payload) => {
      const req = batchRequestCodec.decode(payload);
      if (req.job !== o.job) throw new HandlerError('WRONG_JOB', `this shard serves job ${o.job}, not ${req.job}`);
      const kind: BatchKind = req.kind ?? 'ratings';
      const withHistory = req.history === true;
      const st = state(kind);
      if (req.step !== undefined) {
        // Distributed mode: rank r's step-th batch of the epoch, computed, not remembered.
        if (req.epoch >= o.epochs) return batchReplyCodec.encode({ epoch: req.epoch, index: req.step, endOfEpoch: true, endOfData: true, arrow: empty });
        const key = `${req.rank}/${req.worldSize}`;
        let it = st.distributed.get(key);
        if (it === undefined) {
          it = new EpochIterator({ rows: exampleCount(st.set), batchSize: o.batchSize, seed: shardSeed(o.seed, o.shard), rank: req.rank, worldSize: req.worldSize });
          st.distributed.set(key, it);
        }
        // Past the epoch's global batches: end of epoch for every rank alike. Within them, a rank
        // whose slice of a short last batch is empty gets an empty batch (it contributes nothing
        // that step) — so all ranks stay on the same global step.
        if (req.step >= it.globalBatchCount()) return batchReplyCodec.encode({ epoch: req.epoch, index: req.step, endOfEpoch: true, endOfData: req.epoch + 1 >= o.epochs, arrow: empty });
        // The epoch's batch list is built once per (rank, world size, epoch), not per request: building
        // it per request made an epoch quadratic in its batches.
        let epochBatches = st.epochBatches.get(key);
        if (epochBatches === undefined || epochBatches.epoch !== req.epoch) {
          epochBatches = { epoch: req.epoch, batches: [...it.batches(req.epoch)] };
          st.epochBatches.set(key, epochBatches);
        }
        const idx = epochBatches.batches[req.step] ?? new Int32Array(0);
        return reply(kind, withHistory, req.epoch, req.step, takeExamples(st.set, idx));
      }
      // Shared mode: the next batch of the current epoch, whoever asks; a request id already answered gets that answer again.
      if (req.requestId === undefined) return sharedNext(st, kind, withHistory);
      const seen = answered.get(req.requestId);
      if (seen !== undefined) return seen;
      const bytes = sharedNext(st, kind, withHistory);
      answered.set(req.requestId, bytes);
      if (answered.size > REQUEST_ID_MEMORY) answered.delete(answered.keys().next().value as string);
      return bytes;
    }),
    serveLarge(nc, subjects.dataState(o.job, o.shard), () => enc.encode(JSON.stringify(exportState()))),
  ];
  function sharedNext(st: KindState, kind: ExampleKind, withHistory: boolean): Uint8Array {
    for (;;) {
      if (st.done) return batchReplyCodec.encode({ epoch: st.epoch, index: st.index, endOfEpoch: true, endOfData: true, arrow: empty });
      const next = st.cursor.next();
      if (!next.done) return reply(kind, withHistory, st.epoch, st.index++, takeExamples(st.set, next.value));
      st.epoch++;
      st.index = 0;
      if (st.epoch >= o.epochs) {
        st.done = true;
        log(`shard ${o.shard}: all ${o.epochs} epoch(s) of ${kind} served (${served} batches)`);
      } else {
        log(`shard ${o.shard}: epoch ${st.epoch + 1}/${o.epochs}`);
        st.cursor = st.shared.batches(st.epoch);
      }
    }
  }
  return {
    partition: ratingsPartition,
    stats: () => {
      const st = [...kinds.values()][0];
      return { served, epoch: st?.epoch ?? 0, done: st?.done ?? false };
    },
    exportState,
    stop: () => {
      for (const s of subs) s.unsubscribe();
    },
  };
}

function distinct(ids: Int32Array): number {
  return new Set(ids).size;
}
