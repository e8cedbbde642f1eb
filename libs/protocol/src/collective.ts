// The process group's messages (libs/collectives): `up` (a rank to the root, rank 0), `down` (the
// root to everyone, or to one rank), `p2p` (ring neighbours), the rendezvous store's requests and
// replies, and the mirrored strategy's gradient payload. Every group message names its sender (rank),
// the job, the group's world size and generation, so a receiver can check that it comes from a
// member of this very incarnation of the group and ignore (and count) anything else; the codecs
// check internal consistency (ranks below the world size, integer sequence numbers, parts as bytes).
import { defineMsgpackKind, type Codec } from './messages.ts';
import type { Check, Obj } from './validate.ts';

interface GroupStamp {
  /** The job the sender belongs to. */
  readonly job: string;
  readonly worldSize: number;
  /** The group's generation (absent: a group started without one). */
  readonly generation?: number;
}

/** A rank contributing to collective `seq` (≥ 1), or asking about a contribution the root already confirmed (`ask`: the root answers with the outcome, or the progress). */
export type CollectiveUp =
  | (GroupStamp & {
      readonly kind: 'data';
      readonly rank: number;
      readonly seq: number;
      /** Every collective of this rank up to and including `ack` has finished (the root may forget their outcomes). */
      readonly ack: number;
      readonly data: Uint8Array;
    })
  | (GroupStamp & { readonly kind: 'ask'; readonly rank: number; readonly seq: number; readonly ack: number });

/** From the root (`from`, rank 0 of the star). */
export type CollectiveDown =
  /** Every rank's contribution, in rank order (all-gather). */
  | (GroupStamp & { readonly kind: 'result'; readonly from: number; readonly seq: number; readonly parts: Uint8Array[] })
  /** The one value the root reduced the contributions to (all-reduce, broadcast, barrier). */
  | (GroupStamp & { readonly kind: 'reduced'; readonly from: number; readonly seq: number; readonly data: Uint8Array })
  /**
   * The root has these ranks' contributions to `seq` (it is alive, and these are the ones it waits
   * for); with `resend`, the others should send theirs again now (the root just reconnected).
   */
  | (GroupStamp & { readonly kind: 'progress'; readonly from: number; readonly seq: number; readonly have: number[]; readonly resend?: boolean })
  | (GroupStamp & { readonly kind: 'error'; readonly from: number; readonly seq: number; readonly error: string; readonly op?: string; readonly missing?: number[] });

export type RingPhase = 'rs' | 'ag';

/** A ring all-reduce chunk from rank `from` to its next neighbour, or its acknowledgement back. */
export type CollectiveP2p =
  | (GroupStamp & { readonly kind: 'chunk'; readonly from: number; readonly seq: number; readonly phase: RingPhase; readonly step: number; readonly data: Float32Array })
  | (GroupStamp & { readonly kind: 'ack'; readonly from: number; readonly seq: number; readonly phase: RingPhase; readonly step: number });

function stamp(o: Obj, c: Check): GroupStamp {
  const job = c.str(o, 'job');
  const worldSize = c.int(o, 'worldSize', 1);
  if (o.generation === undefined || o.generation === null) return { job, worldSize };
  return { job, worldSize, generation: c.int(o, 'generation') };
}

function rankField(o: Obj, c: Check, key: string, worldSize: number): number {
  const r = c.int(o, key);
  if (r >= worldSize) c.fail(`field '${key}' is ${r}, not below the world size ${worldSize}`);
  return r;
}

function rankList(o: Obj, c: Check, key: string, worldSize: number): number[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > worldSize || v.some((r) => typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= worldSize)) {
    c.fail(`field '${key}' must be a list of at most ${worldSize} ranks below ${worldSize}`);
  }
  return v as number[];
}

