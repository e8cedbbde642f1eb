// What the launcher does when training diverges (issue 13). A trainer whose loss or gradient
// stops being finite throws a DivergenceError before sending anything and exits EXIT_DIVERGED
// (libs/bus runActor). That is not a crash: restarting the same actor with the same learning rate
// would diverge again, so the launcher never restarts it blindly. It does what --on-divergence says:
//
// - `stop` (the default): the job fails at once with the trainer's error (step, rank, where). No
//   model is saved (the save refuses non-finite parameters anyway), no metrics.json is written.
// - `rollback`: every actor that holds or changes the model — the trainers, the aggregators (the
//   parameters and optimizer state, or the mirrored replica) and, in ps, the data shards (their
//   cursors) — is stopped and started again from the newest complete checkpoint (from the start
//   when none was taken yet) with the learning rate halved. After --max-rollbacks of them the next
//   divergence stops the job as `stop` would. Each rollback is logged and recorded in
//   metrics.json `faults.divergence`.
//
// The checkpoint restored is checked first (nonFiniteIn): every parameter and optimizer moment of
// its parts must be finite. One that is not (an update that overflowed on a shard, a replica saved
// just before the divergence) is skipped for the next older one kept; when no kept checkpoint is
// finite the job stops with an error naming them, rather than restore a broken model.
import type { JobConfig } from '@actorflow/feed';
import { EXIT_DIVERGED } from '@actorflow/bus';
import type { Checkpoint } from '@actorflow/checkpoint';
import { firstNonFiniteIndex, shardStateCodec, trainerStateCodec, type OptimizerSlotState } from '@actorflow/protocol';
import type { ActorExit, ActorSpec, ExitDecision } from './supervisor.ts';

/** The exit code of a diverged actor (EXIT_DIVERGED of @actorflow/bus). */
export { EXIT_DIVERGED };

export type DivergenceMode = 'stop' | 'rollback';

/** The plan's part: --on-divergence and --max-rollbacks. */
export interface DivergencePlan {
  readonly mode: DivergenceMode;
  readonly maxRollbacks: number;
  /** The learning rate is multiplied by this at every rollback (0.5). */
  readonly lrFactor: number;
}

export const DEFAULT_DIVERGENCE: DivergencePlan = { mode: 'stop', maxRollbacks: 3, lrFactor: 0.5 };

export const DIVERGENCE_FLAG_OPTIONS = {
  'on-divergence': { type: 'string' },
  'max-rollbacks': { type: 'string' },
} as const;

export const DIVERGENCE_USAGE = `  --on-divergence stop|rollback
                             a non-finite loss or gradient (training diverged): stop the job with the error
                             and save no model (stop, the default), or restore the newest checkpoint, halve
                             the learning rate and go on (rollback; see --max-rollbacks)
  --max-rollbacks N          rollbacks before a divergence stops the job (default 3)`;

/** Reads --on-divergence / --max-rollbacks; `error` makes the launcher's flag error. */
export function divergenceFlags(v: { readonly 'on-divergence'?: string; readonly 'max-rollbacks'?: string }, error: (message: string) => Error): { divergence: DivergencePlan } {
  const mode = v['on-divergence'] ?? DEFAULT_DIVERGENCE.mode;
  if (mode !== 'stop' && mode !== 'rollback') throw error(`--on-divergence must be stop or rollback, got '${mode}'`);
  const raw = v['max-rollbacks'];
  const n = raw === undefined ? DEFAULT_DIVERGENCE.maxRollbacks : Number(raw);
  if (!Number.isInteger(n) || n < 0) throw error(`--max-rollbacks must be a non-negative integer, got '${raw}'`);
  if (raw !== undefined && mode !== 'rollback') throw error(`--max-rollbacks is for --on-divergence rollback`);
  return { divergence: { mode, maxRollbacks: n, lrFactor: DEFAULT_DIVERGENCE.lrFactor } };
}

