// Job ids of by-hand runs: the config owner (aggregator shard 0) mints a fresh one when --job is
// absent, and the other actors started without --job find it among the live aggregators
// ($SRV.INFO). A named --job joins that job. So two by-hand runs never merge into one "local".
import { randomBytes } from 'node:crypto';
import { listActorServices, type NatsConnection } from '@actorflow/bus';

/** No single job to join: none appeared in time, or several are running. */
export class JobDiscoveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobDiscoveryError';
  }
}

/** A fresh job id, e.g. `hand-mf3k2x9a-4f1c` (time in base 36 and 16 random bits; a valid subject token). */
export function mintJobId(now: number = Date.now()): string {
  return `hand-${now.toString(36)}-${randomBytes(2).toString('hex')}`;
}

/** The jobs whose config owner (aggregator shard 0, or kNN's aggregator) answers $SRV.INFO now. */
export async function liveJobs(nc: NatsConnection, timeoutMs = 1500): Promise<string[]> {
  const owners = (await listActorServices(nc, { timeoutMs })).filter((s) => s.metadata?.role === 'aggregator' && (s.metadata.rank === 'knn' || (s.metadata.rank ?? '0/1').startsWith('0/')));
  return [...new Set(owners.map((s) => s.metadata?.job).filter((j): j is string => j !== undefined))].sort();
}

/**
 * The job to join when no --job was given: the one job whose config owner is live. Waits (up to
 * `timeoutMs`) for one to appear; several at once is a JobDiscoveryError naming them.
 */
export async function discoverJob(nc: NatsConnection, o: { readonly log: (line: string) => void; readonly timeoutMs?: number; readonly pollMs?: number }): Promise<string> {
  const deadline = Date.now() + (o.timeoutMs ?? 600_000);
  for (let attempt = 0; ; attempt++) {
    const jobs = await liveJobs(nc);
    if (jobs.length === 1) {
      o.log(`joining job ${jobs[0]} (the one live aggregator's; pass --job to choose)`);
      return jobs[0];
    }
    if (jobs.length > 1) throw new JobDiscoveryError(`several jobs are running (${jobs.join(', ')}): pass --job with the one to join`);
    if (Date.now() >= deadline) throw new JobDiscoveryError(`no aggregator appeared within ${((o.timeoutMs ?? 600_000) / 1000).toFixed(0)} s: start one (\`npx nx serve aggregator\`) or pass --job`);
    if (attempt % 20 === 0) o.log('no --job: waiting for an aggregator to join its job (start one with `npx nx serve aggregator`, or pass --job) …');
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
}
