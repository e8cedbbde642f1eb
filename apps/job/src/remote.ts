// Jobs on many machines (issue 16, docs/CLUSTER.md): `--plan FILE` (a ShardingPlan from `nx run plan`)
// or `--blueprint FILE --use POLICY` (planned now, by running apps/plan) names the machine of every
// actor; RemoteSpawner starts each one through that machine's node agent (`cluster.node.<name>.start`)
// instead of as a local child. The supervisor's restart logic is unchanged: exits arrive as the agent's
// `exit` events (or from `list`, for one that was missed), log lines as its `log` stream, and a machine
// that stops answering is lost — its actors count as killed (SIGKILL) and restarts go to the machines
// that are left. Leases keep the actors alive only while this launcher is: if it dies, every agent
// stops the job's actors within the lease.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { FETCH_FILES_ENV, listActors, nodeInfo, renewLease, startActor, stopActors, type ShardingPlan } from '@actorflow/cluster';
import { actorExitCodec, clusterSubjects, logLineCodec } from '@actorflow/protocol';
import type { JobPlan } from './flags.ts';
import { localSpawner, type ActorSpec, type SpawnContext, type SpawnedActor, type Spawner } from './supervisor.ts';

export class ClusterJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterJobError';
  }
}

/** What --plan / --blueprint --use asked for (from the job's flags). */
export interface ClusterRequest {
  readonly plan?: string;
  readonly blueprint?: string;
  readonly use?: string;
  /** --strategy and --trainers as typed (absent: the planner decides). */
  readonly strategy?: string;
  readonly trainers?: string;
}

/** Reads and checks a ShardingPlan file (the fields the launcher uses). */
export function loadShardingPlan(file: string): ShardingPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ClusterJobError(`--plan ${file}: not a readable JSON file (${(err as Error).message}); write one with npx nx run plan -- … --out ${file}`);
  }
  const p = raw as Partial<ShardingPlan>;
  if (typeof raw !== 'object' || raw === null || p.format !== 'actorflow.plan/1')
    throw new ClusterJobError(`--plan ${file}: not a plan (format 'actorflow.plan/1' expected); write one with npx nx run plan -- … --out ${file}`);
  if (p.strategy !== 'ps' && p.strategy !== 'mirrored') throw new ClusterJobError(`--plan ${file}: strategy must be ps or mirrored, got ${String(p.strategy)}`);
  for (const k of ['trainers', 'dataShards', 'psShards', 'batchSize'] as const) {
    const min = k === 'psShards' && p.strategy === 'mirrored' ? 0 : 1; // a mirrored plan has no parameter shards
    if (!Number.isInteger(p[k]) || (p[k] as number) < min) throw new ClusterJobError(`--plan ${file}: ${k} must be an integer >= ${min}, got ${String(p[k])}`);
  }
  if (!Array.isArray(p.placements) || p.placements.some((x) => typeof x?.machine !== 'string' || !/^[-\w]+$/.test(x.machine)))
    throw new ClusterJobError(`--plan ${file}: placements must be a list of {role, index, machine} with machine names that are subject tokens`);
  return p as ShardingPlan;
}

/** Actor name → machine, from a plan's placements (ps-shard i runs as aggregator-i). */
export function actorPlacement(plan: ShardingPlan): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of plan.placements) {
    const name =
      p.role === 'trainer' ? `trainer-${p.index}` : p.role === 'data-shard' ? `data-shard-${p.index}` : p.role === 'ps-shard' || p.role === 'aggregator' ? `aggregator-${p.index}` : 'evaluator';
    out.set(name, p.machine);
  }
  return out;
}

/** The job's plan with what the ShardingPlan decided (strategy, trainers, shards, batch). */
export function applyShardingPlan(job: JobPlan, sp: ShardingPlan, file: string): JobPlan {
  if (sp.model !== job.model) throw new ClusterJobError(`--plan ${file} was made for model ${sp.model}, but the job trains ${job.model}: pass --model ${sp.model}, or plan again`);
  return {
    ...job,
    strategy: sp.strategy,
    trainers: sp.trainers,
    minTrainers: Math.min(job.minTrainers, sp.trainers),
    dataShards: sp.dataShards,
    psShards: sp.psShards > 0 ? sp.psShards : job.psShards,
    batchSize: sp.batchSize,
  };
}

