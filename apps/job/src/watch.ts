// How to watch a launched job: the exact monitor commands, and a free port for `--monitor`'s page.
import { createServer } from 'node:net';

/** The lines the launcher prints right after NATS is up: the monitor command and its --tail form. */
export function watchCommands(natsUrl: string, job: string): string[] {
  const base = `npx nx run monitor -- --server ${natsUrl} --job ${job}`;
  return [`watch it: ${base}`, `raw JSON lines: ${base} --tail`];
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}
