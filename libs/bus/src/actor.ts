// What every actor process does around its work: connect from flags/env (optionally starting a
// local nats-server when none is reachable), log to stderr with its name, and shut down cleanly on
// SIGINT/SIGTERM (close the NATS connection, run the actor's cleanup, exit 0).
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from './connect.ts';
import { BusError } from './errors.ts';
import { busOptionsFrom, DEFAULT_SERVER } from './options.ts';
import { NatsServer } from './server.ts';

export interface ActorConnection {
  readonly nc: NatsConnection;
  /** Set when this process started the server (it stops with the process). */
  readonly server?: NatsServer;
}

export function actorLog(name: string): (line: string) => void {
  return (line) => process.stderr.write(`[${name}] ${line}\n`);
}

/**
 * Connects as flags and NATS_* say. With `startLocalServer`, when no server was named and nothing
 * answers on the default address, starts nats-server on 127.0.0.1:4222 so a person can run the
 * actors one by one in a few terminals.
 */
export async function connectActor(
  flags: Readonly<Record<string, string | boolean | undefined>>,
  o: { readonly name: string; readonly startLocalServer?: boolean; readonly log: (line: string) => void },
): Promise<ActorConnection> {
  const opts = busOptionsFrom(flags, process.env);
  const named = flags['nats-url'] !== undefined || (process.env.NATS_URL ?? '') !== '';
  try {
    return { nc: await connect({ ...opts, name: opts.name ?? o.name, reconnect: opts.reconnect, maxReconnectAttempts: opts.maxReconnectAttempts }) };
  } catch (err) {
    if (named || o.startLocalServer !== true) {
      throw new BusError(`${(err as Error).message}. Start a NATS server (or \`npx nx serve aggregator\`, which starts one) or point --nats-url / NATS_URL at one.`);
    }
  }
  o.log(`no NATS server answers on ${DEFAULT_SERVER}: starting a local nats-server there`);
  const server = await NatsServer.start({ port: 4222 });
  return { nc: await connect({ ...opts, servers: [server.url], name: o.name }), server };
}

/** Runs `cleanup`, closes the connection and stops a local server on SIGINT/SIGTERM, then exits 0. */
export function exitOnSignals(conn: ActorConnection, cleanup: () => void | Promise<void> = () => undefined): void {
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await cleanup();
      await conn.nc.drain().catch(() => conn.nc.close());
      await conn.server?.stop();
    } finally {
      process.exit(0);
    }
  };
  // Under a launcher, Ctrl-C reaches the whole process group: the launcher handles it (a last
  // checkpoint, then SIGTERM to every actor), so a supervised actor waits for its SIGTERM.
  if (process.env.ACTORFLOW_SUPERVISED !== '1') process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** A bad command-line flag: actors print it with their usage and exit 2. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** A numeric flag (integer when `integer`), at least `min`; absent → fallback. */
export function numberFlag(name: string, raw: string | undefined, fallback: number, o: { min?: number; integer?: boolean } = {}): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  const min = o.min ?? Number.NEGATIVE_INFINITY;
  if (!Number.isFinite(n) || n < min || (o.integer === true && !Number.isInteger(n))) {
    throw new FlagError(`--${name} must be ${o.integer === true ? 'an integer' : 'a number'}${Number.isFinite(min) ? ` >= ${min}` : ''}, got '${raw}'`);
  }
  return n;
}

export function intFlag(name: string, raw: string | undefined, fallback: number, min = 0): number {
  return numberFlag(name, raw, fallback, { min, integer: true });
}

/**
 * `--hyper KEY=VALUE` pairs typed by `defaults` (number, boolean or string): an unknown key or a
 * badly typed value is an error that names it — a FlagError unless `error` makes another kind.
 * `owner` names whose hyper-parameters they are in that message ("this model", "kNN").
 */
export function hyperFlags(
  pairs: readonly string[],
  defaults: Readonly<Record<string, number | string | boolean>>,
  o: { readonly owner: string; readonly error?: (message: string) => Error },
): Record<string, number | string | boolean> {
  const fail = (message: string): never => {
    throw o.error !== undefined ? o.error(message) : new FlagError(message);
  };
  const out: Record<string, number | string | boolean> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf('=');
    if (eq <= 0) fail(`--hyper takes KEY=VALUE, got '${kv}'`);
    const key = kv.slice(0, eq);
    const raw = kv.slice(eq + 1);
    if (!Object.hasOwn(defaults, key)) fail(`--hyper ${key}: ${o.owner} has no such hyper-parameter; it takes ${Object.keys(defaults).join(', ')}`);
    const d = defaults[key];
    if (typeof d === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) fail(`--hyper ${key} must be a number, got '${raw}'`);
      out[key] = n;
    } else if (typeof d === 'boolean') {
      if (raw !== 'true' && raw !== 'false') fail(`--hyper ${key} must be true or false, got '${raw}'`);
      out[key] = raw === 'true';
    } else out[key] = raw;
  }
  return out;
}

/**
 * Under a launcher (ACTORFLOW_SUPERVISED=1, stdin a pipe from it): exit when that pipe closes — the
 * launcher is gone, even if it was killed with -9 — so no actor outlives its job as an orphan.
 */
function exitWithSupervisor(name: string): void {
  if (process.env.ACTORFLOW_SUPERVISED !== '1') return;
  const stdin = process.stdin as NodeJS.ReadStream & { unref?: () => void };
  const gone = (): void => {
    process.stderr.write(`[${name}] the launcher is gone (its pipe closed): exiting\n`);
    process.exit(1);
  };
  stdin.on('end', gone);
  stdin.on('close', gone);
  stdin.on('error', gone);
  stdin.resume();
  stdin.unref?.(); // the pipe alone never keeps the actor alive
  process.on('SIGINT', () => undefined); // see exitOnSignals: the launcher decides
}

/**
 * The exit code of an actor whose training diverged (a DivergenceError: a non-finite loss or
 * gradient). Distinct from a crash (1) so the launcher never restarts it blindly (apps/job/src/rollback.ts).
 */
export const EXIT_DIVERGED = 3;

/** Runs an actor's main: usage errors exit 2, divergence exits EXIT_DIVERGED, other failures exit 1, all with one clear line. */
export async function runActor(name: string, usage: string, main: () => Promise<void>): Promise<void> {
  exitWithSupervisor(name);
  try {
    await main();
  } catch (err) {
    if (err instanceof FlagError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`${name}: ${(err as Error).message}\n${usage}\n`);
      process.exit(2);
    }
    process.stderr.write(`[${name}] fatal: ${(err as Error).message}\n`);
    process.exit((err as Error).name === 'DivergenceError' ? EXIT_DIVERGED : 1);
  }
}
