// A data shard over NATS. Shard k of K serves every K-th global batch of the job's one global epoch
// (the single-process permutation of the whole training set; see KindState) and answers:
//   <job>.data.info          (queue group: any shard answers) dataset facts, JSON
//   <job>.data.<shard>.next  the next Arrow batch: shared mode (first come, first served, for the
//                            parameter server) or distributed mode (the request names rank, world
//                            size, epoch and step; stateless, like torch's DistributedSampler)
//   <job>.data.test          (queue group) the test split, Arrow (chunked when large); the request
//                            names what: {"kind": "ratings"|"user-rows"|"item-rows"|"images"|"validation"}, or the
//                            training rows by user ("history") or by item ("item-history")
//   <job>.data.<shard>.state the shard's cursor state for a checkpoint (DataShardState, JSON)
// A request names the kind of examples it wants (the model's input: rating rows, one row per user
// or per item, images); the shard builds each kind's example set once, on first use.
import { HandlerError, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import {
  EpochIterator,
  exampleCount,
  exampleSet,
  groupRows,
  rowsForIds,
  takeExamples,
  type AnyBatch,
  type ExampleKind,
  type ExampleSet,
  type ImageBatch,
  type InteractionsBatch,
  type Ratings,
  type RatingsBatch,
} from '@actorflow/data';
import {
  batchReplyCodec,
  batchRequestCodec,
  datasetInfoCodec,
  testSetRequestCodec,
  type DatasetInfo,
  encodeImageBatch,
  encodeInteractionsBatch,
  encodeRatingsBatch,
  subjects,
  type BatchKind,
} from '@actorflow/protocol';
import { historyRatings, type JobDataset } from './dataset.ts';

// The type and its validating codec live in libs/protocol (it owns every bus message).
export type { DatasetInfo } from '@actorflow/protocol';

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

/** 2: cursors count this shard's turns in the global epoch (1 counted batches of a per-shard partition). */
export const DATA_SHARD_STATE_FORMAT = 2;
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
 * function of (seed, epoch) and the shard's turns of (shard, of), so the cursor is all the RNG state there is; distributed mode
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
  /** The rating rows of this shard's turns in the first epoch (empty for image datasets). */
  readonly partition: Ratings;
  stats(): { served: number; epoch: number; done: boolean };
  /** The shared-mode cursors and counters, for a checkpoint (also served on `<job>.data.<shard>.state`). */
  exportState(): DataShardState;
  stop(): void;
}

/** Any kind of batch as Arrow IPC. */
export function encodeBatch(kind: ExampleKind, b: AnyBatch): Uint8Array {
  if (kind === 'images') return encodeImageBatch(b as ImageBatch);
  if (kind === 'ratings') return encodeRatingsBatch(b as RatingsBatch);
  return encodeInteractionsBatch(b as InteractionsBatch);
}

const enc = new TextEncoder();
const KINDS: readonly ExampleKind[] = ['ratings', 'user-rows', 'item-rows', 'images'];

/**
 * One kind of examples, and this shard's turn in the job's one global epoch. Every shard holds the
 * whole example set and computes the same epoch permutation a single process does (seeded with
 * the job's seed); the epoch's global batches are numbered across epochs, s = epoch·G + t (G
 * global batches per epoch), and shard k of K serves the s ≡ k (mod K). A client that asks the
 * shards in turn (DataClient.shared) therefore gets exactly the single-process batch sequence,
 * whatever K, every example once per epoch and exactly G·epochs steps. Distributed mode's global
 * step t of an epoch is served by shard t mod K in the same way.
 */
class KindState {
  readonly set: ExampleSet;
  readonly rows: number;
  /** Global batches per epoch in shared mode (batch size B, one consumer at a time). */
  readonly perEpoch: number;
  /** This shard's position in its own sequence: it has handed out `next` batches (s = shard + next·of). */
  next = 0;
  readonly #o: DataShardOptions;
  readonly #iterator: EpochIterator;
  /** Epoch permutations, newest last (two at most: mirrored ranks may straddle an epoch end). */
  readonly #orders: { epoch: number; order: Int32Array }[] = [];

  constructor(set: ExampleSet, o: DataShardOptions) {
    this.set = set;
    this.#o = o;
    this.rows = exampleCount(set);
    this.#iterator = new EpochIterator({ rows: this.rows, batchSize: o.batchSize, seed: o.seed });
    this.perEpoch = this.#iterator.globalBatchCount();
  }

