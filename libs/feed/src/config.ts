// The job configuration the aggregator owns and every other actor asks for on <job>.ctl.config
// (see docs/DESIGN.md): model and hyper-parameters, optimizer, strategy options.
import { requestLarge, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { subjects } from '@actorflow/protocol';

export interface JobConfig {
  readonly job: string;
  /** The aggregator's default; it serves both strategies (a PS shard and the mirrored snapshot store). */
  readonly strategy: 'ps' | 'mirrored';
  /** Ranks of a mirrored job (trainers may override with --world-size). */
  readonly worldSize: number;
  readonly model: string;
  readonly hyper: Readonly<Record<string, number | string | boolean>>;
  readonly optimizer: { readonly name: 'sgd' | 'adagrad' | 'adam' | 'rmsprop'; readonly lr: number; readonly l2?: number; readonly momentum?: number; readonly dense?: boolean };
  readonly psShards: number;
  readonly staleness: string;
  readonly seed: number;
}

export function serveJobConfig(nc: NatsConnection, config: JobConfig): Subscription {
  const bytes = new TextEncoder().encode(JSON.stringify(config));
  return serveLarge(nc, subjects.ctl(config.job, 'config'), () => bytes, { queue: 'config' });
}

/** Asks the aggregator for the job configuration, retrying until it answers or `timeoutMs` passes. */
export async function fetchJobConfig(nc: NatsConnection, job: string, timeoutMs: number, onWait: (attempt: number) => void = () => undefined): Promise<JobConfig> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return JSON.parse(new TextDecoder().decode(await requestLarge(nc, subjects.ctl(job, 'config'), new Uint8Array(0), { timeoutMs: 2000 }))) as JobConfig;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`no aggregator answered for job '${job}' within ${timeoutMs / 1000} s (${(err as Error).message}); start one with \`npx nx serve aggregator -- --job ${job}\``, { cause: err });
      onWait(attempt);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