/**
 * The job's model flags (as the aggregators take them: `--hyper K=V`, `--dim 64`, `--optimizer sgd`,
 * a bare `--dense-updates`) as the planner's `--hyper` / `--model-flag FLAG=VALUE`, so it sizes the
 * model the job will build.
 */
export function plannerModelArgs(modelFlags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < modelFlags.length; i++) {
    const flag = modelFlags[i].replace(/^--/, '');
    const next = modelFlags[i + 1];
    const value = next !== undefined && !next.startsWith('--') ? next : undefined;
    if (value !== undefined) i++;
    if (flag === 'hyper' && value !== undefined) out.push('--hyper', value);
    else out.push('--model-flag', value !== undefined ? `${flag}=${value}` : flag);
  }
  return out;
}

/** apps/plan's arguments for a --blueprint job: its model, data, batch, epochs and model flags. */
export function plannerArgs(job: JobPlan, req: ClusterRequest, natsUrl: string): string[] {
  const args = ['--blueprint', req.blueprint ?? '', '--use', req.use ?? 'all', '--model', job.model, '--dataset', job.dataset, '--split', job.split];
  args.push('--batch-size', `${job.batchSize}`, '--epochs', `${job.epochs}`, ...plannerModelArgs(job.modelFlags));
  args.push('--strategy', req.strategy ?? 'auto', ...(req.trainers !== undefined ? ['--trainers', req.trainers] : []), '--nats-url', natsUrl, '--json');
  return args;
}

/** --blueprint FILE --use POLICY: the plan of apps/plan (run as a process; its agents' measurements included). */
export function planFromBlueprint(job: JobPlan, req: ClusterRequest, root: string, natsUrl: string): ShardingPlan {
  const args = plannerArgs(job, req, natsUrl);
  const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(root, 'apps/plan/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new ClusterJobError(`planning on --blueprint ${req.blueprint} failed: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}`);
  try {
    return JSON.parse(r.stdout) as ShardingPlan;
  } catch {
    throw new ClusterJobError(`the planner printed no plan: ${r.stdout.slice(0, 500)}`);
  }
}

/** The plan of a cluster job and its placement, or the job unchanged when it is a local one. */
export function resolveClusterJob(job: JobPlan, root: string): { job: JobPlan; sharding?: ShardingPlan; placement?: Map<string, string> } {
  const req = job.cluster;
  if (req === undefined || (req.plan === undefined && req.blueprint === undefined)) return { job };
  if (job.natsUrl === undefined)
    throw new ClusterJobError(`--plan / --blueprint need --nats-url (or NATS_URL): the NATS servers the node agents are connected to, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222`);
  const file = req.plan ?? req.blueprint ?? '';
  const out = resolve(root, job.out);
  if (job.resume !== undefined) {
    // --resume: the plan the job ran with (its checkpoint's shards follow it), never a new one.
    const saved = resolve(out, 'cluster-plan.json');
    if (!existsSync(saved))
      throw new ClusterJobError(
        `--resume ${job.resume}: the job ran on ${req.plan !== undefined ? `--plan ${req.plan}` : `--blueprint ${req.blueprint}`}, but the plan it ran with (${saved}) is gone and its checkpoint's shards follow that plan: copy that plan there (npx nx run plan -- … --out ${saved} makes a new one, which must have the same strategy and shard counts), or start the job afresh without --resume`,
      );
    const sharding = loadShardingPlan(saved);
    return { job: applyShardingPlan(job, sharding, saved), sharding, placement: actorPlacement(sharding) };
  }
  const sharding = req.plan !== undefined ? loadShardingPlan(req.plan) : planFromBlueprint(job, req, root, job.natsUrl);
  // Kept with the job's outputs: where every actor was planned, and why.
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'cluster-plan.json'), `${JSON.stringify(sharding, null, 2)}\n`);
  return { job: applyShardingPlan(job, sharding, file), sharding, placement: actorPlacement(sharding) };
}