/** One rollback, as metrics.json `faults.divergence.rollbacks` records it. */
export interface RollbackRecord {
  /** The actor that diverged and its last error line. */
  readonly actor: string;
  readonly error: string;
  /** The checkpoint step restored (undefined: none yet, restarted from the start). */
  readonly fromStep?: number;
  readonly lrBefore: number;
  readonly lrAfter: number;
  /** Seconds since the launcher started. */
  readonly at: number;
}

/** metrics.json `faults.divergence`. */
export interface DivergenceLog {
  readonly mode: DivergenceMode;
  readonly rollbacks: readonly RollbackRecord[];
  /** The learning rate the job finished with. */
  readonly lr?: number;
}

/** What the handler needs of the launcher (closures over its actor specs and supervisor). */
export interface RollbackHooks {
  /** Kill an actor on purpose (Supervisor.kill). */
  kill(name: string): Promise<void>;
  /** Start an actor (Supervisor.start). */
  start(spec: ActorSpec): void;
  /** The actors to restart, in order, once `prepare` ran: [names to kill, specs to start]. */
  actors(): { readonly kill: readonly string[]; readonly start: () => readonly ActorSpec[] };
  /** Step of the newest complete checkpoint (what the restarted actors restore), if any. */
  latestStep(): number | undefined;
  /**
   * The complete checkpoints kept, newest first (a rollback restores the newest finite one). Without
   * it, latestStep() is restored unchecked.
   */
  checkpoints?(): Promise<readonly Checkpoint[]>;
  /** Make `cp` the checkpoint the restarted actors restore (undefined: the start). */
  use?(cp: Checkpoint | undefined): void;
  /** Before the checkpoints are listed: save what is not on disk yet (mirrored: the replica the aggregator holds). */
  flush?(): Promise<void>;
  /** After the choice: discard the checkpoints newer than the restored step (undefined: the start); the restored run counts on from it. */
  rewind?(step: number | undefined): Promise<void>;
  /** Called before the actors start again (e.g. a new mirrored generation). */
  prepare?(): void;
  log(line: string): void;
}

/** The last line of a diverged actor that says why (its DivergenceError), else its last line. */
function divergenceLine(exit: ActorExit): string {
  const lines = exit.lastLines;
  const found = [...lines].reverse().find((l) => /training diverged/.test(l));
  return (found ?? lines[lines.length - 1] ?? `exited with code ${exit.code}`).replace(/^\[[^\]]+\]\s*(fatal:\s*)?/, '');
}

function badSlot(slots: Readonly<Record<string, OptimizerSlotState>>): string | undefined {
  for (const [name, s] of Object.entries(slots)) {
    for (const [k, v] of [
      ['m', s.m],
      ['v', s.v],
    ] as const) {
      const i = firstNonFiniteIndex(v);
      if (i >= 0) return `optimizer state ${name}.${k}[${i}] is ${v[i]}`;
    }
  }
  return undefined;
}

/**
 * Why checkpoint `cp` must not be restored: the first non-finite parameter or optimizer moment of
 * its model parts (`ps-<k>.bin`, `trainer.bin`), or a part that does not decode; undefined when
 * every value is finite. Data-shard cursors hold no values.
 */
