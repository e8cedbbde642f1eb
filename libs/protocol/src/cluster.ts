// Subjects and message kinds of the node agents (`cluster.node.<name>.*`, issue 16, docs/CLUSTER.md):
// info, start, stop, list (status), lease, and the streams the agent publishes — every output line
// of an actor (`log.<actor>`) and its end (`exit.<actor>`). JSON, so `nats req cluster.node.n1.info ''`
// is readable by a person. Every codec validates the whole message (tokens, types, ranges).
import { defineJsonKind, type Codec } from './messages.ts';
import { validateToken } from './subjects.ts';
import type { Check, Obj } from './validate.ts';

export const clusterSubjects = {
  info: (node: string): string => `cluster.node.${validateToken(node, 'node name')}.info`,
  start: (node: string): string => `cluster.node.${validateToken(node, 'node name')}.start`,
  stop: (node: string): string => `cluster.node.${validateToken(node, 'node name')}.stop`,
  list: (node: string): string => `cluster.node.${validateToken(node, 'node name')}.list`,
  lease: (node: string): string => `cluster.node.${validateToken(node, 'node name')}.lease`,
  log: (node: string, actor: string): string => `cluster.node.${validateToken(node, 'node name')}.log.${validateToken(actor, 'actor name')}`,
  /** Published by the agent when an actor it started ends (an `ActorExit`). */
  exit: (node: string, actor: string): string => `cluster.node.${validateToken(node, 'node name')}.exit.${validateToken(actor, 'actor name')}`,
  /** Every node's log lines / exits (wildcards, for a launcher following its actors). */
  allLogs: 'cluster.node.*.log.*',
  allExits: 'cluster.node.*.exit.*',
  /** Every node's info subject (a wildcard, for subscriptions and monitoring). */
  allInfo: 'cluster.node.*.info',
} as const;

/** The job the agents register under in $SRV (their heartbeats go to `cluster.hb.node-<name>`). */
export const CLUSTER_JOB = 'cluster';
/** A started job's actors are stopped when its lease is not renewed for this long (default). */
export const DEFAULT_LEASE_MS = 15_000;

export interface GpuInfo {
  readonly name: string;
  readonly memoryMiB: number;
}

export interface NodeCalibration {
  readonly sparseExamplesPerSec: number;
  readonly matmulGflops: number;
  /** Through the broker and back, MB/s (absent when it could not be measured). */
  readonly linkMBps?: number;
  /** One small request's round trip through the broker with its msgpack codec, ms (absent: not measured). */
  readonly requestMs?: number;
  /** How long the whole calibration took, ms. */
  readonly ms: number;
}

export interface NodeInfo {
  readonly name: string;
  readonly address: string;
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly freeMemoryBytes: number;
  readonly gpus: readonly GpuInfo[];
  /** TF.js backends that load on this machine, fastest first. */
  readonly backends: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly energyEfficient: boolean;
  readonly calibration: NodeCalibration;
  readonly platform: string;
  readonly pid: number;
  /** Actors running now. */
  readonly running: number;
  readonly ts: number;
}

export interface StartActorRequest {
  readonly job: string;
  /** Unique on the node while it runs; its log subject token. */
  readonly actor: string;
  /** Entry file relative to the agent's root (run with tsx), e.g. `apps/trainer/main.ts`. */
  readonly entry: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Stop the job's actors when no lease renewal (or `<job>.hb.launcher`) arrives for this long. */
  readonly leaseMs?: number;
}

export interface ActorStatus {
  readonly job: string;
  readonly actor: string;
  readonly entry: string;
  readonly pid?: number;
  readonly running: boolean;
  /** Exit code (null while running or when killed by a signal). */
  readonly code: number | null;
  readonly signal: string | null;
  readonly startedAt: number;
  readonly endedAt?: number;
  /** Why the agent stopped it, when it did (a stop request, an expired lease). */
  readonly stoppedBy?: string;
}

export interface StopActorsRequest {
  readonly job: string;
  /** One actor; absent: every actor of the job. */
  readonly actor?: string;
}

export interface ActorList {
  readonly node: string;
  readonly actors: readonly ActorStatus[];
}

export interface LeaseRenewal {
  readonly job: string;
  readonly holder?: string;
}

export interface LogLine {
  readonly job: string;
  readonly actor: string;
  readonly line: string;
  readonly ts: number;
}

function optNum(c: Check, o: Obj, key: string): number | undefined {
  return o[key] === undefined || o[key] === null ? undefined : c.num(o, key);
}

function strMap(c: Check, v: unknown, path: string): Record<string, string> {
  return c.record(v, path, (x, p) => {
    if (typeof x !== 'string') c.fail(`${p} must be a string`);
    return x;
  });
}

function positive(c: Check, o: Obj, key: string): number {
  const v = c.num(o, key);
  if (!(v > 0) || !Number.isFinite(v)) c.fail(`field '${key}' must be a positive number, got ${v}`);
  return v;
}

