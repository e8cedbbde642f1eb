// Every actor is a NATS service (@nats-io/services): `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` list
// it with its role, job and rank in the metadata, and its live stats (the connection's message
// counters, uptime, memory, plus whatever the actor adds) in the stats of its `status` endpoint,
// which also answers requests on `actorflow.status.<job>.<role>.<id>` with the same JSON.
import { NoRespondersError, type NatsConnection } from '@nats-io/nats-core';
import { Svcm, type Service, type ServiceInfo, type ServiceStats } from '@nats-io/services';
import { heartbeatCodec, subjects } from '@actorflow/protocol';
import { startHeartbeat } from './heartbeat.ts';

/** The service name every actor registers under (so `$SRV.INFO.actorflow` lists them all). */
export const ACTOR_SERVICE_NAME = 'actorflow';
const VERSION = '0.1.0';

// @nats-io/services (3.0.0-25, the newest this registry has) is typed against its own nested
// @nats-io/nats-core 3.0.0-50; the wire protocol is the same, so our 3.3 connection serves it.
type SvcConnection = ConstructorParameters<typeof Svcm>[0];
type SvcRequestOptions = NonNullable<Parameters<Svcm['client']>[0]>;
const svcm = (nc: NatsConnection): Svcm => new Svcm(nc as unknown as SvcConnection);
const clientOptions = (maxWait: number): SvcRequestOptions => ({ strategy: 'timer', maxWait }) as SvcRequestOptions;

export interface ActorServiceOptions {
  /** aggregator, trainer, data-shard, evaluator, monitor, job, … */
  readonly role: string;
  readonly job: string;
  /** The rank(s) or shard this actor is (omitted for actors without one). */
  readonly rank?: number | string;
  readonly description?: string;
  /** Extra live numbers (pushes, versions, batches served, evals …), read at every STATS/status request. */
  readonly stats?: () => Readonly<Record<string, number | string | boolean>>;
  /**
   * This actor's name in its job, the token of its heartbeat subject `<job>.hb.<actor>` (default:
   * $ACTORFLOW_ACTOR, which the launcher sets, else `<role>-<rank>`).
   */
  readonly actor?: string;
  /** Heartbeat period (default $ACTORFLOW_HEARTBEAT_MS, else 2000 ms; 0 = no heartbeat). */
  readonly heartbeatMs?: number;
}

/** The heartbeat subject token of an actor: `<role>-<rank>` with anything but letters, digits, '-' and '_' replaced. */
export function actorName(role: string, rank?: number | string): string {
  return token(rank === undefined ? role : `${role}-${String(rank)}`);
}

export interface ActorStats {
  readonly role: string;
  readonly job: string;
  readonly rank?: string;
  readonly uptimeSec: number;
  readonly rssBytes: number;
  readonly inMsgs: number;
  readonly outMsgs: number;
  readonly inBytes: number;
  readonly outBytes: number;
  readonly [extra: string]: number | string | boolean | undefined;
}

export interface ActorService {
  readonly service: Service;
  /** The subject of this actor's status endpoint. */
  readonly statusSubject: string;
  /** The live stats now (what STATS and the status endpoint return). */
  snapshot(): ActorStats;
  stop(): Promise<void>;
}

function token(s: string): string {
  return s.replace(/[^-\w]/g, '_') || '_';
}