export function nonFiniteIn(cp: Pick<Checkpoint, 'parts' | 'read'>): string | undefined {
  for (const part of cp.parts) {
    const shard = /^ps-\d+\.bin$/.test(part);
    if (!shard && part !== 'trainer.bin') continue;
    try {
      const bytes = cp.read(part);
      if (shard) {
        const st = shardStateCodec.decode(bytes);
        for (const [name, t] of Object.entries(st.tables)) {
          const i = firstNonFiniteIndex(t.values);
          if (i >= 0) return `${part}: table ${name}, row ${t.owned[Math.floor(i / t.dim)]}, is ${t.values[i]}`;
        }
        for (const [name, v] of Object.entries(st.dense)) {
          const i = firstNonFiniteIndex(v);
          if (i >= 0) return `${part}: dense ${name}[${i}] is ${v[i]}`;
        }
        const slot = badSlot(st.slots);
        if (slot !== undefined) return `${part}: ${slot}`;
      } else {
        const st = trainerStateCodec.decode(bytes);
        for (const [name, t] of Object.entries(st.params.tables)) {
          const i = firstNonFiniteIndex(t.data);
          if (i >= 0) return `${part}: table ${name}, row ${Math.floor(i / t.dim)}, is ${t.data[i]}`;
        }
        for (const [name, v] of Object.entries(st.params.dense)) {
          const i = firstNonFiniteIndex(v);
          if (i >= 0) return `${part}: dense ${name}[${i}] is ${v[i]}`;
        }
        const slot = badSlot(st.optimizer);
        if (slot !== undefined) return `${part}: ${slot}`;
      }
    } catch (err) {
      return `${part} cannot be read: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/** Which checkpoint a rollback restores: the newest finite one, or why there is none. */
type Choice = { readonly cp?: Checkpoint; readonly step?: number; readonly start?: true; readonly skipped: readonly string[] } | { readonly fail: string };

export class DivergenceHandler {
  readonly #plan: DivergencePlan;
  readonly #hooks: RollbackHooks;
  readonly #started = Date.now();
  readonly #rollbacks: RollbackRecord[] = [];
  /** Steps of the checkpoints rollbacks restored. */
  readonly #restored = new Set<number>();
  #lr: number | undefined;
  #rolling: Promise<void> | undefined;

  constructor(plan: DivergencePlan | undefined, hooks: RollbackHooks) {
    this.#plan = plan ?? DEFAULT_DIVERGENCE;
    this.#hooks = hooks;
  }

  /** The job's configuration once the aggregator answered: its learning rate is the one to lower. */
  setConfig(config: Pick<JobConfig, 'optimizer'>): void {
    if (this.#lr === undefined) this.#lr = config.optimizer.lr;
  }

  /** Flags the aggregators get on top of the plan's model flags (the lowered learning rate, after a rollback). */
  aggregatorFlags(): string[] {
    return this.#rollbacks.length > 0 && this.#lr !== undefined ? ['--lr', String(this.#lr)] : [];
  }

  /** The job's configuration with the learning rate it trains with now (saved with the model). */
  config<C extends Pick<JobConfig, 'optimizer'>>(config: C): C {
    return this.#rollbacks.length > 0 && this.#lr !== undefined ? { ...config, optimizer: { ...config.optimizer, lr: this.#lr } } : config;
  }

  get log(): DivergenceLog {
    return { mode: this.#plan.mode, rollbacks: [...this.#rollbacks], ...(this.#lr !== undefined ? { lr: this.#lr } : {}) };
  }

  /**
   * The launcher's restart policy asks first: a decision for a diverged trainer (or for any trainer
   * exit while a rollback is under way), undefined when the exit is not about divergence.
   */
  async onExit(exit: ActorExit): Promise<ExitDecision | undefined> {
    const trainer = exit.name.startsWith('trainer-');
    if (this.#rolling !== undefined && trainer) return { action: 'ignore' }; // part of the rollback under way
    if (exit.code !== EXIT_DIVERGED || exit.stalled) return undefined;
    const why = divergenceLine(exit);
    if (this.#plan.mode === 'stop') {
      return { action: 'fail', why: `diverged (exit code ${EXIT_DIVERGED}, not restarted: --on-divergence stop): ${why}` };
    }
    if (this.#rollbacks.length >= this.#plan.maxRollbacks) {
      return {
        action: 'fail',
        why: `diverged again after ${this.#rollbacks.length} rollback(s) (--max-rollbacks ${this.#plan.maxRollbacks}, learning rate now ${this.#lr ?? 'unknown'}): ${why}`,
      };
    }
    if (this.#lr === undefined) return { action: 'fail', why: `diverged before the job's learning rate was known, so it cannot be lowered: ${why}` };
    // Everything from here on, the checkpoint check included, is the rollback under way: the other
    // ranks of a mirrored group diverge at the same step and must not start a second one.
    let decision: ExitDecision = { action: 'ignore' };
    this.#rolling = (async () => {
      const choice = await this.#choose();
      if ('fail' in choice) decision = { action: 'fail', why: `diverged (${why}), and cannot roll back: ${choice.fail}` };
      else await this.#rollback(exit, why, choice);
    })().finally(() => {
      this.#rolling = undefined;
    });
    await this.#rolling;
    return decision;
  }

  /** The newest kept checkpoint whose values are all finite (none kept: the start). */
  async #choose(): Promise<Choice> {
    const h = this.#hooks;
    if (h.checkpoints === undefined) {
      const step = h.latestStep();
      return { ...(step !== undefined ? { step } : {}), skipped: [] };
    }
    await h.flush?.();
    const kept = await h.checkpoints();
    if (kept.length === 0) return { skipped: [] };
    const skipped: string[] = [];
    let retried = 0;
    for (const cp of kept) {
      // Restored once and diverged again before a newer checkpoint was kept: finite, but already
      // too far off (a replica saved just before the divergence); an older one, or the start, next.
      if (this.#restored.has(cp.step)) {
        retried++;
        continue;
      }
      const bad = nonFiniteIn(cp);
      if (bad === undefined) return { cp, step: cp.step, skipped };
      skipped.push(`step ${cp.step} (${bad})`);
    }
    if (retried > 0) {
      for (const step of this.#restored) skipped.push(`step ${step} (restored before, and training diverged again from it)`);
      return { start: true, skipped };
    }
    return {
      fail:
        `none of the ${kept.length} kept checkpoint(s) holds finite values — ${skipped.join('; ')}. ` +
        'Start again with a lower learning rate (--lr), more checkpoints kept (--keep-checkpoints), or --on-divergence stop',
    };
  }

  async #rollback(exit: ActorExit, why: string, choice: Exclude<Choice, { fail: string }>): Promise<void> {
    const h = this.#hooks;
    const lrBefore = this.#lr as number;
    const lrAfter = lrBefore * this.#plan.lrFactor;
    const fromStep = choice.step;
    for (const s of choice.skipped) h.log(`rollback: skipping the checkpoint of ${s}`);
    if (choice.cp !== undefined) {
      this.#restored.add(choice.cp.step);
      h.use?.(choice.cp);
    } else if (choice.start === true) h.use?.(undefined);
    const record: RollbackRecord = { actor: exit.name, error: why, ...(fromStep !== undefined ? { fromStep } : {}), lrBefore, lrAfter, at: (Date.now() - this.#started) / 1000 };
    this.#rollbacks.push(record);
    this.#lr = lrAfter;
    h.log(
      `${exit.name} diverged (${why}); rollback ${this.#rollbacks.length}/${this.#plan.maxRollbacks}: ` +
        `restoring ${fromStep !== undefined ? `the checkpoint of step ${fromStep}` : choice.start === true ? 'the start (no kept checkpoint left to try)' : 'the start (no checkpoint yet)'} and lowering the learning rate ${lrBefore} → ${lrAfter}`,
    );
    const { kill, start } = h.actors();
    // Trainers first, so no push of the diverged run reaches a restored shard.
    for (const name of kill) await h.kill(name);
    h.prepare?.();
    if (h.rewind !== undefined) {
      // Only now, with the diverged run's actors gone (none can hand the checkpointer a newer state):
      // the newer checkpoints are removed, and with them their steps, which the restored run may write again.
      for (const s of this.#restored) if (fromStep === undefined || s > fromStep) this.#restored.delete(s);
      await h.rewind(fromStep);
    }
    for (const spec of start()) h.start(spec);
  }
}
