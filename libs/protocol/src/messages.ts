// Every message kind of the system: a type, a validating codec, and (in the tests) a round trip.
// Machine-to-machine kinds are msgpack; the two monitoring kinds (train.loss, train.eval) are JSON
// so that `nats sub train.loss` is readable by a person.
import { DecodeError } from './errors.ts';
import { decodeMsg, encodeMsg } from './msgpack.ts';
import { Check, type Obj } from './validate.ts';

export interface Codec<T> {
  readonly kind: string;
  encode(msg: T): Uint8Array;
  /** Validates the shape; throws DecodeError (never returns a half-checked object). */
  decode(bytes: Uint8Array): T;
}

/** Declares a msgpack message kind once: its name and its validator. */
export function defineMsgpackKind<T>(kind: string, validate: (o: Obj, c: Check) => T): Codec<T> {
  const check = new Check(kind);
  return {
    kind,
    encode: (msg: T) => encodeMsg(msg),
    decode: (bytes: Uint8Array) => validate(check.obj(decodeMsg(bytes, kind)), check),
  };
}

/** Declares a JSON message kind (UTF-8). */
export function defineJsonKind<T>(kind: string, validate: (o: Obj, c: Check) => T): Codec<T> {
  const check = new Check(kind);
  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8', { fatal: true });
  return {
    kind,
    encode: (msg: T) => enc.encode(JSON.stringify(msg)),
    decode: (bytes: Uint8Array) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(dec.decode(bytes));
      } catch (err) {
        throw new DecodeError(kind, `not UTF-8 JSON (${(err as Error).message})`, { cause: err });
      }
      return validate(check.obj(parsed), check);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Sparse rows: the unit of embedding traffic.

/** Rows of one embedding table: `values` holds rows.length × dim floats, row-major. */
export interface SparseRows {
  readonly rows: Int32Array;
  readonly values: Float32Array;
}

function sparseRows(c: Check, v: unknown, path: string): SparseRows {
  const o = c.obj(v, path);
  const rows = c.i32(o.rows, `${path}.rows`);
  const values = c.f32(o.values, `${path}.values`);
  if (rows.length === 0 ? values.length !== 0 : values.length % rows.length !== 0) {
    c.fail(`${path}: ${values.length} values do not divide into ${rows.length} rows`);
  }
  return { rows, values };
}

function denseMap(c: Check, v: unknown, path: string): Record<string, Float32Array> {
  return c.record(v, path, (x, p) => c.f32(x, p));
}

// ---------------------------------------------------------------------------------------------
// Monitoring (JSON).

export interface LossReport {
  readonly job: string;
  readonly rank: number;
  readonly step: number;
  readonly epoch: number;
  readonly loss: number;
  readonly examples: number;
  readonly examplesPerSec: number;
  readonly strategy: string;
  readonly backend: string;
  readonly ts: number;
  /** Set on the last report of a rank. */
  readonly done?: boolean;
  /** Optional per-step timing split, milliseconds. */
  readonly timing?: { readonly computeMs: number; readonly serdeMs: number; readonly waitMs: number };
}

export const lossReportCodec = defineJsonKind<LossReport>('LossReport', (o, c) => {
  const r: LossReport = {
    job: c.str(o, 'job'),
    rank: c.int(o, 'rank'),
    step: c.int(o, 'step'),
    epoch: c.int(o, 'epoch'),
    loss: o.loss === null ? Number.NaN : c.num(o, 'loss'), // JSON has no NaN: a diverged loss arrives as null
    examples: c.int(o, 'examples'),
    examplesPerSec: c.num(o, 'examplesPerSec'),
    strategy: c.str(o, 'strategy'),
    backend: c.str(o, 'backend'),
    ts: c.num(o, 'ts'),
  };
  const done = c.optBool(o, 'done');
  let timing: LossReport['timing'];
  if (o.timing !== undefined) {
    const t = c.obj(o.timing, 'timing');
    timing = { computeMs: c.num(t, 'computeMs'), serdeMs: c.num(t, 'serdeMs'), waitMs: c.num(t, 'waitMs') };
  }
  return { ...r, ...(done !== undefined ? { done } : {}), ...(timing !== undefined ? { timing } : {}) };
});

export interface EvalReport {
  readonly job: string;
  readonly step: number;
  readonly metrics: Readonly<Record<string, number>>;
  readonly ts: number;
  readonly final?: boolean;
}

export const evalReportCodec = defineJsonKind<EvalReport>('EvalReport', (o, c) => {
  const metrics = c.record(o.metrics, 'metrics', (x, p) => {
    if (typeof x !== 'number' && x !== null) c.fail(`${p} must be a number`);
    return x === null ? Number.NaN : (x as number);
  });
  const final = c.optBool(o, 'final');
  return { job: c.str(o, 'job'), step: c.int(o, 'step'), metrics, ts: c.num(o, 'ts'), ...(final !== undefined ? { final } : {}) };
});

/** NATS headers for a monitoring message: readable content type and the job id, so one subscription can filter jobs. */
export function monitoringHeaders(job: string): Record<string, string> {
  return { 'Content-Type': 'application/json', 'Job-Id': job };
}

// ---------------------------------------------------------------------------------------------
// Gradients and the parameter server.

export interface GradientMessage {
  readonly job: string;
  readonly rank: number;
  readonly step: number;
  /** Parameter version the gradient was computed from (for staleness). */
  readonly paramVersion: number;
  /** Examples behind the gradient; gradients are of the mean loss, reducers weight by count. */
  readonly count: number;
  readonly loss: number;
  readonly dense: Readonly<Record<string, Float32Array>>;
  /** Per table, deduplicated rows and their gradient rows. */
  readonly sparse: Readonly<Record<string, SparseRows>>;
  /**
   * Idempotency key (e.g. `<rank>:<incarnation>:<seq>`): a shard that already applied a push with
   * this id answers a retry with the same reply and applies nothing, so a push retried after a lost
   * reply (broker restart, timeout) is applied at most once.
   */
  readonly pushId?: string;
}

export const gradientCodec = defineMsgpackKind<GradientMessage>('GradientMessage', (o, c) => ({
  job: c.str(o, 'job'),
  rank: c.int(o, 'rank'),
  step: c.int(o, 'step'),
  paramVersion: c.int(o, 'paramVersion'),
  count: c.int(o, 'count'),
  loss: c.num(o, 'loss'),
  dense: denseMap(c, o.dense, 'dense'),
  sparse: c.record(o.sparse, 'sparse', (x, p) => sparseRows(c, x, p)),
  ...optionalId(c, o, 'pushId'),
}));

/** An optional idempotency key: a non-empty string of at most 128 characters. */
function optionalId(c: Check, o: Obj, key: 'pushId' | 'requestId'): { pushId?: string } | { requestId?: string } {
  const id = c.optStr(o, key);
  if (id === undefined) return {};
  if (id.length === 0 || id.length > 128) c.fail(`${key} must be 1…128 characters, got ${id.length}`);
  return { [key]: id };
}

export interface PullRequest {
  readonly job: string;
  readonly rank: number;
  readonly tables: Readonly<Record<string, Int32Array>>;
  readonly dense: readonly string[];
}

export const pullRequestCodec = defineMsgpackKind<PullRequest>('PullRequest', (o, c) => ({
  job: c.str(o, 'job'),
  rank: c.int(o, 'rank'),
  tables: c.record(o.tables, 'tables', (x, p) => c.i32(x, p)),
  dense: c.strArray(o.dense, 'dense'),
}));

export interface PulledTable extends SparseRows {
  readonly dim: number;
}

export interface PullReply {
  readonly version: number;
  readonly tables: Readonly<Record<string, PulledTable>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}

function pulledTable(c: Check, v: unknown, path: string): PulledTable {
  const o = c.obj(v, path);
  const { rows, values } = sparseRows(c, o, path);
  const dim = c.int(o, 'dim', 1);
  if (values.length !== rows.length * dim) c.fail(`${path}: ${values.length} values != ${rows.length} rows × dim ${dim}`);
  return { rows, values, dim };
}

export const pullReplyCodec = defineMsgpackKind<PullReply>('PullReply', (o, c) => ({
  version: c.int(o, 'version'),
  tables: c.record(o.tables, 'tables', (x, p) => pulledTable(c, x, p)),
  dense: denseMap(c, o.dense, 'dense'),
}));

export interface PushReply {
  readonly version: number;
  readonly staleness: number;
  readonly accepted: boolean;
  readonly reason?: string;
}

export const pushReplyCodec = defineMsgpackKind<PushReply>('PushReply', (o, c) => {
  const reason = c.optStr(o, 'reason');
  return {
    version: c.int(o, 'version'),
    staleness: c.int(o, 'staleness'),
    accepted: c.bool(o, 'accepted'),
    ...(reason !== undefined ? { reason } : {}),
  };
});

// ---------------------------------------------------------------------------------------------
// Data shards.

export interface BatchRequest {
  readonly job: string;
  readonly rank: number;
  readonly worldSize: number;
  readonly epoch: number;
  /** Distributed (mirrored) mode: the global step whose slice this rank wants; absent in shared mode. */
  readonly step?: number;
  /** What the examples are (the model's input): ratings (default), user-rows, item-rows or images. */
  readonly kind?: BatchKind;
  /** Ratings batches: also send the training histories of the batch's users (SVD++, NeuMF). */
  readonly history?: boolean;
  /**
   * Shared mode: idempotency key (e.g. `<client>:<seq>`). A shard answers a retried request with
   * the batch it handed out for this id the first time, so a reply lost in a broker outage costs
   * no batch and a retry takes none twice.
   */
  readonly requestId?: string;
}

export type BatchKind = 'ratings' | 'user-rows' | 'item-rows' | 'images';
const BATCH_KINDS: readonly BatchKind[] = ['ratings', 'user-rows', 'item-rows', 'images'];

export const batchRequestCodec = defineMsgpackKind<BatchRequest>('BatchRequest', (o, c) => {
  const r = { job: c.str(o, 'job'), rank: c.int(o, 'rank'), worldSize: c.int(o, 'worldSize', 1), epoch: c.int(o, 'epoch') };
  if (r.rank >= r.worldSize) c.fail(`rank ${r.rank} is not below worldSize ${r.worldSize}`);
  const kind = c.optStr(o, 'kind');
  if (kind !== undefined && !BATCH_KINDS.includes(kind as BatchKind)) c.fail(`kind must be one of ${BATCH_KINDS.join(', ')}, got '${kind}'`);
  const history = c.optBool(o, 'history');
  return {
    ...r,
    ...(o.step === undefined || o.step === null ? {} : { step: c.int(o, 'step') }),
    ...(kind !== undefined ? { kind: kind as BatchKind } : {}),
    ...(history !== undefined ? { history } : {}),
    ...optionalId(c, o, 'requestId'),
  };
});

export interface BatchReply {
  readonly epoch: number;
  /** Index of this batch within the epoch. */
  readonly index: number;
  readonly endOfEpoch: boolean;
  readonly endOfData: boolean;
  /** Arrow IPC stream (see arrow.ts); empty when the reply only signals an end. */
  readonly arrow: Uint8Array;
  /** When asked: the batch's users' training histories, an Arrow interactions batch. */
  readonly history?: Uint8Array;
}

export const batchReplyCodec = defineMsgpackKind<BatchReply>('BatchReply', (o, c) => ({
  epoch: c.int(o, 'epoch'),
  index: c.int(o, 'index'),
  endOfEpoch: c.bool(o, 'endOfEpoch'),
  endOfData: c.bool(o, 'endOfData'),
  arrow: c.u8(o.arrow, 'arrow'),
  ...(o.history === undefined || o.history === null ? {} : { history: c.u8(o.history, 'history') }),
}));

// ---------------------------------------------------------------------------------------------
// Control. (Errors of a request travel in the reply's headers: see libs/bus serveLarge.)

export interface Heartbeat {
  readonly job: string;
  readonly role: string;
  readonly rank?: number;
  readonly ts: number;
  /** The actor's name in its job (e.g. `trainer-0`): who the launcher declares dead when it goes silent. */
  readonly actor?: string;
  readonly pid?: number;
}

export const heartbeatCodec = defineMsgpackKind<Heartbeat>('Heartbeat', (o, c) => {
  const actor = c.optStr(o, 'actor');
  return {
    job: c.str(o, 'job'),
    role: c.str(o, 'role'),
    ts: c.num(o, 'ts'),
    ...(o.rank === undefined || o.rank === null ? {} : { rank: c.int(o, 'rank') }),
    ...(actor !== undefined ? { actor } : {}),
    ...(o.pid === undefined || o.pid === null ? {} : { pid: c.int(o, 'pid') }),
  };
});

export interface StopMessage {
  readonly job: string;
  readonly reason: string;
}

export const stopCodec = defineMsgpackKind<StopMessage>('StopMessage', (o, c) => ({ job: c.str(o, 'job'), reason: c.str(o, 'reason') }));

/** Parameters at one point of training: whole tables (or the rows a shard owns) and dense tensors. */
export interface Snapshot {
  readonly job: string;
  readonly step: number;
  readonly version: number;
  readonly tables: Readonly<Record<string, PulledTable>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}

export const snapshotCodec = defineMsgpackKind<Snapshot>('Snapshot', (o, c) => ({
  job: c.str(o, 'job'),
  step: c.int(o, 'step'),
  version: c.int(o, 'version'),
  tables: c.record(o.tables, 'tables', (x, p) => pulledTable(c, x, p)),
  dense: denseMap(c, o.dense, 'dense'),
}));