/** metrics.json's `plan` block: the planner's predicted step time against the measured one. */
export function planReport(sp: ShardingPlan, rankSteps: Readonly<Record<string, number>>, trainSeconds: number | undefined): Record<string, unknown> {
  const steps = Object.values(rankSteps);
  const meanSteps = steps.length > 0 ? steps.reduce((a, b) => a + b, 0) / steps.length : 0;
  const measuredStepMs = trainSeconds !== undefined && meanSteps > 0 ? (trainSeconds * 1000) / meanSteps : undefined;
  return {
    strategy: sp.strategy,
    machines: [...new Set(sp.placements.map((p) => p.machine))],
    predictedStepMs: sp.predicted.stepMs,
    ...(measuredStepMs !== undefined ? { measuredStepMs: Math.round(measuredStepMs * 100) / 100, measuredOverPredicted: Math.round((measuredStepMs / sp.predicted.stepMs) * 100) / 100 } : {}),
  };
}

/** Flags whose value is a file of the launcher's that an actor on another machine must be given (restore parts). */
export const SHIPPED_FILE_FLAGS: ReadonlySet<string> = new Set(['--restore-shard', '--restore-state', '--restore-trainer']);

interface RemoteActor {
  readonly node: string;
  readonly name: string;
  pid: number | undefined;
  ended: boolean;
  readonly onLine: (line: string) => void;
  readonly finish: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface RemoteSpawnerOptions {
  readonly job: string;
  /** Actor name → machine; actors it does not name (the monitor) run locally. */
  readonly placement: ReadonlyMap<string, string>;
  readonly log: (line: string) => void;
  /** The agents stop the job's actors when no renewal arrives for this long (default 15 s). */
  readonly leaseMs?: number;
  /** A machine whose agent does not answer `list` for this long is lost (default 8 s). */
  readonly lostAfterMs?: number;
  /**
   * A planned machine whose agent does not answer at the start: 'fail' (default: a new job's plan
   * names machines that are not there — fix the plan), or 'move' (--resume: the job already ran on
   * that plan and one of its machines has gone since; its actors start on the machines that answer,
   * as after a machine lost mid-job; it still fails when none answers).
   */
  readonly missingAgents?: 'fail' | 'move';
}

/** Starts actors through node agents; see the top of this file. */
export class RemoteSpawner implements Spawner {
  readonly #nc: NatsConnection;
  readonly #o: RemoteSpawnerOptions;
  readonly #actors = new Map<string, RemoteActor>(); // `${node}/${actor}` → the current incarnation
  readonly #nodes: string[];
  readonly #lost = new Set<string>();
  readonly #lastAnswer = new Map<string, number>();
  readonly #subs: Subscription[] = [];
  readonly #timers: NodeJS.Timeout[] = [];
  #next = 0;
  #files = 0;

  private constructor(nc: NatsConnection, o: RemoteSpawnerOptions) {
    this.#nc = nc;
    this.#o = o;
    this.#nodes = [...new Set(o.placement.values())];
  }

