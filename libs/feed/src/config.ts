// The job configuration the aggregator owns and every other actor asks for on <job>.ctl.config
// (see docs/DESIGN.md): model and hyper-parameters, optimizer, strategy options.
import { RetryDeadlineError, requestWithRetry, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { jobConfigCodec, subjects, type JobConfig } from '@actorflow/protocol';

// The type and its validating, versioned codec live in libs/protocol (it owns every bus message).
export type { JobConfig } from '@actorflow/protocol';

export function serveJobConfig(nc: NatsConnection, config: JobConfig): Subscription {
  const bytes = jobConfigCodec.encode(config);
  return serveLarge(nc, subjects.ctl(config.job, 'config'), () => bytes, { queue: 'config' });
}

/** No aggregator answered with the job configuration in time. */
export class JobConfigUnavailableError extends Error {
  constructor(
    readonly job: string,
    readonly timeoutMs: number,
    cause: Error,
  ) {
    super(`no aggregator answered for job '${job}' within ${timeoutMs / 1000} s (${cause.message}); start one with \`npx nx serve aggregator -- --job ${job}\``, { cause });
    this.name = 'JobConfigUnavailableError';
  }
}

/**
 * Asks the aggregator for the job configuration, retrying (every 500 ms, 2 s per attempt, across
 * broker restarts: see requestWithRetry) until it answers or `timeoutMs` passes; then a
 * JobConfigUnavailableError. `onWait` is told each retry.
 */
export async function fetchJobConfig(nc: NatsConnection, job: string, timeoutMs: number, onWait: (attempt: number) => void = () => undefined): Promise<JobConfig> {
  try {
    const reply = await requestWithRetry(nc, subjects.ctl(job, 'config'), new Uint8Array(0), {
      deadlineMs: timeoutMs,
      attemptTimeoutMs: 2000,
      backoff: { initialMs: 500, maxMs: 500, factor: 1, jitter: 0 },
      onRetry: (attempt) => onWait(attempt),
    });
    // Validated and version-checked: a DecodeError or ProtocolVersionError says what is wrong.
    return jobConfigCodec.decode(reply);
  } catch (err) {
    if (err instanceof RetryDeadlineError) throw new JobConfigUnavailableError(job, timeoutMs, err.lastError);
    throw err;
  }
}
