// The monitor's web server (plain node:http): `/` the page, `/state` a JSON snapshot, `/events` a
// server-sent event stream whose first event (`snapshot`) is that same snapshot and whose later
// events (`update`) carry the reports accepted since the previous one, batched a few times a second,
// with the jobs whose live/stopped status changed and the monitor's NATS connection state when it changed.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EvalReport, LossReport } from '@actorflow/protocol';
import { WebServerError } from './errors.ts';
import { pageHtml } from './page.ts';
import type { ConnectionState, JobStatusView, MonitorState } from './state.ts';

export const DEFAULT_PORT = 8686;
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export interface WebServerOptions {
  readonly state: MonitorState;
  /** Default 8686; 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1 (this machine only). */
  readonly host?: string;
  /** How often queued reports go out to open pages (default 200 ms). */
  readonly flushMs?: number;
  /** Comment lines that keep idle streams open through proxies (default 15 s). */
  readonly keepAliveMs?: number;
}

/** What an `update` event carries. */
export interface UpdateEvent {
  /** Reports accepted so far (the state's seq after this batch). */
  readonly seq: number;
  readonly loss: LossReport[];
  readonly eval: EvalReport[];
  /** Jobs whose status changed since the previous update (latest per job). */
  readonly status?: JobStatusView[];
  /** The monitor's NATS connection, when it changed. */
  readonly connection?: ConnectionState;
}

export interface WebServer {
  readonly url: string;
  readonly port: number;
  /** Open event streams. */
  readonly clients: number;
  close(): Promise<void>;
}

function urlFor(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}/`;
}

export async function startWebServer(o: WebServerOptions): Promise<WebServer> {
  const { state } = o;
  const host = o.host ?? '127.0.0.1';
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new WebServerError(`port must be an integer from 0 to 65535, got ${port}`);
  const html = pageHtml(state.filter === undefined ? 'actorflow monitor' : `actorflow monitor · ${state.filter}`);
  const clients = new Set<ServerResponse>();
  let loss: LossReport[] = [];
  let evals: EvalReport[] = [];
  let statuses = new Map<string, JobStatusView>();
  let connection: ConnectionState | undefined;
  let flushTimer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    flushTimer = undefined;
    if (loss.length === 0 && evals.length === 0 && statuses.size === 0 && connection === undefined) return;
    const update: UpdateEvent = {
      seq: state.seq,
      loss,
      eval: evals,
      ...(statuses.size > 0 ? { status: [...statuses.values()] } : {}),
      ...(connection !== undefined ? { connection } : {}),
    };
    loss = [];
    evals = [];
    statuses = new Map();
    connection = undefined;
    const frame = `event: update\ndata: ${JSON.stringify(update)}\n\n`;
    for (const c of clients) {
      // A page that stopped reading is dropped rather than buffered without bound; its
      // EventSource reconnects and starts again from a snapshot.
      if (c.writableLength > MAX_BUFFERED_BYTES) c.destroy();
      else c.write(frame);
    }
  };
  const unlisten = state.listen((e) => {
    if (clients.size === 0) return; // a page that connects later starts from the snapshot
    if (e.kind === 'loss') loss.push(e.report);
    else if (e.kind === 'eval') evals.push(e.report);
    else if (e.kind === 'status') statuses.set(e.status.job, e.status);
    else connection = e.connection;
    flushTimer ??= setTimeout(flush, o.flushMs ?? 200);
  });
  const keepAlive = setInterval(() => {
    for (const c of clients) c.write(': keep-alive\n\n');
  }, o.keepAliveMs ?? 15_000);
  keepAlive.unref();

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : html);
    } else if (path === '/state') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : JSON.stringify(state.snapshot()));
    } else if (path === '/events') {
      // Anything queued predates this snapshot: send it to the pages already open first.
      flush();
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(state.snapshot())}\n\n`);
      clients.add(res);
      res.on('close', () => clients.delete(res));
    } else if (path === '/favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${path} (try /, /state or /events)\n`);
    }
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${host}:${port}`;
      const advice = 'pass --port N for another port, or --port 0 for a free one';
      if (err.code === 'EADDRINUSE') reject(new WebServerError(`cannot serve the web page: ${where} is already in use; ${advice}`, { cause: err }));
      else if (err.code === 'EACCES') reject(new WebServerError(`cannot serve the web page: no permission to listen on ${where}; ${advice}`, { cause: err }));
      else reject(new WebServerError(`cannot serve the web page on ${where}: ${err.message}`, { cause: err }));
    });
    server.listen(port, host, () => resolve());
  }).catch((err: unknown) => {
    unlisten();
    clearInterval(keepAlive);
    throw err;
  });
  const actualPort = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    url: urlFor(host, actualPort),
    port: actualPort,
    get clients() {
      return clients.size;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        unlisten();
        clearInterval(keepAlive);
        if (flushTimer !== undefined) clearTimeout(flushTimer);
        for (const c of clients) c.end();
        clients.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
