// Starts the actors of a local job as child processes and watches them. A job fails as soon
// as any actor fails: a worker (trainer) that exits non-zero, or a service (data shard,
// aggregator, evaluator) that exits before it was asked to stop. Then everything is stopped,
// so a failed job never leaves orphans behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export type ActorRole = 'service' | 'worker';

export interface ActorSpec {
  /** Unique display name, e.g. `trainer-0`. */
  readonly name: string;
  /** Path of the entry file to run with tsx, relative to the repository root. */
  readonly entry: string;
  readonly args: readonly string[];
  readonly role: ActorRole;
}

export class ActorFailedError extends Error {
  constructor(
    readonly actor: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly lastLines: readonly string[],
  ) {
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = lastLines.length > 0 ? `\nits last output:\n  ${lastLines.join('\n  ')}` : '';
    super(`actor ${actor} ${how}${tail}`);
    this.name = 'ActorFailedError';
  }
}

interface RunningActor {
  readonly spec: ActorSpec;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly lastLines: string[];
  stopping: boolean;
}

export interface SupervisorOptions {
  /** Repository root: entries are resolved against it and children run there. */
  readonly root: string;
  /** Extra environment for every child (e.g. NATS_URL). */
  readonly env: Readonly<Record<string, string>>;
  /** Where each actor's full output goes (`<name>.log`); omitted: not kept. */
  readonly logDir?: string;
  /** Called with every output line of every actor (already prefixed); default: nothing. */
  readonly onLine?: (actor: string, line: string) => void;
}

const KEEP_LINES = 20;

export class Supervisor {
  readonly #actors = new Map<string, RunningActor>();
  readonly #opts: SupervisorOptions;
  #failure: ActorFailedError | undefined;
  readonly #failureListeners: ((err: ActorFailedError) => void)[] = [];

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    if (opts.logDir !== undefined) mkdirSync(opts.logDir, { recursive: true });
  }

  start(spec: ActorSpec): void {
    if (this.#actors.has(spec.name)) throw new Error(`actor ${spec.name} is already running`);
    const child = spawn(process.execPath, ['--import', 'tsx', spec.entry, ...spec.args], {
      cwd: this.#opts.root,
      env: { ...process.env, ...this.#opts.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log: WriteStream | undefined = this.#opts.logDir !== undefined ? createWriteStream(join(this.#opts.logDir, `${spec.name}.log`)) : undefined;
    const lastLines: string[] = [];
    const onLine = (line: string): void => {
      lastLines.push(line);
      if (lastLines.length > KEEP_LINES) lastLines.shift();
      log?.write(`${line}\n`);
      this.#opts.onLine?.(spec.name, line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream !== null) createInterface({ input: stream }).on('line', onLine);
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (err) => {
        onLine(`failed to start: ${err.message}`);
        resolve({ code: -1, signal: null });
      });
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const actor: RunningActor = { spec, child, exited, lastLines, stopping: false };
    this.#actors.set(spec.name, actor);
    void exited.then(({ code, signal }) => {
      // Give the line readers a moment to drain, so the error shows the actor's last words.
      setTimeout(() => log?.end(), 50);
      const failed = spec.role === 'worker' ? code !== 0 : !actor.stopping;
      if (failed) this.#fail(new ActorFailedError(spec.name, code, signal, lastLines));
    });
  }

  /** Resolves when every worker has exited 0; rejects with the first actor failure. */
  async waitForWorkers(): Promise<void> {
    const workers = [...this.#actors.values()].filter((a) => a.spec.role === 'worker');
    const failure = new Promise<never>((_, reject) => {
      if (this.#failure !== undefined) reject(this.#failure);
      this.#failureListeners.push(reject);
    });
    await Promise.race([Promise.all(workers.map((w) => w.exited)), failure]);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** A promise that rejects when any actor fails (for racing against other waits). */
  failed(): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (this.#failure !== undefined) reject(this.#failure);
      else this.#failureListeners.push(reject);
    });
  }

  /** Stops every actor still running: SIGTERM, then SIGKILL after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    const running = [...this.#actors.values()].filter((a) => a.child.exitCode === null && a.child.signalCode === null);
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

  /** Marks services as expected to stop (e.g. after `<job>.ctl.stop` was sent) and waits for them. */
  async awaitServicesStopped(timeoutMs: number): Promise<void> {
    const services = [...this.#actors.values()].filter((a) => a.spec.role === 'service');
    for (const s of services) s.stopping = true;
    const all = Promise.all(services.map((s) => s.exited));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([all, timeout]);
    clearTimeout(timer);
  }

  #fail(err: ActorFailedError): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    for (const listener of this.#failureListeners.splice(0)) listener(err);
  }
}
