// Command-line flags of `npx nx run monitor`.
import { parseArgs } from 'node:util';
import { FlagError, busFlagOptions, busFlagsHelp, intFlag } from '@actorflow/bus';
import { validateToken } from '@actorflow/protocol';
import { DEFAULT_MAX_POINTS } from './series.ts';
import { DEFAULT_PORT } from './server.ts';

export const usage = `Usage: npx nx run monitor -- [options]
Watches train.loss and train.eval: live loss curves per rank and the eval metrics, in the terminal
and on a local web page.
  --job ID          watch one job (default: every job)
  --server URL      the NATS server to watch (same as --nats-url; the job launcher prints it)
  --tail            print the raw train.loss / train.eval messages as JSON lines, one per message
                    (the \`nats sub train.loss\` replacement; no terminal view, no web page)
  --port N          web page port (default ${DEFAULT_PORT}; 0 = a free port); the URL is printed
  --host HOST       address to serve on (default 127.0.0.1; 0.0.0.0 for other machines)
  --no-web          no web page, terminal only
  --no-tty          one compact line per second instead of the live screen (the default when
                    stdout is not a terminal)
  --no-color        no ANSI colours (also when NO_COLOR is set)
  --max-points N    points kept per curve before downsampling (default ${DEFAULT_MAX_POINTS})
  --help            this text
${busFlagsHelp}`;

export interface MonitorFlags {
  readonly job?: string;
  readonly port: number;
  readonly host: string;
  readonly web: boolean;
  readonly tty: boolean;
  readonly color: boolean;
  readonly maxPoints: number;
  /** Raw JSON lines instead of the views. */
  readonly tail: boolean;
  /** The NATS flags, for connectActor. */
  readonly bus: Readonly<Record<string, string | boolean | undefined>>;
}

export function parseMonitorFlags(argv: readonly string[], o: { readonly isTTY: boolean; readonly env?: Readonly<Record<string, string | undefined>> }): MonitorFlags | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        job: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'no-web': { type: 'boolean' },
        'no-tty': { type: 'boolean' },
        'no-color': { type: 'boolean' },
        'max-points': { type: 'string' },
        tail: { type: 'boolean' },
        server: { type: 'string' },
        help: { type: 'boolean' },
        ...busFlagOptions,
      },
      allowPositionals: false,
    }));
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  if (values.help === true) return 'help';
  let job: string | undefined;
  if (values.job !== undefined) {
    try {
      job = validateToken(values.job, 'job id');
    } catch (err) {
      throw new FlagError(`--job: ${(err as Error).message}`);
    }
  }
  const port = intFlag('port', values.port, DEFAULT_PORT);
  if (port > 65535) throw new FlagError(`--port must be at most 65535, got ${port}`);
  const host = values.host ?? '127.0.0.1';
  if (host.trim() === '') throw new FlagError('--host is empty');
  const bus: Record<string, string | boolean | undefined> = {};
  for (const k of Object.keys(busFlagOptions)) bus[k] = values[k as keyof typeof busFlagOptions];
  if (values.server !== undefined) {
    if (values['nats-url'] !== undefined && values['nats-url'] !== values.server) throw new FlagError(`--server ${values.server} and --nats-url ${values['nats-url']} disagree: give one`);
    bus['nats-url'] = values.server;
  }
  return {
    ...(job !== undefined ? { job } : {}),
    port,
    host,
    web: values['no-web'] !== true && values.tail !== true,
    tty: values['no-tty'] !== true && o.isTTY,
    color: values['no-color'] !== true && (o.env?.NO_COLOR ?? '') === '',
    maxPoints: intFlag('max-points', values['max-points'], DEFAULT_MAX_POINTS, 2),
    tail: values.tail === true,
    bus,
  };
}
