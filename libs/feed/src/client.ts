// How trainers and the evaluator read data shards. Every request rides out a broker restart or a
// restarting data shard (requestWithRetry, until the retry deadline): info, test sets and
// distributed-mode batches are stateless on the server; a shared-mode `next` carries a requestId
// `<client>:<seq>` reused by its retries, so a shard hands out no batch twice and loses none.
import { randomBytes } from 'node:crypto';
import { requestWithRetry, type NatsConnection, type RetryOptions } from '@actorflow/bus';
import type { AnyBatch, ExampleKind, HeldOut, ImageBatch, InteractionsBatch, Ratings, RatingsBatch } from '@actorflow/data';
import type { ModelShape } from './dataset.ts';
import {
  batchReplyCodec,
  batchRequestCodec,
  datasetInfoCodec,
  testSetRequestCodec,
  decodeImageBatch,
  decodeInteractionsBatch,
  decodeRatingsBatch,
  subjects,
  type BatchReply,
} from '@actorflow/protocol';
import type { DatasetInfo } from '@actorflow/protocol';

export interface FedBatch<B = AnyBatch> {
  readonly epoch: number;
  readonly batch: B;
}

/** What to ask the data shards for: the model's input kind, and whether ratings batches carry their users' histories. */
export interface FeedKind {
  readonly kind: ExampleKind;
  readonly history?: boolean;
}

/** An Arrow batch of the given kind. */
export function decodeBatch(kind: ExampleKind, bytes: Uint8Array): AnyBatch {
  if (kind === 'ratings') return decodeRatingsBatch(bytes);
  if (kind === 'images') return decodeImageBatch(bytes);
  return decodeInteractionsBatch(bytes);
}

function fed(kind: ExampleKind, reply: BatchReply): AnyBatch {
  const batch = decodeBatch(kind, reply.arrow);
  return reply.history !== undefined ? { ...(batch as RatingsBatch), history: decodeInteractionsBatch(reply.history) } : batch;
}

export interface DataClientOptions {
  readonly job: string;
  readonly shards: number;
  /** Bound on one attempt of a request (default 30 s; test sets get 4×). */
  readonly timeoutMs?: number;
  /** Retry deadline and backoff (default: requestWithRetry's, the job-level ACTORFLOW_RETRY_DEADLINE_S or 120 s). */
  readonly retry?: Omit<RetryOptions, 'attemptTimeoutMs' | 'onRetry'>;
  /** Told about retries (at most one line per subject per 5 s). */
  readonly log?: (line: string) => void;
}

/** Where a distributed feed starts: global step `step` (as served, counting every shard's) of `epoch`. */
export interface FeedPosition {
  readonly epoch: number;
  readonly step: number;
}

const LOG_INTERVAL_MS = 5000;

export class DataClient {
  readonly #nc: NatsConnection;
  readonly #job: string;
  readonly #shards: number;
  readonly #timeoutMs: number;
  readonly #retryOpts: Omit<RetryOptions, 'attemptTimeoutMs' | 'onRetry'>;
  readonly #log: ((line: string) => void) | undefined;
  readonly #loggedAt = new Map<string, number>();
  /** Names this client's shared-mode requests (requestId = `<id>:<seq>`). */
  readonly #id = randomBytes(6).toString('hex');
  #seq = 0;
  #retries = 0;

  constructor(nc: NatsConnection, o: DataClientOptions) {
    this.#nc = nc;
    this.#job = o.job;
    this.#shards = o.shards;
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#retryOpts = o.retry ?? {};
    this.#log = o.log;
  }

  /** Attempts retried so far (timeouts, no responders, connection drops). */
  get retries(): number {
    return this.#retries;
  }

