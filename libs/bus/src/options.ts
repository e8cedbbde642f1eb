// One way to connect: flags win over NATS_* environment variables, which win over defaults.
// Reconnect is on by default (unlimited attempts) so actors ride out a server restart.
import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type Authenticator, type ConnectionOptions } from '@nats-io/nats-core';
import { BusError } from './errors.ts';

export interface BusOptions {
  readonly servers: readonly string[];
  readonly name?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  readonly nkeySeedFile?: string;
  readonly credsFile?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  readonly reconnect: boolean;
  readonly maxReconnectAttempts: number;
  readonly timeoutMs?: number;
  /** Subject prefix of this connection's reply inboxes (default `_INBOX`); per-role users get their own (docs/SECURITY.md). */
  readonly inboxPrefix?: string;
}

export const DEFAULT_SERVER = 'nats://127.0.0.1:4222';

export const busFlagsHelp = `NATS connection (flags win over environment variables):
  --nats-url URL[,URL…]   servers (env NATS_URL; default ${DEFAULT_SERVER})
  --nats-name NAME        connection name shown by the server (env NATS_NAME)
  --nats-user USER        user (env NATS_USER), with --nats-pass PASS (env NATS_PASSWORD)
  --nats-token TOKEN      token (env NATS_TOKEN)
  --nats-nkey FILE        nkey seed file (env NATS_NKEY)
  --nats-creds FILE       credentials file (env NATS_CREDS)
  --nats-tls-ca FILE      CA certificate (env NATS_CA); --nats-tls-cert FILE / --nats-tls-key FILE (env NATS_CERT, NATS_KEY)
  --nats-inbox-prefix P   reply inboxes under P.> instead of _INBOX.> (env NATS_INBOX_PREFIX; per-role users need their own)
  --nats-no-reconnect     fail instead of reconnecting when the server goes away`;

/** The flag names above, for parseArgs option tables in apps. */
export const busFlagOptions = {
  'nats-url': { type: 'string' },
  'nats-name': { type: 'string' },
  'nats-user': { type: 'string' },
  'nats-pass': { type: 'string' },
  'nats-token': { type: 'string' },
  'nats-nkey': { type: 'string' },
  'nats-creds': { type: 'string' },
  'nats-tls-ca': { type: 'string' },
  'nats-tls-cert': { type: 'string' },
  'nats-tls-key': { type: 'string' },
  'nats-inbox-prefix': { type: 'string' },
  'nats-no-reconnect': { type: 'boolean' },
} as const;

type Flags = Readonly<Record<string, string | boolean | undefined>>;
type Env = Readonly<Record<string, string | undefined>>;

function pick(flags: Flags, env: Env, flag: string, envName: string): string | undefined {
  const f = flags[flag];
  if (f !== undefined && typeof f !== 'string') throw new BusError(`--${flag} needs a value`);
  if (f !== undefined && f.trim() === '') throw new BusError(`--${flag} is empty`);
  const e = env[envName];
  return f ?? (e !== undefined && e.trim() !== '' ? e : undefined);
}

function parseServers(raw: string, source: string): string[] {
  const servers = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of servers) {
    const withScheme = /^[a-z]+:\/\//.test(s) ? s : `nats://${s}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new BusError(`${source}: '${s}' is not a server URL (expected e.g. nats://host:4222)`);
    }
    if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol)) {
      throw new BusError(`${source}: '${s}' has scheme ${url.protocol}; use nats:// or tls://`);
    }
  }
  if (servers.length === 0) throw new BusError(`${source} names no server`);
  return servers;
}

export function busOptionsFrom(flags: Flags = {}, env: Env = process.env): BusOptions {
  const urlFlag = pick(flags, {}, 'nats-url', '');
  const urlEnv = env.NATS_URL;
  const servers = urlFlag !== undefined ? parseServers(urlFlag, '--nats-url') : urlEnv !== undefined && urlEnv.trim() !== '' ? parseServers(urlEnv, 'NATS_URL') : [DEFAULT_SERVER];
  const user = pick(flags, env, 'nats-user', 'NATS_USER');
  const pass = pick(flags, env, 'nats-pass', 'NATS_PASSWORD');
  if ((user === undefined) !== (pass === undefined)) {
    throw new BusError('user and password go together: give both --nats-user and --nats-pass (or NATS_USER and NATS_PASSWORD)');
  }
  const token = pick(flags, env, 'nats-token', 'NATS_TOKEN');
  const nkeySeedFile = pick(flags, env, 'nats-nkey', 'NATS_NKEY');
  const credsFile = pick(flags, env, 'nats-creds', 'NATS_CREDS');
  const methods = [user !== undefined, token !== undefined, nkeySeedFile !== undefined, credsFile !== undefined].filter(Boolean).length;
  if (methods > 1) throw new BusError('choose one authentication method: user/password, token, nkey or creds');
  const caFile = pick(flags, env, 'nats-tls-ca', 'NATS_CA');
  const certFile = pick(flags, env, 'nats-tls-cert', 'NATS_CERT');
  const keyFile = pick(flags, env, 'nats-tls-key', 'NATS_KEY');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new BusError('a TLS client certificate needs both --nats-tls-cert and --nats-tls-key (or NATS_CERT and NATS_KEY)');
  }
  const name = pick(flags, env, 'nats-name', 'NATS_NAME');
  const inboxPrefix = pick(flags, env, 'nats-inbox-prefix', 'NATS_INBOX_PREFIX');
  if (inboxPrefix !== undefined && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(inboxPrefix))
    throw new BusError(`inbox prefix '${inboxPrefix}' is not a NATS subject without wildcards (e.g. _INBOX_job-trainer)`);
  const tls = caFile !== undefined || certFile !== undefined ? { caFile, certFile, keyFile } : undefined;
  return {
    servers,
    reconnect: flags['nats-no-reconnect'] !== true,
    maxReconnectAttempts: flags['nats-no-reconnect'] === true ? 0 : -1,
    ...(name !== undefined ? { name } : {}),
    ...(user !== undefined ? { user, pass } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(nkeySeedFile !== undefined ? { nkeySeedFile } : {}),
    ...(credsFile !== undefined ? { credsFile } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(inboxPrefix !== undefined ? { inboxPrefix } : {}),
  };
}

function readSecret(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new BusError(`cannot read the ${what} file ${path}: ${(err as Error).message}`);
  }
}

/** Translates our options into nats.js ConnectionOptions (reading key files now, so errors name them). */
export function toConnectionOptions(o: BusOptions): ConnectionOptions {
  const authenticator: Authenticator[] = [];
  if (o.nkeySeedFile !== undefined) {
    const seed = new TextDecoder().decode(readSecret(o.nkeySeedFile, 'nkey seed')).trim();
    authenticator.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  if (o.credsFile !== undefined) authenticator.push(credsAuthenticator(readSecret(o.credsFile, 'credentials')));
  return {
    servers: [...o.servers],
    reconnect: o.reconnect,
    maxReconnectAttempts: o.maxReconnectAttempts,
    reconnectTimeWait: 500,
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.user !== undefined ? { user: o.user, pass: o.pass } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(authenticator.length > 0 ? { authenticator } : {}),
    ...(o.tls !== undefined ? { tls: { ...o.tls } } : {}),
    ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
    ...(o.inboxPrefix !== undefined ? { inboxPrefix: o.inboxPrefix } : {}),
  };
}
