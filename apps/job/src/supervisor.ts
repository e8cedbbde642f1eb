// Starts the actors of a local job as child processes and watches them, like torchrun's agent:
// each child's exit goes to a restart policy (the launcher's: restart it, re-form its group, or
// fail the job), and a child that stops sending heartbeats for `heartbeatTimeoutMs` is declared
// dead (SIGKILL) and handled like a crash — a SIGSTOPped or wedged actor never hangs a job. When
// the job ends or fails everything is stopped; children also exit by themselves when the launcher
// dies (their stdin is a pipe from us: see exitWithSupervisor in libs/bus), so nothing is orphaned.
// Where a child runs is a Spawner's business: a local process (localSpawner, the default) or an
// actor a node agent starts on another machine (src/remote.ts); the restart logic is the same.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export type ActorRole = 'service' | 'worker';

export interface ActorSpec {
  /** Unique display name, e.g. `trainer-0`; also its heartbeat subject token. */
  readonly name: string;
  /** Path of the entry file to run with tsx, relative to the repository root. */
  readonly entry: string;
  readonly args: readonly string[];
  /** service: runs until stopped (any exit is a failure); worker: done when it exits 0. */
  readonly role: ActorRole;
  /** Extra environment of this actor only (e.g. its role's NATS credentials: never on a command line). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A started actor, wherever it runs. */
export interface SpawnedActor {
  /** Its process id where it runs (a remote one may be known only a moment after the start). */
  readonly pid: number | undefined;
  /** Where it runs: `local`, or the node agent's name. */
  readonly where: string;
  /** Resolves once, when it has ended (a remote actor whose machine is lost: signal SIGKILL). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  kill(signal: NodeJS.Signals): void;
}

export interface SpawnContext {
  readonly root: string;
  /** The supervisor's environment for the child merged with the actor's own (not process.env). */
  readonly env: Readonly<Record<string, string>>;
  /** Every output line of the actor (stdout and stderr). */
  readonly onLine: (line: string) => void;
}

/** Starts actor processes: locally (localSpawner) or through node agents (src/remote.ts). */
export interface Spawner {
  spawn(spec: ActorSpec, ctx: SpawnContext): SpawnedActor;
}

/** A child process of the launcher: `node --import tsx <entry> …`, stdin a pipe it watches. */
export const localSpawner: Spawner = {
  spawn(spec, ctx) {
    const child = spawn(process.execPath, ['--import', 'tsx', spec.entry, ...spec.args], {
      cwd: ctx.root,
      env: { ...process.env, ...ctx.env, FORCE_COLOR: '0', ACTORFLOW_ACTOR: spec.name, ACTORFLOW_SUPERVISED: '1' },
      // stdin: a pipe the child watches; it closes when we die, however we die.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin?.on('error', () => undefined);
    for (const stream of [child.stdout, child.stderr]) {
      if (stream !== null) createInterface({ input: stream }).on('line', ctx.onLine);
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (err) => {
        ctx.onLine(`failed to start: ${err.message}`);
        resolve({ code: -1, signal: null });
      });
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    return {
      pid: child.pid,
      where: 'local',
      exited,
      hasExited: () => child.exitCode !== null || child.signalCode !== null,
      kill: (signal) => {
        child.kill(signal);
      },
    };
  },
};

export class ActorFailedError extends Error {
  constructor(
    readonly actor: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly lastLines: readonly string[],
    readonly why?: string,
  ) {
    const how = why ?? (signal !== null ? `was killed by ${signal}` : `exited with code ${code}`);
    const tail = lastLines.length > 0 ? `\nits last output:\n  ${lastLines.join('\n  ')}` : '';
    super(`actor ${actor} ${how}${tail}`);
    this.name = 'ActorFailedError';
  }
}

/** How an actor ended, as the restart policy sees it. */
export interface ActorExit {
  readonly name: string;
  readonly spec: ActorSpec;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the supervisor killed it for going silent. */
  readonly stalled: boolean;
  /** Restarts of this actor so far (before this exit). */
  readonly restarts: number;
  readonly lastLines: readonly string[];
}

/** What to do about an actor that ended unexpectedly. */
export type ExitDecision =
  | { readonly action: 'fail'; readonly why?: string }
  /** Start it again (with new arguments, e.g. --restore-state of the last checkpoint). */
  | { readonly action: 'restart'; readonly args?: readonly string[] }
  /** Nothing: the policy handled it itself (e.g. re-formed a group) or the actor is not needed. */
  | { readonly action: 'ignore' };

interface RunningActor {
  spec: ActorSpec;
  readonly child: SpawnedActor;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly lastLines: string[];
  stopping: boolean;
  stalled: boolean;
  restarts: number;
  lastBeat: number | undefined;
  /** Exited 0 as a worker (done), or stopped on purpose. */
  finished: boolean;
}

export interface SupervisorOptions {
  /** Repository root: entries are resolved against it and children run there. */
  readonly root: string;
  /** Extra environment for every child (e.g. NATS_URL). */
  readonly env: Readonly<Record<string, string>>;
  /** Where each actor's full output goes (`<name>.log`, appended across restarts); omitted: not kept. */
  readonly logDir?: string;
  /** Called with every output line of every actor (already prefixed); default: nothing. */
  readonly onLine?: (actor: string, line: string) => void;
  /** Decides about unexpected exits; default: fail the job. */
  readonly onExit?: (exit: ActorExit) => ExitDecision | Promise<ExitDecision>;
  /** An actor silent this long after its first heartbeat is killed (default 30 s; 0 = never). */
  readonly heartbeatTimeoutMs?: number;
  /** Supervisor notes (restarts, stalls) go here. */
  readonly log?: (line: string) => void;
  /** Told about every (re)start, with the child's pid. */
  readonly onStart?: (name: string, pid: number | undefined, restarts: number) => void;
  /** Where actors run (default: local child processes). */
  readonly spawner?: Spawner;
}

const KEEP_LINES = 20;

export class Supervisor {
  readonly #actors = new Map<string, RunningActor>();
  readonly #opts: SupervisorOptions;
  #failure: ActorFailedError | undefined;
  readonly #failureListeners: ((err: ActorFailedError) => void)[] = [];
  readonly #doneListeners: (() => void)[] = [];
  readonly #watchdog: NodeJS.Timeout | undefined;
  #livenessPausedUntil = 0;
  #closing = false;

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    if (opts.logDir !== undefined) mkdirSync(opts.logDir, { recursive: true });
    const timeout = opts.heartbeatTimeoutMs ?? 30_000;
    if (timeout > 0) {
      this.#watchdog = setInterval(() => this.#checkLiveness(timeout), Math.min(1000, Math.max(100, timeout / 10)));
      this.#watchdog.unref();
    }
  }

  start(spec: ActorSpec): void {
    const prev = this.#actors.get(spec.name);
    if (prev !== undefined && !this.#hasExited(prev)) throw new Error(`actor ${spec.name} is already running`);
    this.#spawn(spec, prev?.restarts ?? 0);
  }

  #spawn(spec: ActorSpec, restarts: number): void {
    const log: WriteStream | undefined = this.#opts.logDir !== undefined ? createWriteStream(join(this.#opts.logDir, `${spec.name}.log`), { flags: 'a' }) : undefined;
    if (restarts > 0) log?.write(`---- restart ${restarts} ----\n`);
    const lastLines: string[] = [];
    const onLine = (line: string): void => {
      lastLines.push(line);
      if (lastLines.length > KEEP_LINES) lastLines.shift();
      log?.write(`${line}\n`);
      this.#opts.onLine?.(spec.name, line);
    };
    const child = (this.#opts.spawner ?? localSpawner).spawn(spec, { root: this.#opts.root, env: { ...this.#opts.env, ...spec.env }, onLine });
    const exited = child.exited;
    const actor: RunningActor = { spec, child, exited, lastLines, stopping: false, stalled: false, restarts, lastBeat: undefined, finished: false };
    this.#actors.set(spec.name, actor);
    this.#opts.onStart?.(spec.name, child.pid, restarts);
    void exited.then(async ({ code, signal }) => {
      // Give the line readers a moment to drain, so errors show the actor's last words.
      await new Promise((r) => setTimeout(r, 50));
      log?.end();
      if (this.#actors.get(spec.name) !== actor) return; // replaced meanwhile
      if (actor.stopping || this.#closing) {
        actor.finished = true;
        this.#checkDone();
        return;
      }
      if (spec.role === 'worker' && code === 0) {
        actor.finished = true;
        this.#checkDone();
        return;
      }
      const exit: ActorExit = { name: spec.name, spec: actor.spec, code, signal, stalled: actor.stalled, restarts: actor.restarts, lastLines: [...lastLines] };
      let decision: ExitDecision;
      try {
        decision = this.#opts.onExit !== undefined ? await this.#opts.onExit(exit) : { action: 'fail' };
      } catch (err) {
        decision = { action: 'fail', why: `failed and its restart failed: ${(err as Error).message}` };
      }
      if (this.#closing || this.#actors.get(spec.name) !== actor) return;
      if (decision.action === 'restart') {
        this.#spawn({ ...actor.spec, args: decision.args ?? actor.spec.args }, actor.restarts + 1);
      } else if (decision.action === 'ignore') {
        actor.finished = true;
        this.#checkDone();
      } else {
        this.#fail(new ActorFailedError(spec.name, code, signal, lastLines, decision.why ?? (actor.stalled ? 'stopped sending heartbeats and was killed' : undefined)));
      }
    });
  }

  #hasExited(a: RunningActor): boolean {
    return a.child.hasExited();
  }

  /** A heartbeat from `name` (the launcher subscribes to `<job>.hb.*`). */
  seen(name: string): void {
    const a = this.#actors.get(name);
    if (a !== undefined) a.lastBeat = Date.now();
  }

  /**
   * No stall verdicts for the next `ms` (e.g. while the broker is away nobody's heartbeats arrive;
   * after it is back, a grace period); every actor's silence is counted from then. Replaces an
   * earlier pause.
   */
  pauseLiveness(ms: number): void {
    this.#livenessPausedUntil = Date.now() + ms;
  }

  #checkLiveness(timeoutMs: number): void {
    const now = Date.now();
    if (now < this.#livenessPausedUntil) {
      for (const a of this.#actors.values()) if (a.lastBeat !== undefined) a.lastBeat = Math.max(a.lastBeat, this.#livenessPausedUntil);
      return;
    }
    for (const a of this.#actors.values()) {
      if (a.lastBeat === undefined || a.stopping || a.stalled || this.#hasExited(a)) continue;
      const silent = now - a.lastBeat;
      if (silent > timeoutMs) {
        a.stalled = true;
        this.#opts.log?.(`${a.spec.name} (pid ${a.child.pid}) sent no heartbeat for ${(silent / 1000).toFixed(1)} s (stopped or stuck): killing it`);
        a.child.kill('SIGKILL');
      }
    }
  }

  /** Kills an actor on purpose (its exit is not a failure); resolves when it is gone. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const a = this.#actors.get(name);
    if (a === undefined || this.#hasExited(a)) return;
    a.stopping = true;
    a.child.kill(signal);
    await a.exited;
  }

  /** Forgets a finished or killed actor (e.g. a rank removed when a group shrinks). */
  retire(name: string): void {
    const a = this.#actors.get(name);
    if (a !== undefined && !this.#hasExited(a)) throw new Error(`actor ${name} is still running`);
    this.#actors.delete(name);
    this.#checkDone();
  }

  /** Restarts of `name` so far. */
  restarts(name: string): number {
    return this.#actors.get(name)?.restarts ?? 0;
  }

  /** Every actor with its pid and state (for out/<job>/actors.json and tests). */
  list(): { name: string; pid: number | undefined; role: ActorRole; restarts: number; running: boolean; node?: string }[] {
    return [...this.#actors.values()].map((a) => ({
      name: a.spec.name,
      pid: a.child.pid,
      role: a.spec.role,
      restarts: a.restarts,
      running: !this.#hasExited(a),
      ...(a.child.where !== 'local' ? { node: a.child.where } : {}),
    }));
  }

  /** Resolves when every worker has exited 0 (restarted workers included); rejects with the first failure. */
  async waitForWorkers(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      if (this.#failure !== undefined) {
        reject(this.#failure);
        return;
      }
      this.#failureListeners.push(reject);
      this.#doneListeners.push(resolve);
      this.#checkDone();
    });
  }

  #checkDone(): void {
    const workers = [...this.#actors.values()].filter((a) => a.spec.role === 'worker');
    if (workers.length === 0 || !workers.every((w) => w.finished)) return;
    for (const l of this.#doneListeners.splice(0)) l();
  }

  /** A promise that rejects when the job fails (for racing against other waits). */
  failed(): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (this.#failure !== undefined) reject(this.#failure);
      else this.#failureListeners.push(reject);
    });
  }

  /** Fails the job from outside (e.g. a fault the launcher cannot recover from). */
  fail(err: ActorFailedError): void {
    this.#fail(err);
  }

  /** Stops every actor still running: SIGTERM, then SIGKILL after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    this.#closing = true;
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    const running = [...this.#actors.values()].filter((a) => !this.#hasExited(a));
    for (const a of running) {
      a.stopping = true;
      a.child.kill('SIGTERM');
    }
    await Promise.all(
      running.map(async (a) => {
        const timer = setTimeout(() => a.child.kill('SIGKILL'), graceMs);
        await a.exited;
        clearTimeout(timer);
      }),
    );
  }

  #fail(err: ActorFailedError): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    for (const listener of this.#failureListeners.splice(0)) listener(err);
  }
}
