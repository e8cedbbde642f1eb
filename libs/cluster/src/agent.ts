// The node agent's work on the bus (apps/node is its thin main): it registers as a NATS service
// (role `node`, so `$SRV.INFO.actorflow` lists every node), answers `cluster.node.<name>.info`,
// starts, stops and lists a job's actors on request, streams their output lines on
// `cluster.node.<name>.log.<actor>` and their ends on `cluster.node.<name>.exit.<actor>`, and stops a job's actors when the requester's lease
// (`cluster.node.<name>.lease`, or the job's `<job>.hb.launcher` heartbeat) is silent too long.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { HandlerError, registerActorService, requestLarge, serveLarge, type ActorService, type NatsConnection, type Subscription } from '@actorflow/bus';
import { NodeAgentError } from './errors.ts';
import {
  actorExitCodec,
  actorListCodec,
  actorStatusCodec,
  CLUSTER_JOB,
  clusterSubjects,
  decodeMsg,
  DEFAULT_LEASE_MS,
  encodeMsg,
  leaseRenewalCodec,
  logLineCodec,
  nodeInfoCodec,
  startActorRequestCodec,
  stopActorsRequestCodec,
  subjects,
  validateToken,
  type GpuInfo,
  type NodeCalibration,
  type NodeInfo,
  type StartActorRequest,
} from '@actorflow/protocol';
import { ActorProcesses } from './processes.ts';

export interface NodeAgentOptions {
  readonly name: string;
  readonly address: string;
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly freeMemory: () => number;
  readonly gpus: readonly GpuInfo[];
  readonly backends: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly energyEfficient: boolean;
  readonly calibration: NodeCalibration;
  /** Repository root: actor entries are resolved inside it. */
  readonly root: string;
  /** Environment for every actor (NATS_URL of the agent's servers, …). */
  readonly childEnv?: Readonly<Record<string, string>>;
  /** Where files named by FETCH_FILES_ENV are written (default: the OS temp folder). */
  readonly filesDir?: string;
  /** Default lease of a job whose start request names none (default 15 s). */
  readonly leaseMs?: number;
  readonly log?: (line: string) => void;
}

/**
 * A start request's environment may name files the actor needs that live with the requester (a
 * restarted shard's checkpoint part): `{"<index in args>": "<job>.files.<…>"}`. The agent fetches
 * each over the bus before it starts the actor, writes it under its own temp folder and puts that
 * path in the argument instead — so no machine needs the launcher's files at the same path.
 */
export const FETCH_FILES_ENV = 'ACTORFLOW_FETCH_FILES';

/** Where fetched files go on this machine (default: the OS temp folder). */
function fetchedPath(dir: string, job: string, actor: string, index: number, original: string): string {
  return join(dir, `actorflow-${job}`, `${actor}-${index}-${basename(original)}`);
}

interface Lease {
  ms: number;
  last: number;
  readonly hb: Subscription;
}

/**
 * Where a calibration echoes to itself: under the node's own `cluster.node.<node>.calibrate.<random>`
 * when the caller is node agent `node` (its NATS user may publish and subscribe there and nowhere
 * like it: docs/SECURITY.md), else `_CALIBRATE.<client id>.<random>` (a client without a node).
 */
function calibrationSubject(nc: NatsConnection, node: string | undefined, tag = ''): string {
  const random = `${tag}${Math.random().toString(36).slice(2)}`;
  return node !== undefined ? `cluster.node.${validateToken(node, 'node name')}.calibrate.${random}` : `_CALIBRATE.${nc.info?.client_id ?? 'x'}.${random}`;
}

