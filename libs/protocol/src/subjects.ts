// Subject builders. Job-scoped subjects start with the job id so one job's traffic can be
// watched (`nats sub 'myjob.>'`) or permissioned as a unit.
import { ProtocolError } from './errors.ts';

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Checks one subject token (a job id, a group name): no dots, spaces or wildcards. */
export function validateToken(value: string | number, what = 'subject token'): string {
  const s = String(value);
  if (!TOKEN.test(s)) {
    throw new ProtocolError(`${what} '${s}' is not usable in a NATS subject: use letters, digits, '-' or '_' (no dots, spaces, '*' or '>')`);
  }
  return s;
}

// checkpoint: mirrored rank 0 sends its TrainerState here; snapshot: the latest as a Snapshot (evaluator,
// launcher); state: the latest TrainerState itself (restarted ranks resume from it; the launcher saves it).
export type ControlKind = 'join' | 'heartbeat' | 'stop' | 'snapshot' | 'config' | 'checkpoint' | 'state';

export const subjects = {
  /** Contract: every trainer's loss reports, all jobs. */
  loss: 'train.loss',
  /** Evaluator results, all jobs. */
  eval: 'train.eval',
  dataInfo: (job: string): string => `${validateToken(job, 'job id')}.data.info`,
  dataNext: (job: string, shard: number): string => `${validateToken(job, 'job id')}.data.${validateToken(shard)}.next`,
  dataTest: (job: string): string => `${validateToken(job, 'job id')}.data.test`,
  psPull: (job: string, shard: number): string => `${validateToken(job, 'job id')}.ps.${validateToken(shard)}.pull`,
  /** Rank `rank`'s pushes to a shard: the sender's rank ends the subject, so per-rank NATS users authenticate it. */
  psPush: (job: string, shard: number, rank: number): string => `${validateToken(job, 'job id')}.ps.${validateToken(shard)}.push.${validateToken(rank)}`,
  /** A shard's counters (JSON ShardStats). */
  psStats: (job: string, shard: number): string => `${validateToken(job, 'job id')}.ps.${validateToken(shard)}.stats`,
  /** Every rank's pushes to a shard (what the shard serves). */
  psPushAny: (job: string, shard: number): string => `${validateToken(job, 'job id')}.ps.${validateToken(shard)}.push.*`,
  psSnapshot: (job: string, shard: number): string => `${validateToken(job, 'job id')}.ps.${validateToken(shard)}.snapshot`,
  /** A parameter shard's full state for a checkpoint: parameters, optimizer state, version. */
  psState: (job: string, shard: number): string => `${validateToken(job, 'job id')}.ps.${validateToken(shard)}.state`,
  /** A data shard's cursor state for a checkpoint (shared-mode epoch and position per kind). */
  dataState: (job: string, shard: number): string => `${validateToken(job, 'job id')}.data.${validateToken(shard)}.state`,
  /** Liveness: every actor publishes a Heartbeat here every few seconds (`<job>.hb.<actor name>`). */
  heartbeat: (job: string, actor: string): string => `${validateToken(job, 'job id')}.hb.${validateToken(actor, 'actor name')}`,
  ctl: (job: string, kind: ControlKind): string => `${validateToken(job, 'job id')}.ctl.${kind}`,
  evalNow: (job: string): string => `${validateToken(job, 'job id')}.eval.now`,
  /** Collective traffic of a process group: `<job>.coll.<group>.<tokens…>`. */
  collective: (job: string, group: string, ...tokens: (string | number)[]): string =>
    [validateToken(job, 'job id'), 'coll', validateToken(group, 'group name'), ...tokens.map((t) => validateToken(t))].join('.'),
} as const;