export const collectiveUpCodec: Codec<CollectiveUp> = defineMsgpackKind<CollectiveUp>('CollectiveUp', (o, c) => {
  const s = stamp(o, c);
  const rank = rankField(o, c, 'rank', s.worldSize);
  if (o.kind !== 'data' && o.kind !== 'ask') c.fail(`field 'kind' must be 'data' or 'ask', got ${String(o.kind)}`);
  const seq = c.int(o, 'seq', 1);
  const ack = c.int(o, 'ack');
  if (ack >= seq) c.fail(`field 'ack' (${ack}) must be below seq (${seq})`);
  if (o.kind === 'ask') return { kind: 'ask', rank, seq, ack, ...s };
  return { kind: 'data', rank, seq, ack, data: c.u8(o.data, 'data'), ...s };
});

export const collectiveDownCodec: Codec<CollectiveDown> = defineMsgpackKind<CollectiveDown>('CollectiveDown', (o, c) => {
  const s = stamp(o, c);
  const from = rankField(o, c, 'from', s.worldSize);
  switch (o.kind) {
    case 'result': {
      const seq = c.int(o, 'seq', 1);
      if (!Array.isArray(o.parts) || o.parts.length !== s.worldSize) c.fail(`field 'parts' must be an array of ${s.worldSize} byte strings`);
      const parts = (o.parts as unknown[]).map((p, i) => c.u8(p, `parts[${i}]`));
      return { kind: 'result', from, seq, parts, ...s };
    }
    case 'reduced':
      return { kind: 'reduced', from, seq: c.int(o, 'seq', 1), data: c.u8(o.data, 'data'), ...s };
    case 'progress': {
      const resend = c.optBool(o, 'resend');
      return { kind: 'progress', from, seq: c.int(o, 'seq', 1), have: rankList(o, c, 'have', s.worldSize), ...(resend !== undefined ? { resend } : {}), ...s };
    }
    case 'error': {
      const op = c.optStr(o, 'op');
      const missing = o.missing === undefined || o.missing === null ? undefined : rankList(o, c, 'missing', s.worldSize);
      return { kind: 'error', from, seq: c.int(o, 'seq'), error: c.str(o, 'error'), ...(op !== undefined ? { op } : {}), ...(missing !== undefined ? { missing } : {}), ...s };
    }
    default:
      return c.fail(`field 'kind' must be result, reduced, progress or error, got ${String(o.kind)}`);
  }
});

export const collectiveP2pCodec: Codec<CollectiveP2p> = defineMsgpackKind<CollectiveP2p>('CollectiveP2p', (o, c) => {
  const s = stamp(o, c);
  const from = rankField(o, c, 'from', s.worldSize);
  const seq = c.int(o, 'seq', 1);
  const phase = o.phase === 'rs' || o.phase === 'ag' ? o.phase : c.fail(`field 'phase' must be 'rs' or 'ag', got ${String(o.phase)}`);
  const step = c.int(o, 'step');
  if (step >= Math.max(1, s.worldSize - 1)) c.fail(`field 'step' is ${step}, a ring of ${s.worldSize} has steps 0…${s.worldSize - 2}`);
  if (o.kind === 'ack') return { kind: 'ack', from, seq, phase, step, ...s };
  if (o.kind !== 'chunk') c.fail(`field 'kind' must be 'chunk' or 'ack', got ${String(o.kind)}`);
  return { kind: 'chunk', from, seq, phase, step, data: c.f32(o.data, 'data'), ...s };
});

// --- the rendezvous store (c10d's Store over NATS request/reply) ------------------------------

const KEY_MAX = 512;

/**
 * A request to a group's store. `set` and `delete` are idempotent; `add` carries an id the store
 * remembers, so a retried add counts once. `check` asks whether every key is present.
 */
export type StoreRequest =
  | { readonly op: 'set'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'add'; readonly key: string; readonly amount: number; readonly id: string }
  | { readonly op: 'check'; readonly keys: string[] }
  | { readonly op: 'delete'; readonly key: string };

/** The store's answer: `value` for get (absent: no such key), `count` for add, `missing` (the keys not set) for check, `present` for delete. */
export interface StoreReply {
  readonly value?: Uint8Array;
  readonly count?: number;
  readonly missing?: string[];
  readonly present?: boolean;
}