/** Registers this actor as a NATS service; it stops with the connection (or with `stop()`). */
export async function registerActorService(nc: NatsConnection, o: ActorServiceOptions): Promise<ActorService> {
  const started = performance.now();
  const rank = o.rank === undefined ? undefined : String(o.rank);
  const snapshot = (): ActorStats => {
    const s = nc.stats();
    return {
      role: o.role,
      job: o.job,
      ...(rank !== undefined ? { rank } : {}),
      uptimeSec: Math.round((performance.now() - started) / 100) / 10,
      rssBytes: process.memoryUsage().rss,
      inMsgs: s.inMsgs,
      outMsgs: s.outMsgs,
      inBytes: s.inBytes,
      outBytes: s.outBytes,
      ...(o.stats?.() ?? {}),
    };
  };
  const service = await svcm(nc).add({
    name: ACTOR_SERVICE_NAME,
    version: VERSION,
    description: o.description ?? `actorflow ${o.role} of job ${o.job}${rank !== undefined ? `, rank ${rank}` : ''}`,
    metadata: { role: o.role, job: o.job, ...(rank !== undefined ? { rank } : {}), pid: String(process.pid) },
    statsHandler: () => Promise.resolve(snapshot()),
  });
  const statusSubject = `actorflow.status.${token(o.job)}.${token(o.role)}.${service.info().id}`;
  service.addEndpoint('status', {
    subject: statusSubject,
    queue: '',
    handler: (err, m) => {
      if (err === null) m.respond(JSON.stringify(snapshot()));
    },
  });
  // Liveness: a heartbeat every few seconds; the launcher declares an actor dead when it goes silent
  // (a SIGSTOPped or wedged process stops beating; its timers do not run).
  const actor = token(o.actor ?? (process.env.ACTORFLOW_ACTOR !== undefined && process.env.ACTORFLOW_ACTOR !== '' ? process.env.ACTORFLOW_ACTOR : actorName(o.role, o.rank)));
  const heartbeatMs = o.heartbeatMs ?? (Number(process.env.ACTORFLOW_HEARTBEAT_MS ?? '') || 2000);
  const numericRank = typeof o.rank === 'number' ? { rank: o.rank } : {};
  const beat =
    heartbeatMs > 0
      ? startHeartbeat(nc, subjects.heartbeat(o.job, actor), () => heartbeatCodec.encode({ job: o.job, role: o.role, actor, pid: process.pid, ts: Date.now(), ...numericRank }), heartbeatMs)
      : undefined;
  await nc.flush(); // the server has our subscriptions: discovery from any connection sees us from now on
  return {
    service,
    statusSubject,
    snapshot,
    stop: async () => {
      beat?.stop();
      if (!service.isStopped) await service.stop();
    },
  };
}

function isNoResponders(err: unknown): boolean {
  // NoRespondersError in nats-core 3.3 (possibly from the services package's nested copy, hence the
  // name check); a RequestError with isNoResponders() in later releases.
  const e = err as { name?: string; isNoResponders?: () => boolean } | null;
  return err instanceof NoRespondersError || e?.name === 'NoRespondersError' || (typeof e?.isNoResponders === 'function' && e.isNoResponders());
}

/** The replies of a discovery request; no responders (no actor at all) is an empty list. */
async function collect<T extends { metadata?: Record<string, string> }>(replies: () => Promise<AsyncIterable<T>>, job: string | undefined): Promise<T[]> {
  const out: T[] = [];
  try {
    for await (const r of await replies()) if (job === undefined || r.metadata?.job === job) out.push(r);
  } catch (err) {
    if (!isNoResponders(err)) throw err;
  }
  return out;
}

/** Every actor that answers `$SRV.INFO.actorflow` within `timeoutMs` (all jobs, or one). */
export async function listActorServices(nc: NatsConnection, o: { job?: string; timeoutMs?: number } = {}): Promise<ServiceInfo[]> {
  return collect(
    () =>
      svcm(nc)
        .client(clientOptions(o.timeoutMs ?? 1000))
        .info(ACTOR_SERVICE_NAME),
    o.job,
  );
}

/** The STATS replies of every actor (all jobs, or one). */
export async function actorServiceStats(nc: NatsConnection, o: { job?: string; timeoutMs?: number } = {}): Promise<ServiceStats[]> {
  return collect(
    () =>
      svcm(nc)
        .client(clientOptions(o.timeoutMs ?? 1000))
        .stats(ACTOR_SERVICE_NAME),
    o.job,
  );
}
