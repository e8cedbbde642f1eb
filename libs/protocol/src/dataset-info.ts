// What a data shard says about the job's dataset on <job>.data.info (any shard answers), and the
// <job>.data.test request for a held-out set. JSON, like the config: a person can read them.
import { defineJsonKind, type Codec } from './messages.ts';
import type { Check, Obj } from './validate.ts';

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
  /** --validation: the ratings carved from training (never served as training batches). */
  readonly validationRows?: number;
}

function finite(c: Check, o: Obj, key: string): number {
  const v = c.num(o, key);
  if (!Number.isFinite(v)) c.fail(`field '${key}' must be finite, got ${v}`);
  return v;
}

function optional<T>(o: Obj, key: string, read: () => T): Record<string, T> {
  return o[key] === undefined || o[key] === null ? {} : { [key]: read() };
}

/** Fields a newer shard adds are kept (optional additions need no protocol version). */
export const datasetInfoCodec: Codec<DatasetInfo> = defineJsonKind<DatasetInfo>('DatasetInfo', (o, c) => {
  const kind = c.str(o, 'kind');
  if (kind !== 'ratings' && kind !== 'images') return c.fail(`field 'kind' must be ratings or images, got '${kind}'`);
  const range = o.ratingRange;
  if (range !== undefined && range !== null) {
    if (!Array.isArray(range) || range.length !== 2 || range.some((x) => typeof x !== 'number' || !Number.isFinite(x)) || (range[0] as number) > (range[1] as number))
      c.fail(`field 'ratingRange' must be [low, high] with low <= high, got ${JSON.stringify(range)}`);
  }
  return {
    ...o,
    kind,
    numUsers: c.int(o, 'numUsers'),
    numItems: c.int(o, 'numItems'),
    trainRows: c.int(o, 'trainRows'),
    testRows: c.int(o, 'testRows'),
    globalMean: finite(c, o, 'globalMean'),
    shards: c.int(o, 'shards', 1),
    batchSize: c.int(o, 'batchSize', 1),
    epochs: c.int(o, 'epochs'),
    ...optional(o, 'noiseFloorRmse', () => finite(c, o, 'noiseFloorRmse')),
    ...optional(o, 'numClasses', () => c.int(o, 'numClasses', 1)),
    ...optional(o, 'trainUsers', () => c.int(o, 'trainUsers')),
    ...optional(o, 'trainItems', () => c.int(o, 'trainItems')),
    ...optional(o, 'validationRows', () => c.int(o, 'validationRows')),
  } as DatasetInfo;
});

/** <job>.data.test: which held-out set (default ratings); the shard names the kinds it has when unknown. */
export interface TestSetRequest {
  readonly kind?: string;
}

const testSet = defineJsonKind<TestSetRequest>('TestSetRequest', (o, c) => {
  const kind = c.optStr(o, 'kind');
  return kind !== undefined ? { kind } : {};
});

/** An empty payload asks for the default (ratings). */
export const testSetRequestCodec: Codec<TestSetRequest> = {
  kind: testSet.kind,
  encode: (m) => testSet.encode(m),
  decode: (b) => (b.length === 0 ? {} : testSet.decode(b)),
};
