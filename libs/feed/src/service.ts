// A data shard over NATS. It owns the rows of its partition (row hash mod `of`) and answers:
//   <job>.data.info          (queue group: any shard answers) dataset facts, JSON
//   <job>.data.<shard>.next  the next Arrow batch: shared mode (first come, first served, for the
//                            parameter server) or distributed mode (the request names rank, world
//                            size, epoch and step; stateless, like torch's DistributedSampler)
//   <job>.data.test          (queue group) the test split, Arrow (chunked when large)
import { HandlerError, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { EpochIterator, takeBatch, takeShard, type Ratings } from '@actorflow/data';
import { batchReplyCodec, batchRequestCodec, encodeRatingsBatch, subjects } from '@actorflow/protocol';
import type { JobDataset } from './dataset.ts';

export interface DatasetInfo {
  readonly numUsers: number;
  readonly numItems: number;
  /** Training rows over all shards. */
  readonly trainRows: number;
  readonly testRows: number;
  readonly globalMean: number;
  readonly shards: number;
  readonly batchSize: number;
  readonly epochs: number;
  readonly noiseFloorRmse?: number;
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
}

export interface DataShardService {
  readonly partition: Ratings;
  stats(): { served: number; epoch: number; done: boolean };
  stop(): void;
}

/** Shard k's epoch order is seeded with seed + k: one shard reproduces a single-process run with `seed`. */
export function shardSeed(seed: number, shard: number): number {
  return seed + shard;
}

const enc = new TextEncoder();

export function serveDataShard(nc: NatsConnection, o: DataShardOptions): DataShardService {
  const log = o.log ?? (() => undefined);
  const partition = o.of === 1 ? o.dataset.train : takeShard(o.dataset.train, o.shard, o.of, 'row');
  const shared = new EpochIterator({ rows: partition.length, batchSize: o.batchSize, seed: shardSeed(o.seed, o.shard) });
  let epoch = 0;
  let cursor = shared.batches(0);
  let index = 0;
  let served = 0;
  let done = partition.length === 0 || o.epochs === 0;
  const info: DatasetInfo = {
    numUsers: o.dataset.numUsers,
    numItems: o.dataset.numItems,
    trainRows: o.dataset.train.length,
    testRows: o.dataset.test.length,
    globalMean: o.dataset.globalMean,
    shards: o.of,
    batchSize: o.batchSize,
    epochs: o.epochs,
    ...(o.dataset.noiseFloorRmse !== undefined ? { noiseFloorRmse: o.dataset.noiseFloorRmse } : {}),
  };
  const distributed = new Map<string, EpochIterator>();
  const empty = new Uint8Array(0);
  const subs: Subscription[] = [
    serveLarge(nc, subjects.dataInfo(o.job), () => enc.encode(JSON.stringify(info)), { queue: 'data-info' }),
    serveLarge(nc, subjects.dataTest(o.job), () => encodeRatingsBatch(o.dataset.test), { queue: 'data-test' }),
    serveLarge(nc, subjects.dataNext(o.job, o.shard), (payload) => {
      const req = batchRequestCodec.decode(payload);
      if (req.job !== o.job) throw new HandlerError('WRONG_JOB', `this shard serves job ${o.job}, not ${req.job}`);
      if (req.step !== undefined) {
        // Distributed mode: rank r's step-th batch of the epoch, computed, not remembered.
        if (req.epoch >= o.epochs) return batchReplyCodec.encode({ epoch: req.epoch, index: req.step, endOfEpoch: true, endOfData: true, arrow: empty });
        const key = `${req.rank}/${req.worldSize}`;
        let it = distributed.get(key);
        if (it === undefined) {
          it = new EpochIterator({ rows: partition.length, batchSize: o.batchSize, seed: shardSeed(o.seed, o.shard), rank: req.rank, worldSize: req.worldSize });
          distributed.set(key, it);
        }
        // Past the epoch's global batches: end of epoch for every rank alike. Within them, a rank
        // whose slice of a short last batch is empty gets an empty batch (it contributes nothing
        // that step) — so all ranks stay on the same global step.
        if (req.step >= it.globalBatchCount()) return batchReplyCodec.encode({ epoch: req.epoch, index: req.step, endOfEpoch: true, endOfData: req.epoch + 1 >= o.epochs, arrow: empty });
        const idx = [...it.batches(req.epoch)][req.step] ?? new Int32Array(0);
        served++;
        return batchReplyCodec.encode({ epoch: req.epoch, index: req.step, endOfEpoch: false, endOfData: false, arrow: encodeRatingsBatch(takeBatch(partition, idx)) });
      }
      // Shared mode: the next batch of the current epoch, whoever asks.
      for (;;) {
        if (done) return batchReplyCodec.encode({ epoch, index, endOfEpoch: true, endOfData: true, arrow: empty });
        const next = cursor.next();
        if (!next.done) {
          served++;
          return batchReplyCodec.encode({ epoch, index: index++, endOfEpoch: false, endOfData: false, arrow: encodeRatingsBatch(takeBatch(partition, next.value)) });
        }
        epoch++;
        index = 0;
        if (epoch >= o.epochs) {
          done = true;
          log(`shard ${o.shard}: all ${o.epochs} epoch(s) served (${served} batches)`);
        } else {
          log(`shard ${o.shard}: epoch ${epoch + 1}/${o.epochs}`);
          cursor = shared.batches(epoch);
        }
      }
    }),
  ];
  return {
    partition,
    stats: () => ({ served, epoch, done }),
    stop: () => {
      for (const s of subs) s.unsubscribe();
    },
  };
}