  #request(subject: string, payload: Uint8Array, attemptTimeoutMs = this.#timeoutMs): Promise<Uint8Array> {
    return requestWithRetry(this.#nc, subject, payload, {
      ...this.#retryOpts,
      attemptTimeoutMs,
      onRetry: (attempt, err) => {
        this.#retries++;
        if (this.#log === undefined) return;
        const now = Date.now();
        if (now - (this.#loggedAt.get(subject) ?? -Infinity) < LOG_INTERVAL_MS) return;
        this.#loggedAt.set(subject, now);
        this.#log(`data: retrying ${subject} (attempt ${attempt} failed: ${err.message})`);
      },
    });
  }

  async info(): Promise<DatasetInfo> {
    const reply = await this.#request(subjects.dataInfo(this.#job), new Uint8Array(0));
    return datasetInfoCodec.decode(reply);
  }

  /**
   * Waits until some data shard answers (the shards may still be loading), telling `onWait` each
   * retry (every 500 ms); after `timeoutMs` a RetryDeadlineError naming the last error.
   */
  async waitForInfo(timeoutMs: number, onWait: (attempt: number) => void = () => undefined): Promise<DatasetInfo> {
    const subject = subjects.dataInfo(this.#job);
    const reply = await requestWithRetry(this.#nc, subject, new Uint8Array(0), {
      deadlineMs: timeoutMs,
      attemptTimeoutMs: this.#timeoutMs,
      backoff: { initialMs: 500, maxMs: 500, factor: 1, jitter: 0 },
      onRetry: (attempt) => onWait(attempt),
    });
    return datasetInfoCodec.decode(reply);
  }

  /**
   * Shared mode (parameter server): round-robin over the shards, each handing out its next batch;
   * ends when every shard reports end of data. Several trainers may read at once: each batch goes
   * to exactly one of them. Shard k serves the global batches s ≡ k (mod K) of the job's one global
   * epoch, so one reader gets exactly the single-process sequence, whatever K.
   */
  async *shared<B extends AnyBatch = RatingsBatch>(what: FeedKind = { kind: 'ratings' }): AsyncGenerator<FedBatch<B>> {
    const live = Array.from({ length: this.#shards }, (_, k) => k);
    let turn = 0;
    while (live.length > 0) {
      const k = turn % live.length;
      const shard = live[k];
      const reply = batchReplyCodec.decode(
        await this.#request(
          subjects.dataNext(this.#job, shard),
          batchRequestCodec.encode({
            job: this.#job,
            rank: 0,
            worldSize: 1,
            epoch: 0,
            kind: what.kind,
            ...(what.history === true ? { history: true } : {}),
            // The same id for every retry of this request (the bytes are encoded once).
            requestId: `${this.#id}:${this.#seq++}`,
          }) /* shared mode: who asks does not matter */,
        ),
      );
      if (reply.endOfData) {
        live.splice(k, 1);
        continue;
      }
      turn++;
      yield { epoch: reply.epoch, batch: fed(what.kind, reply) as B };
    }
  }

  /**
   * Distributed mode (mirrored): this rank's slice of every global batch, epoch after epoch.
   * Global step t of an epoch is served by shard t mod K (its step ⌊t/K⌋), so the shards take
   * turns over one global permutation; the epoch ends, for every rank alike, after its
   * ⌈rows / (worldSize · batch)⌉ global steps. Whatever K, the ranks' batches of step t together
   * are exactly a single process's batch t of size worldSize × batch. Stateless on the server: (rank, worldSize, epoch, step) names it,
   * so retries are harmless. `start` resumes at global step `start.step` of epoch `start.epoch`
   * (the t above: the first batch yielded is the one served at that step; mirrored resume).
   */
  async *distributed<B extends AnyBatch = RatingsBatch>(
    rank: number,
    worldSize: number,
    what: FeedKind = { kind: 'ratings' },
    start: FeedPosition = { epoch: 0, step: 0 },
  ): AsyncGenerator<FedBatch<B>> {
    if (!Number.isSafeInteger(start.epoch) || start.epoch < 0 || !Number.isSafeInteger(start.step) || start.step < 0) {
      throw new RangeError(`distributed feed: start must be non-negative integers, got epoch ${start.epoch}, step ${start.step}`);
    }
    for (let epoch = start.epoch; ; epoch++) {
      for (let t = epoch === start.epoch ? start.step : 0; ; t++) {
        const shard = t % this.#shards;
        const reply = batchReplyCodec.decode(
          await this.#request(
            subjects.dataNext(this.#job, shard),
            batchRequestCodec.encode({ job: this.#job, rank, worldSize, epoch, step: Math.floor(t / this.#shards), kind: what.kind, ...(what.history === true ? { history: true } : {}) }),
          ),
        );
        if (reply.endOfData && reply.arrow.length === 0) return;
        if (reply.endOfEpoch) break;
        yield { epoch, batch: fed(what.kind, reply) as B };
      }
    }
  }

  async #test(kind: string): Promise<Uint8Array> {
    return this.#request(subjects.dataTest(this.#job), testSetRequestCodec.encode({ kind }), this.#timeoutMs * 4);
  }

  async testSet(): Promise<Ratings> {
    const b = decodeRatingsBatch(await this.#test('ratings'));
    return { ...b, length: b.user.length };
  }

  /** The --validation ratings (carved from training, never trained on). */
  async validationSet(): Promise<Ratings> {
    const b = decodeRatingsBatch(await this.#test('validation'));
    return { ...b, length: b.user.length };
  }

  /** The test split grouped into rows (by user or by item). */
  async testRows(by: 'user-rows' | 'item-rows'): Promise<InteractionsBatch> {
    return decodeInteractionsBatch(await this.#test(by));
  }

  async testImages(): Promise<ImageBatch> {
    return decodeImageBatch(await this.#test('images'));
  }

  /** Every user's training items (to exclude them when ranking, and as the autoencoders' input). */
  async trainHistory(): Promise<InteractionsBatch> {
    return decodeInteractionsBatch(await this.#test('history'));
  }

  /** Every item's training ratings (item-based AutoRec's input rows). */
  async trainItemHistory(): Promise<InteractionsBatch> {
    return decodeInteractionsBatch(await this.#test('item-history'));
  }

  /**
   * The held-out data a model of this task and input is scored on, over NATS (heldOutOf builds the
   * same from a dataset in memory): test ratings and histories for rating models, test items and
   * training items per user for ranking, test images for image models.
   */
  async heldOut(model: ModelShape, numItems: number): Promise<HeldOut> {
    const task = model.task ?? 'rating';
    const input = model.input ?? 'ratings';
    if (input === 'images') return { images: await this.testImages(), numItems };
    if (task === 'ranking') {
      const [testRows, history] = await Promise.all([this.testRows('user-rows'), this.trainHistory()]);
      return { testRows, history, numItems };
    }
    const ratings = await this.testSet();
    const range = (await this.info()).ratingRange;
    const ratingRange = range !== undefined ? { ratingRange: range } : {};
    if (input === 'interactions' && model.rowsAre === 'items') return { ratings, itemHistory: await this.trainItemHistory(), numItems, ...ratingRange };
    // Rating models get the histories too: SVD++ reads them, and cold-start rows are the ids absent from them.
    return { ratings, history: await this.trainHistory(), numItems, ...ratingRange };
  }
}