/** MB/s of large messages sent to ourselves through the broker and back (there and back counted). */
export async function measureLink(nc: NatsConnection, o: { bytes?: number; rounds?: number; node?: string } = {}): Promise<number | undefined> {
  const size = Math.min(o.bytes ?? 256 * 1024, Math.max(1024, nc.info?.max_payload ?? 1024 * 1024) - 1024);
  const subject = calibrationSubject(nc, o.node);
  const echo = nc.subscribe(subject, {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  const payload = new Uint8Array(size);
  try {
    await nc.request(subject, payload, { timeout: 2000 }); // warm-up
    const rounds = o.rounds ?? 8;
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) await nc.request(subject, payload, { timeout: 2000 });
    const sec = (performance.now() - t0) / 1000;
    return Math.round(((2 * size * rounds) / 1e6 / sec) * 10) / 10;
  } catch {
    return undefined;
  } finally {
    echo.unsubscribe();
  }
}

/**
 * The fixed cost of one request on the bus, ms: a round trip of a pull-sized message (`rows` row ids
 * and a version, msgpack) to ourselves through the broker, decoded and re-encoded by the responder
 * and decoded again here — what every pull, push and batch request of a step pays besides its bytes.
 * The median of `rounds` round trips (the first few are a warm-up).
 */
export async function measureRequest(nc: NatsConnection, o: { rows?: number; rounds?: number; node?: string } = {}): Promise<number | undefined> {
  const subject = calibrationSubject(nc, o.node, 'rq');
  const echo = nc.subscribe(subject, {
    callback: (_e, m) => {
      const v = decodeMsg(m.data, 'calibration request') as { rows: Int32Array; version: number };
      m.respond(encodeMsg({ rows: v.rows, version: v.version + 1 }));
    },
  });
  const rows = Int32Array.from({ length: o.rows ?? 512 }, (_, i) => (i * 7919) % 100_000);
  const times: number[] = [];
  try {
    const rounds = o.rounds ?? 40;
    for (let i = 0; i < rounds + 5; i++) {
      const t0 = performance.now();
      const r = await nc.request(subject, encodeMsg({ rows, version: i }), { timeout: 2000 });
      decodeMsg(r.data, 'calibration reply');
      if (i >= 5) times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return Math.round(times[Math.floor(times.length / 2)] * 1000) / 1000;
  } catch {
    return undefined;
  } finally {
    echo.unsubscribe();
  }
}

export class NodeAgent {
  readonly #nc: NatsConnection;
  readonly #o: NodeAgentOptions;
  readonly #procs: ActorProcesses;
  readonly #subs: Subscription[] = [];
  readonly #leases = new Map<string, Lease>();
  readonly #timer: NodeJS.Timeout;
  #service: ActorService | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, o: NodeAgentOptions) {
    this.#nc = nc;
    this.#o = o;
    const log = o.log ?? (() => undefined);
    this.#procs = new ActorProcesses({
      root: o.root,
      ...(o.childEnv !== undefined ? { env: o.childEnv } : {}),
      onLine: (job, actor, line) => {
        if (this.#closed || this.#nc.isClosed()) return; // a closed connection must not kill the agent (its actors still need stopping)
        this.#nc.publish(clusterSubjects.log(o.name, actor), logLineCodec.encode({ job, actor, line, ts: Date.now() }));
      },
      onExit: (s) => {
        log(`actor ${s.actor} of job ${s.job} ended: ${s.signal !== null ? `signal ${s.signal}` : `exit code ${s.code}`}${s.stoppedBy !== undefined ? ` (stopped: ${s.stoppedBy})` : ''}`);
        // The requester (a launcher) follows `cluster.node.*.exit.*`; `list` has it too, for one that missed it.
        if (!this.#nc.isClosed()) this.#nc.publish(clusterSubjects.exit(o.name, s.actor), actorExitCodec.encode({ node: o.name, status: s }));
      },
    });
    this.#timer = setInterval(() => void this.#checkLeases(), 250);
    this.#timer.unref();
  }

  /** Starts serving; resolves once every subject is subscribed at the server. */
  static async start(nc: NatsConnection, o: NodeAgentOptions): Promise<NodeAgent> {
    const agent = new NodeAgent(nc, o);
    await agent.#serve();
    return agent;
  }

  get name(): string {
    return this.#o.name;
  }

  info(): NodeInfo {
    const o = this.#o;
    return {
      name: o.name,
      address: o.address,
      cores: o.cores,
      cpuModel: o.cpuModel,
      memoryBytes: o.memoryBytes,
      freeMemoryBytes: o.freeMemory(),
      gpus: o.gpus,
      backends: o.backends,
      labels: o.labels,
      energyEfficient: o.energyEfficient,
      calibration: o.calibration,
      platform: `${process.platform}-${process.arch} node ${process.version}`,
      pid: process.pid,
      running: this.#procs.running(),
      ts: Date.now(),
    };
  }

  async #serve(): Promise<void> {
    const o = this.#o;
    const log = o.log ?? (() => undefined);
    const onError = (err: Error): void => log(err.message);
    const guard =
      <T>(f: (payload: Uint8Array) => T | Promise<T>) =>
      async (payload: Uint8Array): Promise<T> => {
        try {
          return await f(payload);
        } catch (err) {
          if (err instanceof NodeAgentError) throw new HandlerError(err.code, err.message);
          if ((err as Error).name === 'DecodeError' || (err as Error).name === 'ProtocolError') throw new HandlerError('BAD_REQUEST', (err as Error).message);
          throw err;
        }
      };
    this.#subs.push(serveLarge(this.#nc, clusterSubjects.info(o.name), () => nodeInfoCodec.encode(this.info()), { onError }));
    this.#subs.push(
      serveLarge(
        this.#nc,
        clusterSubjects.start(o.name),
        guard(async (p) => {
          const req = await this.#fetchFiles(startActorRequestCodec.decode(p));
          this.#lease(req.job, req.leaseMs ?? o.leaseMs ?? DEFAULT_LEASE_MS);
          const fresh = !this.#procs.list().some((a) => a.running && a.actor === req.actor);
          const status = this.#procs.start(req);
          if (fresh) log(`started ${req.actor} of job ${req.job}: ${req.entry} ${req.args.join(' ')} (pid ${status.pid ?? '?'})`);
          return actorStatusCodec.encode(status);
        }),
        { onError },
      ),
    );
    this.#subs.push(
      serveLarge(
        this.#nc,
        clusterSubjects.stop(o.name),
        guard(async (p) => {
          const req = stopActorsRequestCodec.decode(p);
          const stopped = await this.#procs.stop(req.job, req.actor, 'stop request');
          return actorListCodec.encode({ node: o.name, actors: stopped });
        }),
        { onError },
      ),
    );
    this.#subs.push(serveLarge(this.#nc, clusterSubjects.list(o.name), () => actorListCodec.encode({ node: o.name, actors: this.#procs.list() }), { onError }));
    this.#subs.push(
      this.#nc.subscribe(clusterSubjects.lease(o.name), {
        callback: (_err, m) => {
          try {
            const r = leaseRenewalCodec.decode(m.data);
            this.#renew(r.job);
            if (m.reply !== undefined && m.reply !== '') m.respond(leaseRenewalCodec.encode(r));
          } catch (err) {
            log(`ignored a bad lease renewal: ${(err as Error).message}`);
          }
        },
      }),
    );
    this.#service = await registerActorService(this.#nc, {
      role: 'node',
      job: CLUSTER_JOB,
      rank: o.name,
      description: `actorflow node agent ${o.name} (${o.address})`,
      stats: () => ({
        node: o.name,
        address: o.address,
        cores: o.cores,
        memoryBytes: o.memoryBytes,
        gpus: o.gpus.length,
        energyEfficient: o.energyEfficient,
        backends: o.backends.join(','),
        labels: Object.entries(o.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        running: this.#procs.running(),
      }),
    });
    await this.#nc.flush();
  }

  /** Fetches the files a start request names (FETCH_FILES_ENV) and points its arguments at the local copies. */
  async #fetchFiles(req: StartActorRequest): Promise<StartActorRequest> {
    const spec = req.env?.[FETCH_FILES_ENV];
    if (spec === undefined) return req;
    let wanted: unknown;
    try {
      wanted = JSON.parse(spec);
    } catch {
      throw new NodeAgentError('BAD_REQUEST', `${FETCH_FILES_ENV} of ${req.actor} is not JSON: send {"<arg index>": "<job>.files.<name>"}`);
    }
    if (typeof wanted !== 'object' || wanted === null || Array.isArray(wanted))
      throw new NodeAgentError('BAD_REQUEST', `${FETCH_FILES_ENV} of ${req.actor} must be an object {"<arg index>": "<job>.files.<name>"}`);
    const args = [...req.args];
    for (const [k, subject] of Object.entries(wanted as Record<string, unknown>)) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= args.length) throw new NodeAgentError('BAD_REQUEST', `${FETCH_FILES_ENV} of ${req.actor}: no argument ${k} (it has ${args.length})`);
      if (typeof subject !== 'string' || !subject.startsWith(`${req.job}.files.`))
        throw new NodeAgentError('BAD_REQUEST', `${FETCH_FILES_ENV} of ${req.actor}: argument ${k} must come from a subject under ${req.job}.files., got ${String(subject)}`);
      let bytes: Uint8Array;
      try {
        bytes = await requestLarge(this.#nc, subject, new Uint8Array(0), { timeoutMs: 60_000 });
      } catch (err) {
        throw new NodeAgentError('FETCH_FAILED', `could not fetch ${args[i]} for ${req.actor} from ${subject}: ${(err as Error).message}; is its launcher still running?`);
      }
      const file = fetchedPath(this.#o.filesDir ?? tmpdir(), req.job, req.actor, i, args[i]);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, bytes);
      this.#o.log?.(`fetched ${args[i - 1] ?? 'a file'} of ${req.actor} (job ${req.job}) over the bus: ${bytes.length} bytes → ${file}`);
      args[i] = file;
    }
    const env = Object.fromEntries(Object.entries(req.env ?? {}).filter(([name]) => name !== FETCH_FILES_ENV));
    return { ...req, args, env };
  }

  #lease(job: string, ms: number): void {
    const have = this.#leases.get(job);
    if (have !== undefined) {
      have.ms = ms;
      have.last = Date.now();
      return;
    }
    // A launcher's heartbeat renews the lease too.
    const hb = this.#nc.subscribe(subjects.heartbeat(job, 'launcher'), { callback: () => this.#renew(job) });
    this.#leases.set(job, { ms, last: Date.now(), hb });
  }

  #renew(job: string): void {
    const l = this.#leases.get(job);
    if (l !== undefined) l.last = Date.now();
  }

  async #checkLeases(): Promise<void> {
    const now = Date.now();
    const running = this.#procs.runningJobs();
    for (const [job, l] of this.#leases) {
      if (!running.has(job)) continue;
      if (now - l.last <= l.ms) continue;
      l.last = Number.POSITIVE_INFINITY; // once
      this.#o.log?.(`job ${job}: no lease renewal for ${(l.ms / 1000).toFixed(1)} s (its launcher is gone): stopping its actors`);
      await this.#procs.stop(job, undefined, 'lease expired');
      l.hb.unsubscribe();
      this.#leases.delete(job);
    }
  }

  /** Stops every actor this agent started and stops serving. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.#procs.stopAll('agent shutting down');
    this.#closed = true;
    for (const s of this.#subs) s.unsubscribe();
    for (const l of this.#leases.values()) l.hb.unsubscribe();
    await this.#service?.stop();
  }
}
