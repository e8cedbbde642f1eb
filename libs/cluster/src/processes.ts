// The actor processes a node agent runs: spawned like the local launcher does (apps/job's
// supervisor: `node --import tsx <entry> …`, stdin a pipe the child watches so it exits when the
// agent dies, ACTORFLOW_ACTOR set), each output line handed on, exit codes kept for `list`.
import { spawn, type ChildProcess } from 'node:child_process';
import { isAbsolute, normalize, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { NodeAgentError } from './errors.ts';
import type { ActorStatus, StartActorRequest } from '@actorflow/protocol';

interface Running {
  status: ActorStatus;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export interface ActorProcessesOptions {
  /** Entries are resolved inside it (relative paths only, no '..'); children run there. */
  readonly root: string;
  /** Every output line of every actor. */
  readonly onLine?: (job: string, actor: string, line: string) => void;
  /** Told when an actor exits. */
  readonly onExit?: (status: ActorStatus) => void;
  /** Extra environment for every child (e.g. NATS_URL). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Checks an entry path: relative to the root, inside it. */
export function resolveEntry(root: string, entry: string): string {
  const n = normalize(entry);
  if (isAbsolute(entry) || n.startsWith('..') || n.split(/[\\/]/).includes('..')) {
    throw new NodeAgentError('BAD_ENTRY', `entry '${entry}' must be a path relative to the agent's root (${root}), inside it`);
  }
  return resolve(root, n);
}

export class ActorProcesses {
  readonly #actors = new Map<string, Running>();
  readonly #opts: ActorProcessesOptions;

  constructor(opts: ActorProcessesOptions) {
    this.#opts = opts;
  }

  /** Starts an actor; the same request for a running actor returns its status (idempotent). */
  start(req: StartActorRequest): ActorStatus {
    const prev = this.#actors.get(req.actor);
    if (prev !== undefined && prev.status.running) {
      if (prev.status.job === req.job && prev.status.entry === req.entry) return prev.status;
      throw new NodeAgentError('ACTOR_EXISTS', `actor ${req.actor} is already running here (job ${prev.status.job}, ${prev.status.entry}); stop it first or pick another name`);
    }
    const file = resolveEntry(this.#opts.root, req.entry);
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...req.args], {
      cwd: this.#opts.root,
      env: { ...process.env, ...this.#opts.env, ...req.env, FORCE_COLOR: '0', ACTORFLOW_ACTOR: req.actor, ACTORFLOW_SUPERVISED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin?.on('error', () => undefined);
    const onLine = (line: string): void => this.#opts.onLine?.(req.job, req.actor, line);
    for (const stream of [child.stdout, child.stderr]) if (stream !== null) createInterface({ input: stream }).on('line', onLine);
    const running: Running = {
      status: { job: req.job, actor: req.actor, entry: req.entry, ...(child.pid !== undefined ? { pid: child.pid } : {}), running: true, code: null, signal: null, startedAt: Date.now() },
      child,
      exited: new Promise<void>((resolveExit) => {
        const done = (code: number | null, signal: string | null): void => {
          if (!running.status.running) return;
          running.status = { ...running.status, running: false, code, signal, endedAt: Date.now() };
          this.#opts.onExit?.(running.status);
          resolveExit();
        };
        child.on('error', (err) => {
          onLine(`failed to start: ${err.message}`);
          done(-1, null);
        });
        child.on('exit', (code, signal) => done(code, signal));
      }),
    };
    this.#actors.set(req.actor, running);
    return running.status;
  }

  /** Stops matching actors (SIGTERM, SIGKILL after `graceMs`); resolves with their final status. */
  async stop(job: string, actor: string | undefined, why: string, graceMs = 5000): Promise<ActorStatus[]> {
    const targets = [...this.#actors.values()].filter((a) => a.status.job === job && (actor === undefined || a.status.actor === actor));
    if (actor !== undefined && targets.length === 0) throw new NodeAgentError('NO_SUCH_ACTOR', `no actor ${actor} of job ${job} on this node`);
    await Promise.all(
      targets.map(async (a) => {
        if (!a.status.running) return;
        a.status = { ...a.status, stoppedBy: why };
        a.child.kill('SIGTERM');
        const timer = setTimeout(() => a.child.kill('SIGKILL'), graceMs);
        await a.exited;
        clearTimeout(timer);
      }),
    );
    return targets.map((a) => a.status);
  }

  list(job?: string): ActorStatus[] {
    return [...this.#actors.values()].map((a) => a.status).filter((s) => job === undefined || s.job === job);
  }

  /** Jobs with actors running now. */
  runningJobs(): Set<string> {
    return new Set(
      this.list()
        .filter((s) => s.running)
        .map((s) => s.job),
    );
  }

  running(): number {
    return this.list().filter((s) => s.running).length;
  }

  async stopAll(why: string, graceMs = 5000): Promise<void> {
    await Promise.all([...this.runningJobs()].map((job) => this.stop(job, undefined, why, graceMs)));
  }
}