  /** The single process's permutation of epoch `epoch` (shared by every rank and shard). */
  order(epoch: number): Int32Array {
    const hit = this.#orders.find((x) => x.epoch === epoch);
    if (hit !== undefined) return hit.order;
    const order = this.#iterator.order(epoch);
    this.#orders.push({ epoch, order });
    if (this.#orders.length > 2) this.#orders.shift();
    return order;
  }

  /** The global sequence number of this shard's next shared-mode batch. */
  get seq(): number {
    return this.#o.shard + this.next * this.#o.of;
  }

  get done(): boolean {
    return this.seq >= this.perEpoch * this.#o.epochs;
  }

  /** How many of this shard's batches lie before global batch `s` (s = epoch·G + t). */
  before(s: number): number {
    return s > this.#o.shard ? Math.ceil((s - this.#o.shard) / this.#o.of) : 0;
  }

  /** This shard's batches in epoch `epoch`. */
  inEpoch(epoch: number): number {
    return this.before((epoch + 1) * this.perEpoch) - this.before(epoch * this.perEpoch);
  }

  /** The cursor for a checkpoint: the epoch of the next batch and how many of this shard's batches of it were handed out. */
  cursor(): SharedCursor {
    if (this.done) return { epoch: this.#o.epochs, index: 0, done: true };
    const epoch = Math.floor(this.seq / this.perEpoch);
    return { epoch, index: this.next - this.before(epoch * this.perEpoch), done: false };
  }

  restore(c: SharedCursor): void {
    this.next = c.done ? this.before(this.perEpoch * this.#o.epochs) : this.before(c.epoch * this.perEpoch) + c.index;
  }

  /** Rank `rank`'s slice of global batch t (per-rank batch B, W ranks) of `epoch`: the single-process batch of size W·B, cut like DistributedSampler. */
  slice(epoch: number, t: number, rank: number, worldSize: number): Int32Array {
    const B = this.#o.batchSize;
    const order = this.order(epoch);
    const start = Math.min(order.length, t * worldSize * B + rank * B);
    const end = Math.min(order.length, start + B, (t + 1) * worldSize * B);
    return order.subarray(start, Math.max(start, end));
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
      st = new KindState(exampleSet(kind, whole, `data shard ${o.shard}`), o);
      kinds.set(kind, st);
      log(`shard ${o.shard}: serving its turns of ${st.rows} ${kind} examples (${st.perEpoch} global batches per epoch)`);
    }
    return st;
  };
  // The rating rows of this shard's turns in the first epoch (the shards take turns over one global
  // permutation, so which rows a shard serves changes from epoch to epoch).
  const ratingsPartition = ds.images === undefined ? firstEpochRows(state('ratings'), o) : ds.train;
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
      const batches = c.done ? 0 : st.inEpoch(c.epoch);
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
    kinds: Object.fromEntries([...kinds].map(([k, st]) => [k, st.cursor()])),
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
    ...(ds.validation !== undefined ? { validationRows: ds.validation.length } : {}),
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
    if (what === 'validation') {
      if (ds.validation === undefined) throw new HandlerError('NO_VALIDATION', 'this job has no validation set; start it with --validation F or --validation file:PATH');
      return encodeRatingsBatch(ds.validation);
    }
    if (what === 'user-rows' || what === 'item-rows') return encodeInteractionsBatch(groupRows(ds.test, what === 'user-rows' ? 'user' : 'item'));
    throw new HandlerError('BAD_REQUEST', `unknown test set kind '${what}'; ask for ratings, validation, user-rows, item-rows, images, history or item-history`);
  };
  const subs: Subscription[] = [
    serveLarge(nc, subjects.dataInfo(o.job), () => datasetInfoCodec.encode(info), { queue: 'data-info' }),
    serveLarge(nc, subjects.dataTest(o.job), (payload) => testSet(testSetRequestCodec.decode(payload).kind ?? 'ratings'), {
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
        if (req.rank >= req.worldSize) throw new HandlerError('BAD_REQUEST', `rank ${req.rank} is not below world size ${req.worldSize}`);
        // Global step t of the epoch (the client asks shard t mod K for its step ⌊t/K⌋), cut from
        // the single-process permutation. Past the epoch's global batches: end of epoch for every
        // rank alike. Within them, a rank whose slice of a short last batch is empty gets an empty
        // batch (it contributes nothing that step) — so all ranks stay on the same global step.
        const t = req.step * o.of + o.shard;
        const globalBatches = Math.ceil(st.rows / (o.batchSize * req.worldSize));
        if (t >= globalBatches) return batchReplyCodec.encode({ epoch: req.epoch, index: req.step, endOfEpoch: true, endOfData: req.epoch + 1 >= o.epochs, arrow: empty });
        const idx = st.slice(req.epoch, t, req.rank, req.worldSize);
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
    if (st.done) return batchReplyCodec.encode({ epoch: o.epochs, index: 0, endOfEpoch: true, endOfData: true, arrow: empty });
    const s = st.seq;
    const epoch = Math.floor(s / st.perEpoch);
    const t = s % st.perEpoch;
    if (st.next > 0 && st.before(epoch * st.perEpoch) === st.next) log(`shard ${o.shard}: ${kind} epoch ${epoch + 1}/${o.epochs}`);
    st.next++;
    const bytes = reply(kind, withHistory, epoch, t, takeExamples(st.set, st.slice(epoch, t, 0, 1)));
    if (st.done) log(`shard ${o.shard}: all ${o.epochs} epoch(s) of ${kind} served (${served} batches)`);
    return bytes;
  }
  return {
    partition: ratingsPartition,
    stats: () => {
      // The kinds trainers read in shared mode (a ratings dataset builds 'ratings' even for a user-rows model).
      const used = [...kinds.values()].filter((k) => k.next > 0);
      const sts = used.length > 0 ? used : [...kinds.values()].slice(0, 1);
      return { served, epoch: Math.min(...sts.map((k) => k.cursor().epoch), o.epochs), done: sts.length > 0 && sts.every((k) => k.done) };
    },
    exportState,
    stop: () => {
      for (const s of subs) s.unsubscribe();
    },
  };
}

function firstEpochRows(st: KindState, o: DataShardOptions): Ratings {
  const parts: Int32Array[] = [];
  for (let t = o.shard; t < st.perEpoch; t += o.of) parts.push(st.slice(0, t, 0, 1));
  const idx = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    idx.set(p, at);
    at += p.length;
  }
  const b = takeExamples(st.set, idx) as RatingsBatch;
  return { ...b, length: idx.length };
}

function distinct(ids: Int32Array): number {
  return new Set(ids).size;
}
