// A real nats-server on a free loopback port, for tests and the local launcher (modelled on the
// nats.js test helpers). The port is chosen by the server itself (`-p -1`) and read back from its
// ports file, so two harnesses never race for the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { NatsServerNotInstalledError, NatsServerStartError } from './errors.ts';

export interface NatsServerOptions {
  /** Port to listen on; default: a free port chosen by the server. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** max_payload in bytes (server default 1 MiB). */
  readonly maxPayload?: number;
  readonly jetstream?: boolean;
  /** JetStream store dir; default a fresh temp dir removed on stop. */
  readonly storeDir?: string;
  /** Extra configuration text (nats-server config syntax), e.g. an authorization block. */
  readonly config?: string;
  readonly debug?: boolean;
  /** Binary path; default $NATS_SERVER_BIN, else nats-server on PATH (or /usr/sbin). */
  readonly binary?: string;
  readonly readyTimeoutMs?: number;
  /**
   * Kill the server when this process dies, even by SIGKILL (default false): a tiny watchdog shell
   * reads a pipe from us and kills the server when the pipe closes — so a launcher killed with -9
   * leaves no nats-server behind.
   */
  readonly dieWithParent?: boolean;
}

const running = new Set<NatsServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave orphan servers behind, even when the owner crashes.
  process.on('exit', () => {
    for (const s of running) s.kill();
  });
}

function findBinary(explicit: string | undefined): string {
  const name = explicit ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  if (name.includes('/')) {
    try {
      accessSync(name, constants.X_OK);
      return name;
    } catch {
      throw new NatsServerNotInstalledError(name);
    }
  }
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* keep looking */
    }
  }
  throw new NatsServerNotInstalledError(name);
}

export class NatsServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #dir: string;
  #stopped: Promise<void> | undefined;
  /** Resolves when the server process exits, for whatever reason (crash, kill, stop). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(child: ChildProcess, port: number, host: string, dir: string) {
    this.#child = child;
    this.port = port;
    this.pid = child.pid ?? -1;
    this.url = `nats://${host}:${port}`;
    this.#dir = dir;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  /** True until the server process exited. */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const binary = findBinary(opts.binary);
    const host = opts.host ?? '127.0.0.1';
    const dir = mkdtempSync(join(tmpdir(), 'actorflow-nats-'));
    const lines = [`listen: "${host}:${opts.port ?? -1}"`, `ports_file_dir: "${dir}"`];
    if (opts.maxPayload !== undefined) lines.push(`max_payload: ${opts.maxPayload}`);
    if (opts.jetstream === true) lines.push(`jetstream { store_dir: "${opts.storeDir ?? join(dir, 'js')}" }`);
    if (opts.config !== undefined) lines.push(opts.config);
    const confFile = join(dir, 'nats.conf');
    writeFileSync(confFile, `${lines.join('\n')}\n`);
    const args = ['-c', confFile, ...(opts.debug === true ? ['-DV'] : [])];
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (b: Buffer): void => {
      output = (output + b.toString()).slice(-8000);
      if (opts.debug === true) process.stderr.write(b);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let exited: string | undefined;
    child.on('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`;
    });
    child.on('error', (err) => {
      exited = `failed to start: ${err.message}`;
    });
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    // Ready when the ports file appears (written after the listener is up).
    for (;;) {
      if (exited !== undefined) {
        rmSync(dir, { recursive: true, force: true });
        throw new NatsServerStartError(`nats-server ${exited}; its output:\n${output.trim()}`);
      }
      const portsFile = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.ports')) : undefined;
      if (portsFile !== undefined) {
        try {
          const ports = JSON.parse(readFileSync(join(dir, portsFile), 'utf8')) as { nats?: string[] };
          const first = ports.nats?.[0];
          if (first !== undefined) {
            const port = Number(new URL(first).port);
            const server = new NatsServer(child, port, host, dir);
            running.add(server);
            installExitHook();
            if (opts.dieWithParent === true && child.pid !== undefined) {
              // `read` returns when our end of the pipe closes (we exited, however); then the server goes.
              const watchdog = spawn('sh', ['-c', `read _ignored; kill -9 ${child.pid} 2>/dev/null`], { stdio: ['pipe', 'ignore', 'ignore'], detached: false });
              watchdog.unref();
              (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
              void server.exited.then(() => watchdog.kill('SIGKILL'));
            }
            return server;
          }
        } catch {
          /* partially written; retry */
        }
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        throw new NatsServerStartError(`nats-server did not become ready within ${opts.readyTimeoutMs ?? 10_000} ms; its output:\n${output.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops the server (idempotent) and removes its temp dir. */
  stop(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      running.delete(this);
      const done = (): void => {
        rmSync(this.#dir, { recursive: true, force: true });
        resolve();
      };
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
        done();
        return;
      }
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      this.#child.kill('SIGTERM');
    });
    return this.#stopped;
  }

  /** Synchronous kill, for exit hooks. */
  kill(): void {
    this.#child.kill('SIGKILL');
  }
}
