// ScalarWriter: one event file per writer in a log directory (what `tensorboard --logdir DIR`
// reads), appended in whole records, so a reader never sees half a record after a flush.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { encodeEvent, FILE_VERSION, frameRecord, readEventFile } from './events.ts';
import { TensorBoardError } from './errors.ts';

export interface ScalarWriterOptions {
  /** Flush buffered records this often (ms; default 2000, `0`: only on `flush()` / `close()` / a full buffer). */
  readonly flushEveryMs?: number;
  /** Flush when this many bytes are buffered (default 64 KiB). */
  readonly maxBufferBytes?: number;
  /** Clock for default wall times, seconds since the epoch (tests). */
  readonly now?: () => number;
}

let fileSeq = 0;

export class ScalarWriter {
  /** The event file this writer appends to. */
  readonly path: string;
  readonly #fd: number;
  readonly #buffer: Uint8Array[] = [];
  #buffered = 0;
  #closed = false;
  readonly #maxBuffer: number;
  readonly #now: () => number;
  readonly #timer: ReturnType<typeof setInterval> | undefined;

  /** Creates `dir` if needed and a new `events.out.tfevents.<seconds>.<host>.<pid>.<n>` in it. */
  constructor(dir: string, options: ScalarWriterOptions = {}) {
    this.#now = options.now ?? (() => Date.now() / 1000);
    this.#maxBuffer = options.maxBufferBytes ?? 65536;
    const flushEvery = options.flushEveryMs ?? 2000;
    if (!(flushEvery >= 0)) throw new TensorBoardError(`flushEveryMs must be ≥ 0 (got ${flushEvery})`);
    const start = this.#now();
    const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
    try {
      mkdirSync(dir, { recursive: true });
      this.path = join(dir, `events.out.tfevents.${Math.floor(start)}.${host}.${process.pid}.${fileSeq++}`);
      this.#fd = openSync(this.path, 'wx');
    } catch (err) {
      throw new TensorBoardError(`cannot create a TensorBoard event file in ${dir}: ${(err as Error).message}`);
    }
    writeSync(this.#fd, frameRecord(encodeEvent({ wallTime: start, step: 0, fileVersion: FILE_VERSION })));
    this.#timer = flushEvery > 0 ? setInterval(() => this.flush(), flushEvery) : undefined;
    this.#timer?.unref();
  }

  /** Logs `value` under `tag` at `step` (NaN and ±Infinity are kept: TensorBoard shows them). */
  scalar(tag: string, value: number, step: number, wallTimeSec?: number): void {
    this.scalars({ [tag]: value }, step, wallTimeSec);
  }

  /** Several scalars of one step in one event. */
  scalars(values: Readonly<Record<string, number>>, step: number, wallTimeSec?: number): void {
    if (this.#closed) throw new TensorBoardError(`${this.path}: writer is closed`);
    const list = Object.entries(values).map(([tag, value]) => {
      if (tag.length === 0) throw new TensorBoardError('a TensorBoard tag must not be empty');
      if (typeof value !== 'number') throw new TensorBoardError(`scalar '${tag}' must be a number (got ${typeof value})`);
      return { tag, value };
    });
    if (list.length === 0) return;
    const record = frameRecord(encodeEvent({ wallTime: wallTimeSec ?? this.#now(), step, values: list }));
    this.#buffer.push(record);
    this.#buffered += record.length;
    if (this.#buffered >= this.#maxBuffer) this.flush();
  }

  /** Writes the buffered records to the file. */
  flush(): void {
    if (this.#closed || this.#buffer.length === 0) return;
    const all = Buffer.concat(this.#buffer);
    this.#buffer.length = 0;
    this.#buffered = 0;
    writeSync(this.#fd, all);
  }

  /** Flushes, syncs and closes the file; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    fsyncSync(this.#fd);
    closeSync(this.#fd);
  }
}

export interface ScalarPoint {
  readonly step: number;
  readonly value: number;
  readonly wallTime: number;
}

/** Every scalar in every event file of `dir` (file-name order, then record order), by tag. */
export function readScalars(dir: string): Record<string, ScalarPoint[]> {
  const out: Record<string, ScalarPoint[]> = {};
  const files = readdirSync(dir)
    .filter((f) => f.includes('tfevents'))
    .sort();
  for (const f of files) for (const e of readEventFile(join(dir, f))) for (const v of e.values ?? []) (out[v.tag] ??= []).push({ step: e.step, value: v.value, wallTime: e.wallTime });
  return out;
}
