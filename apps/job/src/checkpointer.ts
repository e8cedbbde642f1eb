// The launcher's checkpoints (docs/RELIABILITY.md): on a timer, one at a time, every part fetched
// over the bus (so no shared filesystem is needed) and written by libs/checkpoint — ps: every
// parameter shard's state and every data shard's cursor; mirrored: the newest replica rank 0 sent
// to the aggregator. A round that cannot reach every part is skipped (expected while an actor restarts).
import { RemoteError, requestLarge, type NatsConnection } from '@actorflow/bus';
import { discardCheckpointsAfter, latestCheckpoint, writeCheckpoint, type Checkpoint } from '@actorflow/checkpoint';
import { subjects, trainerStateCodec } from '@actorflow/protocol';
import { nonFiniteIn } from './rollback.ts';

export interface CheckpointerOptions {
  readonly nc: NatsConnection;
  readonly job: string;
  readonly strategy: 'ps' | 'mirrored';
  readonly model: string;
  /** `<out>/checkpoints`. */
  readonly root: string;
  readonly keep: number;
  readonly every: { readonly steps?: number; readonly seconds?: number };
  readonly psShards: number;
  readonly dataShards: number;
  /** Steps done so far and per rank (recorded in the manifest; a resumed ps trainer counts on from them). */
  readonly progress: { readonly stepsDone: number; rankSteps(): Record<string, number> };
  readonly worldSize: () => number;
  readonly log: (line: string) => void;
  /** The checkpoint a resumed job starts from. */
  readonly latest?: Checkpoint;
}

const enc = new TextEncoder();

export class JobCheckpointer {
  /** The newest complete checkpoint (restarted actors start from it). */
  latest: Checkpoint | undefined;
  /** Checkpoints written by this run. */
  written = 0;
  /** Checkpoints not written because a part held NaN or ±Infinity. */
  nonFinite = 0;
  readonly #o: CheckpointerOptions;
  #lastStep: number;
  #lastAt = Date.now();
  #running: Promise<boolean> | undefined;
  #lastSkipLog = 0;
  #timer: NodeJS.Timeout | undefined;
  #quiet = false;

  constructor(o: CheckpointerOptions) {
    this.#o = o;
    this.latest = o.latest;
    this.#lastStep = o.latest?.step ?? -1;
  }

  /** Takes one checkpoint now (or joins the one under way); false when skipped or nothing was newer. */
  take(reason: string): Promise<boolean> {
    this.#running ??= this.#take(reason).finally(() => {
      this.#lastAt = Date.now();
      this.#running = undefined;
    });
    return this.#running;
  }

  async #take(reason: string): Promise<boolean> {
    const o = this.#o;
    try {
      const parts: Record<string, Uint8Array> = {};
      let step: number;
      if (o.strategy === 'mirrored') {
        let bytes: Uint8Array;
        try {
          bytes = await requestLarge(o.nc, subjects.ctl(o.job, 'state'), enc.encode(JSON.stringify({ after: this.#lastStep })), { timeoutMs: 30_000 });
        } catch (err) {
          if (err instanceof RemoteError && (err.code === 'NO_STATE' || err.code === 'NOT_NEWER')) return false;
          throw err;
        }
        step = trainerStateCodec.decode(bytes).step;
        if (step <= this.#lastStep) return false;
        parts['trainer.bin'] = bytes;
      } else {
        const [shardParts, dataParts] = await Promise.all([
          Promise.all([...Array(o.psShards).keys()].map((k) => requestLarge(o.nc, subjects.psState(o.job, k), new Uint8Array(0), { timeoutMs: 60_000 }))),
          Promise.all([...Array(o.dataShards).keys()].map((i) => requestLarge(o.nc, subjects.dataState(o.job, i), new Uint8Array(0), { timeoutMs: 30_000 }))),
        ]);
        shardParts.forEach((b, k) => (parts[`ps-${k}.bin`] = b));
        dataParts.forEach((b, i) => (parts[`data-${i}.json`] = b));
        step = Math.max(this.#lastStep + 1, o.progress.stepsDone);
      }
      // Never a checkpoint a rollback or --resume could not use: the last good one stays the newest.
      const bad = nonFiniteIn({ parts: Object.keys(parts), read: (name) => parts[name] as Uint8Array });
      if (bad !== undefined) {
        this.nonFinite++;
        o.log(`checkpoint of step ${step} (${reason}) not written: ${bad} — training is diverging; the newest checkpoint on disk stays step ${this.latest?.step ?? 'none'}`);
        return false;
      }
      const meta = { job: o.job, strategy: o.strategy, model: o.model, reason, trainerSteps: o.progress.rankSteps(), worldSize: o.worldSize() };
      await writeCheckpoint(o.root, step, parts, meta, { keep: o.keep });
      this.#lastStep = step;
      this.written++;
      this.latest = await latestCheckpoint(o.root);
      return true;
    } catch (err) {
      // Expected while an actor restarts: said once per 30 s, not every round.
      if (!this.#quiet && Date.now() - this.#lastSkipLog > 30_000) {
        this.#lastSkipLog = Date.now();
        o.log(`checkpoint (${reason}) skipped: ${(err as Error).message}`);
      }
      return false;
    }
  }

  /**
   * A rollback restores `step` (undefined: the start; `latest` is set by the caller). What was
   * written after it belongs to the run that diverged: removed, so the restored run's own
   * checkpoints — whose steps count on from `step` again — are written, kept and chosen instead.
   */
  async rewind(step: number | undefined): Promise<void> {
    await this.#running;
    const from = step ?? -1;
    const removed = await discardCheckpointsAfter(this.#o.root, from);
    if (removed.length > 0) this.#o.log(`rollback: removed ${removed.length} checkpoint(s) newer than ${step === undefined ? 'the start' : `step ${step}`} (written by the run that diverged)`);
    this.#lastStep = from;
  }

  /**
   * Checkpoints on the cadence until stop(). Mirrored: rank 0 sets the cadence (it sends the
   * aggregator a replica every --checkpoint-every steps); each newer replica is fetched on the next
   * tick, so a short run that diverges still leaves its replicas on disk.
   */
  start(): void {
    const { steps, seconds } = this.#o.every;
    const mirrored = this.#o.strategy === 'mirrored';
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return;
      const sinceMs = Date.now() - this.#lastAt;
      const dueBySteps = steps !== undefined && !mirrored && this.#o.progress.stepsDone - Math.max(0, this.#lastStep) >= steps;
      const dueBySeconds = seconds !== undefined && sinceMs >= seconds * 1000;
      if (dueBySteps || dueBySeconds || mirrored) void this.take('periodic');
    }, 250);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a checkpoint under way. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** No more skip messages (the job is closing). */
  quiet(): void {
    this.#quiet = true;
  }
}