function storeKey(c: Check, v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > KEY_MAX) c.fail(`${path} must be a non-empty string of at most ${KEY_MAX} characters`);
  return v;
}

export const storeRequestCodec: Codec<StoreRequest> = defineMsgpackKind<StoreRequest>('StoreRequest', (o, c) => {
  switch (o.op) {
    case 'set':
      return { op: 'set', key: storeKey(c, o.key, 'key'), value: c.u8(o.value, 'value') };
    case 'get':
      return { op: 'get', key: storeKey(c, o.key, 'key') };
    case 'delete':
      return { op: 'delete', key: storeKey(c, o.key, 'key') };
    case 'add': {
      const amount = c.num(o, 'amount');
      if (!Number.isSafeInteger(amount)) c.fail(`field 'amount' must be a safe integer, got ${amount}`);
      return { op: 'add', key: storeKey(c, o.key, 'key'), amount, id: storeKey(c, o.id, 'id') };
    }
    case 'check': {
      if (!Array.isArray(o.keys) || o.keys.length > 4096) c.fail(`field 'keys' must be a list of at most 4096 keys`);
      return { op: 'check', keys: (o.keys as unknown[]).map((k, i) => storeKey(c, k, `keys[${i}]`)) };
    }
    default:
      return c.fail(`field 'op' must be set, get, add, check or delete, got ${String(o.op)}`);
  }
});

export const storeReplyCodec: Codec<StoreReply> = defineMsgpackKind<StoreReply>('StoreReply', (o, c) => {
  const value = o.value === undefined || o.value === null ? undefined : c.u8(o.value, 'value');
  const count = o.count === undefined || o.count === null ? undefined : c.num(o, 'count');
  const missing = o.missing === undefined || o.missing === null ? undefined : (o.missing as unknown[]);
  if (missing !== undefined && (!Array.isArray(missing) || missing.length > 4096)) c.fail(`field 'missing' must be a list of at most 4096 keys`);
  const present = c.optBool(o, 'present');
  return {
    ...(value !== undefined ? { value } : {}),
    ...(count !== undefined ? { count } : {}),
    ...(missing !== undefined ? { missing: missing.map((k, i) => storeKey(c, k, `missing[${i}]`)) } : {}),
    ...(present !== undefined ? { present } : {}),
  };
});

// --- the mirrored strategy's gradients ---------------------------------------------------------

/**
 * One rank's count-weighted gradients of a mirrored step (what it contributes), or the root's
 * reduction of every rank's (what it sends back: gradients already divided by the total count,
 * `count` the total, `loss` the mean loss).
 */
export interface MirroredGradient {
  readonly count: number;
  readonly loss: number;
  readonly dense: Record<string, Float32Array>;
  readonly sparse: Record<string, { readonly rows: Int32Array; readonly values: Float32Array }>;
}

export const mirroredGradientCodec: Codec<MirroredGradient> = defineMsgpackKind<MirroredGradient>('MirroredGradient', (o, c) => ({
  count: c.int(o, 'count'),
  loss: c.num(o, 'loss'),
  dense: c.record(o.dense, 'dense', (x, p) => c.f32(x, p)),
  sparse: c.record(o.sparse, 'sparse', (x, p) => {
    const s = c.obj(x, p);
    const rows = c.i32(s.rows, `${p}.rows`);
    const values = c.f32(s.values, `${p}.values`);
    if (rows.length === 0 ? values.length !== 0 : values.length % rows.length !== 0) c.fail(`${p}: ${values.length} values do not divide into ${rows.length} rows`);
    return { rows, values };
  }),
}));

/** Rank 0's parameters, broadcast once at the start so every rank begins from the same replica. */
export interface MirroredParams {
  readonly tables: Record<string, Float32Array>;
  readonly dense: Record<string, Float32Array>;
}

export const mirroredParamsCodec: Codec<MirroredParams> = defineMsgpackKind<MirroredParams>('MirroredParams', (o, c) => ({
  tables: c.record(o.tables, 'tables', (x, p) => c.f32(x, p)),
  dense: c.record(o.dense, 'dense', (x, p) => c.f32(x, p)),
}));
