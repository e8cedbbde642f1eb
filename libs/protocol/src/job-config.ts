// The job configuration the config owner (the aggregator, or the launcher's) serves on
// <job>.ctl.config and every other actor fetches before it does anything: model, hyper-parameters,
// optimizer, strategy options. It is the one message every actor reads first, so it carries the
// protocol version: an actor of another build refuses the job with a clear error instead of
// misreading the messages that follow.
import { ProtocolError } from './errors.ts';
import { defineJsonKind, type Codec } from './messages.ts';
import type { Check, Obj } from './validate.ts';

/**
 * The wire protocol's version. Raise it when a message kind changes incompatibly (a field renamed,
 * a meaning changed); additions of optional fields do not need it. Every actor checks it at config
 * fetch, and the collectives check it at rendezvous.
 * 2: a sender's rank ends the subjects it sends on (`ps.<k>.push.<r>`, `coll.….up.<r>`, `p2p.<to>.<from>`).
 */
export const PROTOCOL_VERSION = 2;

export type OptimizerName = 'sgd' | 'adagrad' | 'adam' | 'rmsprop';
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['adam', 'adagrad', 'sgd', 'rmsprop'];

export interface JobOptimizer {
  readonly name: OptimizerName;
  readonly lr: number;
  readonly l2?: number;
  readonly momentum?: number;
  readonly dense?: boolean;
}

export interface JobConfig {
  readonly job: string;
  /** The aggregator's default; it serves both strategies (a PS shard and the mirrored snapshot store). */
  readonly strategy: 'ps' | 'mirrored';
  /** Ranks of a mirrored job (trainers may override with --world-size). */
  readonly worldSize: number;
  readonly model: string;
  readonly hyper: Readonly<Record<string, number | string | boolean>>;
  readonly optimizer: JobOptimizer;
  readonly psShards: number;
  readonly staleness: string;
  readonly seed: number;
}

/** A peer speaks another protocol version than this build: run one actorflow version on every actor. */
export class ProtocolVersionError extends ProtocolError {
  constructor(
    readonly where: string,
    readonly theirs: number | undefined,
    readonly ours: number = PROTOCOL_VERSION,
  ) {
    super(
      `${where} speaks actorflow protocol ${theirs === undefined ? '(none: a build older than protocol versions)' : theirs}, this build speaks ${ours}; ` +
        'run the same actorflow version on every actor of the job (git pull / npm ci on each machine)',
    );
    this.name = 'ProtocolVersionError';
  }
}

function finiteNum(c: Check, o: Obj, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) c.fail(`${path}.${key} must be a finite number, got ${String(v)}`);
  return v;
}

function optimizer(c: Check, v: unknown): JobOptimizer {
  const o = c.obj(v, 'optimizer');
  const name = c.str(o, 'name');
  if (!(OPTIMIZER_NAMES as readonly string[]).includes(name)) c.fail(`optimizer.name must be one of ${OPTIMIZER_NAMES.join(', ')}, got '${name}'`);
  const lr = finiteNum(c, o, 'lr', 'optimizer');
  // 0 is allowed: models without an optimizer (kNN) carry a placeholder.
  if (lr < 0) c.fail(`optimizer.lr must be >= 0, got ${lr}`);
  const l2 = o.l2 === undefined || o.l2 === null ? undefined : finiteNum(c, o, 'l2', 'optimizer');
  const momentum = o.momentum === undefined || o.momentum === null ? undefined : finiteNum(c, o, 'momentum', 'optimizer');
  const dense = c.optBool(o, 'dense');
  return { name: name as OptimizerName, lr, ...(l2 !== undefined ? { l2 } : {}), ...(momentum !== undefined ? { momentum } : {}), ...(dense !== undefined ? { dense } : {}) };
}

/**
 * JobConfig as JSON (a person can read it with `monitor --tail`-style tools), with `protocol` added on
 * encode and checked on decode (ProtocolVersionError). Fields this build does not know are kept as
 * they are: a newer config owner may add optional fields without breaking older readers.
 */
const inner = defineJsonKind<JobConfig & { readonly protocol?: number }>('JobConfig', (o, c) => {
  const protocol = o.protocol;
  if (protocol !== PROTOCOL_VERSION) throw new ProtocolVersionError(`the job configuration of '${typeof o.job === 'string' ? o.job : '?'}'`, typeof protocol === 'number' ? protocol : undefined);
  const strategy = c.str(o, 'strategy');
  if (strategy !== 'ps' && strategy !== 'mirrored') return c.fail(`field 'strategy' must be ps or mirrored, got '${strategy}'`);
  const hyper = c.record(o.hyper, 'hyper', (x, p) => {
    if (typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x))) return x;
    return c.fail(`${p} must be a finite number, a string or a boolean`);
  });
  return {
    ...o,
    protocol,
    job: c.str(o, 'job'),
    strategy,
    worldSize: c.int(o, 'worldSize', 1),
    model: c.str(o, 'model'),
    hyper,
    optimizer: optimizer(c, o.optimizer),
    psShards: c.int(o, 'psShards', 1),
    staleness: c.str(o, 'staleness'),
    seed: c.int(o, 'seed', Number.MIN_SAFE_INTEGER),
  };
});

export const jobConfigCodec: Codec<JobConfig> = {
  kind: inner.kind,
  encode: (config) => inner.encode({ ...config, protocol: PROTOCOL_VERSION }),
  decode: (bytes) => {
    const { protocol: _protocol, ...config } = inner.decode(bytes);
    return config;
  },
};