  /** Checks that every planned machine's agent answers, then follows their exits and logs. */
  static async open(nc: NatsConnection, o: RemoteSpawnerOptions): Promise<RemoteSpawner> {
    const s = new RemoteSpawner(nc, o);
    const missing: string[] = [];
    await Promise.all(
      s.#nodes.map(async (n) => {
        try {
          const info = await nodeInfo(nc, n, { deadlineMs: 15_000 });
          o.log(`node ${n}: agent at ${info.address} (${info.cores} cores, ${info.running} actor(s) running)`);
          s.#lastAnswer.set(n, Date.now());
        } catch (err) {
          missing.push(`${n} (${(err as Error).message})`);
        }
      }),
    );
    const answered = s.#nodes.filter((n) => s.#lastAnswer.has(n));
    if (missing.length > 0 && (o.missingAgents !== 'move' || answered.length === 0))
      throw new ClusterJobError(`no node agent answers for ${missing.join(', ')}: start \`npx nx serve node -- --name NAME\` on each machine of the plan, on the same NATS servers`);
    for (const n of s.#nodes.filter((m) => !s.#lastAnswer.has(m))) {
      s.#lost.add(n);
      o.log(`node ${n} of the plan does not answer (${missing.find((m) => m.startsWith(`${n} `)) ?? n}): its actors start on ${answered.join(', ')}`);
    }
    s.#subs.push(
      nc.subscribe(clusterSubjects.allExits, {
        callback: (_e, m) => {
          try {
            const ev = actorExitCodec.decode(m.data);
            if (ev.status.job !== o.job) return;
            const a = s.#actors.get(`${ev.node}/${ev.status.actor}`);
            if (a !== undefined && (a.pid === undefined || ev.status.pid === undefined || a.pid === ev.status.pid)) a.finish(ev.status.code, ev.status.signal as NodeJS.Signals | null);
          } catch {
            /* not an exit event of ours */
          }
        },
      }),
      nc.subscribe(clusterSubjects.allLogs, {
        callback: (_e, m) => {
          try {
            const l = logLineCodec.decode(m.data);
            const node = m.subject.split('.')[2] ?? '';
            if (l.job === o.job) s.#actors.get(`${node}/${l.actor}`)?.onLine(l.line);
          } catch {
            /* not a log line of ours */
          }
        },
      }),
    );
    const leaseMs = o.leaseMs ?? 15_000;
    const renew = (): void => {
      for (const n of s.#nodes) if (!s.#lost.has(n)) renewLease(nc, n, o.job, 'launcher');
    };
    s.#timers.push(
      setInterval(renew, Math.max(500, leaseMs / 4)),
      setInterval(() => void s.#poll(), 2000),
    );
    for (const t of s.#timers) t.unref();
    return s;
  }

  /** The machines of the plan that have not been lost. */
  alive(): string[] {
    return this.#nodes.filter((n) => !this.#lost.has(n));
  }

  #pick(name: string): string | undefined {
    const planned = this.#o.placement.get(name);
    if (planned === undefined) return undefined;
    if (!this.#lost.has(planned)) return planned;
    const alive = this.alive();
    if (alive.length === 0) return planned; // nothing left: its start fails, and the job with it
    const chosen = alive[this.#next++ % alive.length];
    this.#o.log(`${name}: its machine ${planned} is lost; starting it on ${chosen}`);
    return chosen;
  }

  spawn(spec: ActorSpec, ctx: SpawnContext): SpawnedActor {
    const node = this.#pick(spec.name);
    if (node === undefined) return localSpawner.spawn(spec, ctx);
    // The agent gives its actors its own NATS servers (the ones near it); ours would be the wrong ones.
    const env: Record<string, string> = Object.fromEntries(Object.entries(ctx.env).filter(([k]) => k !== 'NATS_URL'));
    // Restore parts are the launcher's files: served on `<job>.files.<actor>.<n>` until the agent has
    // fetched them (it does so before it answers the start), never assumed at the same path there.
    const shipped = this.#shipFiles(spec);
    if (shipped.fetch !== undefined) env[FETCH_FILES_ENV] = shipped.fetch;
    let resolveExit!: (v: { code: number | null; signal: NodeJS.Signals | null }) => void;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => (resolveExit = r));
    const key = `${node}/${spec.name}`;
    const a: RemoteActor = {
      node,
      name: spec.name,
      pid: undefined,
      ended: false,
      onLine: ctx.onLine,
      finish: (code, signal) => {
        if (a.ended) return;
        a.ended = true;
        resolveExit({ code, signal });
      },
    };
    this.#actors.set(key, a);
    void startActor(this.#nc, node, { job: this.#o.job, actor: spec.name, entry: spec.entry, args: spec.args, env, leaseMs: this.#o.leaseMs ?? 15_000 }, { deadlineMs: 20_000 })
      .finally(() => {
        for (const sub of shipped.subs) sub.unsubscribe();
      })
      .then((st) => {
        a.pid = st.pid;
        this.#lastAnswer.set(node, Date.now());
        if (!st.running) a.finish(st.code, st.signal as NodeJS.Signals | null);
      })
      .catch((err: Error) => {
        ctx.onLine(`could not start on node ${node}: ${err.message}`);
        this.#markLost(node, `its start request failed (${err.message})`);
        a.finish(-1, null);
      });
    return {
      get pid() {
        return a.pid;
      },
      where: node,
      exited,
      hasExited: () => a.ended,
      kill: () => {
        if (a.ended) return;
        void stopActors(this.#nc, node, this.#o.job, spec.name, { deadlineMs: 15_000 })
          .then((list) => {
            const st = list.actors.find((x) => x.actor === spec.name);
            if (st !== undefined && !st.running) a.finish(st.code, st.signal as NodeJS.Signals | null);
          })
          .catch(() => {
            // The agent is unreachable: the actor is gone for us (its lease stops it if it still runs).
            this.#markLost(node, 'its stop request failed');
            a.finish(null, 'SIGKILL');
          });
      },
    };
  }

  #shipFiles(spec: ActorSpec): { fetch?: string; subs: Subscription[] } {
    const wanted: Record<string, string> = {};
    const subs: Subscription[] = [];
    spec.args.forEach((arg, i) => {
      if (i === 0 || !SHIPPED_FILE_FLAGS.has(spec.args[i - 1])) return;
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(arg);
      } catch (err) {
        throw new ClusterJobError(`${spec.name}: cannot read ${arg} to send it with ${spec.args[i - 1]} (${(err as Error).message})`);
      }
      const subject = `${this.#o.job}.files.${spec.name}.${this.#files++}`;
      subs.push(serveLarge(this.#nc, subject, () => bytes, { onError: (err) => this.#o.log(`serving ${arg} to ${spec.name}: ${err.message}`) }));
      wanted[String(i)] = subject;
    });
    return subs.length > 0 ? { fetch: JSON.stringify(wanted), subs } : { subs };
  }

  #markLost(node: string, why: string): void {
    if (this.#lost.has(node)) return;
    this.#lost.add(node);
    this.#o.log(`node ${node} is lost (${why}): its actors count as killed; restarts go to ${this.alive().join(', ') || 'no machine (none left)'}`);
    for (const a of this.#actors.values())
      if (a.node === node && !a.ended) {
        a.onLine(`node ${node} lost`);
        a.finish(null, 'SIGKILL');
      }
  }

  /** Catches exits whose event was missed, and machines that stopped answering. */
  async #poll(): Promise<void> {
    const busy = new Set([...this.#actors.values()].filter((a) => !a.ended).map((a) => a.node));
    const failed: string[] = [];
    let answered = 0;
    await Promise.all(
      [...busy].map(async (node) => {
        try {
          const list = await listActors(this.#nc, node, { deadlineMs: 3000 });
          this.#lastAnswer.set(node, Date.now());
          for (const st of list.actors) {
            const a = this.#actors.get(`${node}/${st.actor}`);
            if (a !== undefined && st.job === this.#o.job && !st.running && a.pid !== undefined && a.pid === st.pid) a.finish(st.code, st.signal as NodeJS.Signals | null);
          }
          answered++;
        } catch {
          failed.push(node);
        }
      }),
    );
    // When nobody answers, it is our own connection (a broker failover), not every machine at once.
    const lostAfterMs = this.#o.lostAfterMs ?? 8000;
    for (const node of failed) {
      const silent = Date.now() - (this.#lastAnswer.get(node) ?? 0);
      if (silent > lostAfterMs && (answered > 0 || silent > 4 * lostAfterMs)) this.#markLost(node, `its agent has not answered for ${(silent / 1000).toFixed(0)} s`);
    }
  }

  close(): void {
    for (const t of this.#timers) clearInterval(t);
    for (const s of this.#subs) s.unsubscribe();
  }
}