export const nodeInfoCodec: Codec<NodeInfo> = defineJsonKind<NodeInfo>('NodeInfo', (o, c) => {
  if (!Array.isArray(o.gpus)) c.fail("field 'gpus' must be an array");
  const cal = c.obj(o.calibration, 'calibration');
  const link = optNum(c, cal, 'linkMBps');
  const requestMs = optNum(c, cal, 'requestMs');
  if (requestMs !== undefined && !(requestMs >= 0)) c.fail(`field 'calibration.requestMs' must be >= 0, got ${requestMs}`);
  return {
    name: validateToken(c.str(o, 'name'), 'node name'),
    address: c.str(o, 'address'),
    cores: c.int(o, 'cores', 1),
    cpuModel: c.str(o, 'cpuModel'),
    memoryBytes: c.int(o, 'memoryBytes', 1),
    freeMemoryBytes: c.int(o, 'freeMemoryBytes'),
    gpus: (o.gpus as unknown[]).map((g, i) => {
      const x = c.obj(g, `gpus[${i}]`);
      return { name: c.str(x, 'name'), memoryMiB: c.num(x, 'memoryMiB') };
    }),
    backends: c.strArray(o.backends, 'backends'),
    labels: strMap(c, o.labels, 'labels'),
    energyEfficient: c.bool(o, 'energyEfficient'),
    calibration: {
      sparseExamplesPerSec: positive(c, cal, 'sparseExamplesPerSec'),
      matmulGflops: positive(c, cal, 'matmulGflops'),
      ...(link !== undefined ? { linkMBps: link } : {}),
      ...(requestMs !== undefined ? { requestMs } : {}),
      ms: c.num(cal, 'ms'),
    },
    platform: c.str(o, 'platform'),
    pid: c.int(o, 'pid'),
    running: c.int(o, 'running'),
    ts: c.num(o, 'ts'),
  };
});

export const startActorRequestCodec: Codec<StartActorRequest> = defineJsonKind<StartActorRequest>('StartActorRequest', (o, c) => {
  const leaseMs = optNum(c, o, 'leaseMs');
  if (leaseMs !== undefined && !(leaseMs > 0)) c.fail(`field 'leaseMs' must be positive, got ${leaseMs}`);
  const entry = c.str(o, 'entry');
  if (entry === '') c.fail("field 'entry' must not be empty");
  return {
    job: validateToken(c.str(o, 'job'), 'job id'),
    actor: validateToken(c.str(o, 'actor'), 'actor name'),
    entry,
    args: c.strArray(o.args, 'args'),
    ...(o.env !== undefined && o.env !== null ? { env: strMap(c, o.env, 'env') } : {}),
    ...(leaseMs !== undefined ? { leaseMs } : {}),
  };
});

function actorStatus(c: Check, v: unknown, path: string): ActorStatus {
  const o = c.obj(v, path);
  const pid = optNum(c, o, 'pid');
  const endedAt = optNum(c, o, 'endedAt');
  const stoppedBy = c.optStr(o, 'stoppedBy');
  if (o.code !== null && typeof o.code !== 'number') c.fail(`${path}.code must be a number or null`);
  if (o.signal !== null && typeof o.signal !== 'string') c.fail(`${path}.signal must be a string or null`);
  return {
    job: validateToken(c.str(o, 'job'), 'job id'),
    actor: validateToken(c.str(o, 'actor'), 'actor name'),
    entry: c.str(o, 'entry'),
    ...(pid !== undefined ? { pid } : {}),
    running: c.bool(o, 'running'),
    code: o.code as number | null,
    signal: o.signal as string | null,
    startedAt: c.num(o, 'startedAt'),
    ...(endedAt !== undefined ? { endedAt } : {}),
    ...(stoppedBy !== undefined ? { stoppedBy } : {}),
  };
}

export const actorStatusCodec: Codec<ActorStatus> = defineJsonKind<ActorStatus>('ActorStatus', (o, c) => actorStatus(c, o, 'message'));

export const stopActorsRequestCodec: Codec<StopActorsRequest> = defineJsonKind<StopActorsRequest>('StopActorsRequest', (o, c) => {
  const actor = c.optStr(o, 'actor');
  return { job: validateToken(c.str(o, 'job'), 'job id'), ...(actor !== undefined ? { actor: validateToken(actor, 'actor name') } : {}) };
});

export const actorListCodec: Codec<ActorList> = defineJsonKind<ActorList>('ActorList', (o, c) => {
  if (!Array.isArray(o.actors)) c.fail("field 'actors' must be an array");
  return { node: validateToken(c.str(o, 'node'), 'node name'), actors: (o.actors as unknown[]).map((a, i) => actorStatus(c, a, `actors[${i}]`)) };
});

export const leaseRenewalCodec: Codec<LeaseRenewal> = defineJsonKind<LeaseRenewal>('LeaseRenewal', (o, c) => {
  const holder = c.optStr(o, 'holder');
  return { job: validateToken(c.str(o, 'job'), 'job id'), ...(holder !== undefined ? { holder } : {}) };
});

export const logLineCodec: Codec<LogLine> = defineJsonKind<LogLine>('LogLine', (o, c) => ({
  job: validateToken(c.str(o, 'job'), 'job id'),
  actor: validateToken(c.str(o, 'actor'), 'actor name'),
  line: c.str(o, 'line'),
  ts: c.num(o, 'ts'),
}));

/** An actor's end, published by its agent on `cluster.node.<node>.exit.<actor>`. */
export interface ActorExitEvent {
  readonly node: string;
  readonly status: ActorStatus;
}

export const actorExitCodec: Codec<ActorExitEvent> = defineJsonKind<ActorExitEvent>('ActorExit', (o, c) => {
  const status = actorStatus(c, o.status, 'status');
  if (status.running) c.fail('status.running must be false in an exit (the actor has ended)');
  if (status.code === null && status.signal === null) c.fail('status: an exit needs a code or a signal');
  return { node: validateToken(c.str(o, 'node'), 'node name'), status };
});
