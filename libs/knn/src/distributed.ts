// Similarity blocks across processes. Every worker (trainer rank) holds the same KnnData, derives
// the same cost-balanced plan, computes the blocks b with b mod worldSize = rank and sends each
// one to the collector (on the aggregator), which checks it against its own copy of the plan,
// merges when every block has arrived and then serves the merged neighbour lists.
//
// Why a static split rather than handing out blocks on request: the plan is a pure function of
// the data and the hyper-parameters, so no coordination is needed, any rank can be rerun alone
// (the collector ignores blocks it already has), and the result does not depend on timing.
import { HandlerError, RemoteError, requestLarge, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { KnnError } from './errors.ts';
import { KNN_FOREIGN_BLOCK, KNN_NOT_READY, knnBlockAckCodec, knnBlockCodec, knnSubjects, neighboursCodec, type KnnBlockAck, type KnnBlockMessage } from './messages.ts';
import {
  blockCosts,
  computeBlock,
  mergeBlocks,
  planBlocks,
  resolveSimilarityOptions,
  type Block,
  type KnnData,
  type KnnKind,
  type Neighbours,
  type SimilarityBlock,
  type SimilarityOptions,
} from './similarity.ts';

/** The plan every rank and the collector use: `blocks` ranges of about equal cost (fewer when there are fewer rows). */
export function knnPlan(data: KnnData, kind: KnnKind, blocks: number): Block[] {
  return planBlocks(kind === 'item' ? data.numItems : data.numUsers, blocks, blockCosts(data, kind));
}

/** Blocks of `plan` that `rank` of `worldSize` computes: index mod worldSize = rank (round robin over cost-balanced blocks). */
export function blocksOfRank(plan: readonly Block[], rank: number, worldSize: number): Block[] {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new KnnError(`world size must be an integer >= 1, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new KnnError(`rank ${rank} is not in 0…${worldSize - 1}: give each of the ${worldSize} ranks a different --rank below the world size (or raise --world-size)`);
  }
  return plan.filter((b) => b.index % worldSize === rank);
}

export interface KnnBlockProgress {
  readonly rank: number;
  readonly block: Block;
  /** Blocks this rank has finished (including this one), out of `mine`. */
  readonly done: number;
  readonly mine: number;
  readonly computeMs: number;
  /** Time to encode and have the collector acknowledge the block, ms. */
  readonly sendMs: number;
  readonly ack: KnnBlockAck;
}

export interface KnnWorkerOptions {
  readonly nc: NatsConnection;
  readonly job: string;
  readonly rank: number;
  readonly worldSize: number;
  readonly data: KnnData;
  readonly options: SimilarityOptions;
  /** Blocks in the plan (the same number on every rank and on the collector). */
  readonly blocks: number;
  readonly log?: (line: string) => void;
  readonly onBlock?: (p: KnnBlockProgress) => void;
  /** How long the collector may take to acknowledge one block (default 120 s). */
  readonly timeoutMs?: number;
}

export interface KnnWorkerResult {
  readonly blocks: number;
  readonly rows: number;
  readonly seconds: number;
}

/** Sends one computed block; the collector's refusal comes back as a KnnError saying why. */
export async function sendKnnBlock(nc: NatsConnection, msg: KnnBlockMessage, timeoutMs = 120_000): Promise<KnnBlockAck> {
  try {
    return knnBlockAckCodec.decode(await requestLarge(nc, knnSubjects.block(msg.job), knnBlockCodec.encode(msg), { timeoutMs }));
  } catch (err) {
    if (err instanceof RemoteError && err.code === KNN_FOREIGN_BLOCK) throw new KnnError(`the aggregator refused block ${msg.index} of rank ${msg.rank}: ${err.message}`);
    throw err;
  }
}

/** Computes and sends this rank's blocks, one at a time (each acknowledged before the next is computed). */
export async function runKnnWorker(o: KnnWorkerOptions): Promise<KnnWorkerResult> {
  const resolved = resolveSimilarityOptions(o.options);
  const plan = knnPlan(o.data, resolved.kind, o.blocks);
  const mine = blocksOfRank(plan, o.rank, o.worldSize);
  const numRows = resolved.kind === 'item' ? o.data.numItems : o.data.numUsers;
  const started = performance.now();
  let rows = 0;
  o.log?.(`rank ${o.rank}/${o.worldSize}: ${mine.length} of ${plan.length} ${resolved.kind}-${resolved.similarity} similarity blocks (${mine.map((b) => b.index).join(', ') || 'none'})`);
  for (let i = 0; i < mine.length; i++) {
    const block = mine[i];
    // Computing is synchronous; yielding first lets NATS pings and acks get through between blocks.
    await new Promise((r) => setImmediate(r));
    const t0 = performance.now();
    const sb = computeBlock(o.data, o.options, block);
    const computeMs = performance.now() - t0;
    const ack = await sendKnnBlock(o.nc, { ...sb, job: o.job, rank: o.rank, index: block.index, blocks: plan.length, numRows, computeMs }, o.timeoutMs);
    const sendMs = performance.now() - t0 - computeMs;
    rows += block.to - block.from;
    o.log?.(
      `rank ${o.rank}: block ${block.index} (rows ${block.from}…${block.to - 1}) in ${(computeMs / 1000).toFixed(2)} s, sent in ${(sendMs / 1000).toFixed(2)} s; ${i + 1}/${mine.length} of mine, ${ack.received}/${ack.total} at the aggregator`,
    );
    o.onBlock?.({ rank: o.rank, block, done: i + 1, mine: mine.length, computeMs, sendMs, ack });
  }
  return { blocks: mine.length, rows, seconds: (performance.now() - started) / 1000 };
}

export interface CollectOptions {
  /** kMax every block must have been computed with (default: whatever the first block says). */
  readonly kMax?: number;
  readonly log?: (line: string) => void;
}

export interface KnnCollector {
  /** Resolves with the merged lists once every block of the plan has arrived. */
  readonly done: Promise<Neighbours>;
  /** Blocks received so far, out of `total`. */
  received(): number;
  readonly total: number;
  stop(): void;
}

/**
 * Collects the blocks of `plan` on `<job>.knn.block` and, once all have arrived, merges them and
 * answers `<job>.knn.neighbours` (before that it answers KNN_NOT_READY). A block already held is
 * acknowledged as a duplicate and ignored; a block that is not in the plan (other index, rows,
 * row count or kMax — i.e. a worker with other data or hyper-parameters) is refused with
 * KNN_FOREIGN_BLOCK and nothing is stored.
 */
export function collectKnnBlocks(nc: NatsConnection, job: string, plan: readonly Block[], o: CollectOptions = {}): KnnCollector {
  // A plan that does not tile its rows could never merge: say so now, not after the last block.
  plan.forEach((b, i) => {
    if (b.index !== i || b.from !== (i === 0 ? 0 : plan[i - 1].to) || b.to <= b.from) {
      throw new KnnError(`collectKnnBlocks: block ${i} of the plan is ${JSON.stringify(b)}; a plan must tile its rows in order (use knnPlan or planBlocks)`);
    }
  });
  const numRows = plan.length > 0 ? plan[plan.length - 1].to : 0;
  const have = new Map<number, SimilarityBlock>();
  let kMax = o.kMax;
  let merged: Uint8Array | undefined;
  let resolve!: (n: Neighbours) => void;
  const done = new Promise<Neighbours>((res) => {
    resolve = res;
  });
  const started = performance.now();
  // Cannot fail: every block was checked against a plan that tiles the rows, with one kMax.
  const finish = (): void => {
    const n = mergeBlocks([...have.values()], numRows);
    merged = neighboursCodec.encode({ job, ...n });
    o.log?.(
      `all ${plan.length} similarity blocks in after ${((performance.now() - started) / 1000).toFixed(1)} s: ${n.neighbors.length} neighbour entries over ${numRows} rows; serving ${knnSubjects.neighbours(job)}`,
    );
    resolve(n);
  };
  const foreign = (why: string): never => {
    throw new HandlerError(
      KNN_FOREIGN_BLOCK,
      `${why}. The trainer and the aggregator of job ${job} disagree on the data or the hyper-parameters (kind, blocks, kMax); restart the trainers against this aggregator, or the aggregator with the trainers' configuration`,
    );
  };
  const subs: Subscription[] = [
    serveLarge(nc, knnSubjects.block(job), (payload) => {
      const b = knnBlockCodec.decode(payload);
      const where = `block ${b.index} [${b.from}, ${b.to}) of ${b.blocks} over ${b.numRows} rows from rank ${b.rank}`;
      if (b.job !== job) foreign(`${where} belongs to job ${b.job}`);
      const want = plan[b.index];
      if (b.blocks !== plan.length || b.numRows !== numRows || want === undefined || want.from !== b.from || want.to !== b.to) {
        foreign(`${where} is not in this plan (${plan.length} blocks over ${numRows} rows${want !== undefined ? `, block ${b.index} is [${want.from}, ${want.to})` : ''})`);
      }
      if (kMax !== undefined && b.kMax !== kMax) foreign(`${where} was computed with kMax ${b.kMax}, not ${kMax}`);
      kMax = b.kMax;
      const duplicate = have.has(b.index);
      if (duplicate) {
        o.log?.(`${where} again: already held, ignored`);
      } else {
        have.set(b.index, b);
        o.log?.(`${where} in (${(b.computeMs / 1000).toFixed(2)} s to compute): ${have.size}/${plan.length}`);
        if (have.size === plan.length) finish();
      }
      return knnBlockAckCodec.encode({ index: b.index, duplicate, received: have.size, total: plan.length });
    }),
    serveLarge(
      nc,
      knnSubjects.neighbours(job),
      () => {
        if (merged === undefined) throw new HandlerError(KNN_NOT_READY, `${have.size} of ${plan.length} similarity blocks received; the trainers are still computing`);
        return merged;
      },
      { queue: 'knn-neighbours' },
    ),
  ];
  if (plan.length === 0) finish();
  return {
    done,
    received: () => have.size,
    total: plan.length,
    stop: () => subs.forEach((s) => s.unsubscribe()),
  };
}

/**
 * The merged neighbour lists of `job`, waiting (polling every `pollMs`) while the collector
 * answers KNN_NOT_READY, up to `waitMs` (default 0: do not wait).
 */
export async function fetchNeighbours(nc: NatsConnection, job: string, o: { waitMs?: number; pollMs?: number; timeoutMs?: number } = {}): Promise<Neighbours> {
  const deadline = Date.now() + (o.waitMs ?? 0);
  for (;;) {
    try {
      const { job: _job, ...n } = neighboursCodec.decode(await requestLarge(nc, knnSubjects.neighbours(job), new Uint8Array(0), { timeoutMs: o.timeoutMs ?? 60_000 }));
      return n;
    } catch (err) {
      if (!(err instanceof RemoteError && err.code === KNN_NOT_READY) || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
    }
  }
}
