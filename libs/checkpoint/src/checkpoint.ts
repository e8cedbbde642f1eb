// Job checkpoints on disk. A checkpoint of step S is the directory `<root>/<S, 12 digits>/`:
//   - parts (opaque bytes: a parameter shard's state, a data shard's cursor, the trainer state…),
//     each written as a temp file, fsynced, renamed into place, and the directory fsynced;
//   - MANIFEST.json, written last in the same way, listing every part with its size and SHA-256,
//     the step, the time, the caller's meta (job config…) and the format version.
// A directory without a parseable manifest, or whose parts do not match it, is not a checkpoint:
// readers skip it (and say why), so a crash at any instant leaves the previous checkpoint usable.
// Parts may be written by several processes in parallel (writePartAtomic); whoever knows the full
// list commits the manifest (commitManifest), which verifies every part before it makes them one.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Version of the manifest layout; readers reject other versions. */
export const CHECKPOINT_FORMAT = 1;
export const MANIFEST_NAME = 'MANIFEST.json';
const STEP_DIGITS = 12;
const STEP_DIR = /^\d{12}$/;
const PART_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$/;

/** A checkpoint that cannot be written or read; the message says what, where and what to do. */
export class CheckpointError extends Error {
  constructor(
    message: string,
    /** The file or directory concerned. */
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CheckpointError';
  }
}

export interface ManifestPart {
  readonly name: string;
  readonly bytes: number;
  /** Lower-case hex SHA-256 of the part's bytes. */
  readonly sha256: string;
}

export interface Manifest {
  readonly format: number;
  readonly step: number;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly parts: readonly ManifestPart[];
}

export interface Checkpoint {
  readonly dir: string;
  readonly step: number;
  readonly createdAt: string;
  readonly meta: Readonly<Record<string, unknown>>;
  /** Part names, in manifest order. */
  readonly parts: readonly string[];
  readonly manifest: Manifest;
  /** A part's bytes, checked against the manifest's size and SHA-256 (CheckpointError if they differ or it is not listed). */
  read(name: string): Uint8Array;
}

/** One step directory under a checkpoint root, complete or not. */
export interface CheckpointListing {
  readonly dir: string;
  readonly step: number;
  readonly complete: boolean;
  /** Why it is not complete (missing manifest, missing or mismatching part, …). */
  readonly problem?: string;
  /** Set when complete. */
  readonly checkpoint?: Checkpoint;
}

export interface WriteCheckpointOptions {
  /** Complete checkpoints to keep (default 3); older ones, and incomplete ones older than the newest complete one, are removed. */
  readonly keep?: number;
}

export interface ListOptions {
  /** Hash every part against the manifest (default true); false checks only presence and size. */
  readonly verify?: boolean;
}

/** The directory name of a step: 12 digits, zero-padded, so names sort like steps. */
export function stepDirName(step: number): string {
  if (!Number.isSafeInteger(step) || step < 0 || step >= 10 ** STEP_DIGITS) {
    throw new CheckpointError(`checkpoint step ${step} is not an integer in 0…${10 ** STEP_DIGITS - 1}; pass the global step as a non-negative integer`, String(step));
  }
  return String(step).padStart(STEP_DIGITS, '0');
}

export function checkpointDir(root: string, step: number): string {
  return join(root, stepDirName(step));
}

/** Throws unless `name` is a usable part name: letters, digits, '_', '-', '.', not starting with '.', not the manifest's name. */
export function validatePartName(name: string, where = ''): string {
  if (typeof name !== 'string' || !PART_NAME.test(name) || name === MANIFEST_NAME) {
    throw new CheckpointError(
      `checkpoint part name '${String(name)}'${where === '' ? '' : ` in ${where}`} is not allowed: use 1…200 letters, digits, '_', '-' or '.', not starting with '.', no '/', and not '${MANIFEST_NAME}'`,
      where,
    );
  }
  return name;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function makeDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new CheckpointError(`cannot create checkpoint directory ${dir}: ${(err as Error).message}; check that its parent is a writable directory`, dir, { cause: err });
  }
}

/** Writes `bytes` to `dir/name` so that the file is either absent, the old one, or all of the new bytes on disk. */
async function atomicWrite(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
    await fsyncDir(dir);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CheckpointError(`cannot write checkpoint file ${join(dir, name)}: ${(err as Error).message}; check that the directory is writable and the disk has room`, join(dir, name), {
      cause: err,
    });
  }
}

/**
 * Writes one part into a checkpoint directory (created if missing) atomically and returns its
 * manifest entry. Safe to call from several processes at once for different names.
 */
export async function writePartAtomic(dir: string, name: string, bytes: Uint8Array): Promise<ManifestPart> {
  validatePartName(name, dir);
  if (!(bytes instanceof Uint8Array)) throw new CheckpointError(`checkpoint part '${name}' must be a Uint8Array, got ${typeof bytes}`, join(dir, name));
  await makeDir(dir);
  await atomicWrite(dir, name, bytes);
  return { name, bytes: bytes.length, sha256: sha256(bytes) };
}

/** The manifest entry of a part already on disk (size and SHA-256 of the file). */
export async function describePart(dir: string, name: string): Promise<ManifestPart> {
  validatePartName(name, dir);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(join(dir, name));
  } catch (err) {
    throw new CheckpointError(`checkpoint part ${join(dir, name)} cannot be read (${(err as Error).message}); write it (writePartAtomic) before committing the manifest`, join(dir, name), {
      cause: err,
    });
  }
  return { name, bytes: bytes.length, sha256: sha256(bytes) };
}

/**
 * Makes the parts in `dir` a checkpoint: verifies every listed part on disk (a name alone is
 * described from the file; an entry must match the file's size and SHA-256), then writes
 * MANIFEST.json atomically. Returns the manifest written.
 */
export async function commitManifest(
  dir: string,
  m: { readonly step: number; readonly meta?: Readonly<Record<string, unknown>>; readonly parts: readonly (ManifestPart | string)[]; readonly createdAt?: string },
): Promise<Manifest> {
  stepDirName(m.step);
  const seen = new Set<string>();
  const parts: ManifestPart[] = [];
  for (const p of m.parts) {
    const name = typeof p === 'string' ? p : p.name;
    validatePartName(name, dir);
    if (seen.has(name)) throw new CheckpointError(`checkpoint part '${name}' is listed twice for ${dir}; list each part once`, dir);
    seen.add(name);
    const onDisk = await describePart(dir, name);
    if (typeof p !== 'string' && (p.bytes !== onDisk.bytes || p.sha256 !== onDisk.sha256)) {
      throw new CheckpointError(
        `checkpoint part ${join(dir, name)} on disk (${onDisk.bytes} bytes, sha256 ${onDisk.sha256.slice(0, 12)}…) is not the one being committed (${p.bytes} bytes, sha256 ${p.sha256.slice(0, 12)}…); another writer replaced it — write the part again`,
        join(dir, name),
      );
    }
    parts.push(onDisk);
  }
  const manifest: Manifest = { format: CHECKPOINT_FORMAT, step: m.step, createdAt: m.createdAt ?? new Date().toISOString(), meta: m.meta ?? {}, parts };
  let json: string;
  try {
    json = JSON.stringify(manifest, null, 2);
  } catch (err) {
    throw new CheckpointError(`checkpoint meta for ${dir} is not JSON-serialisable (${(err as Error).message}); pass plain data`, dir, { cause: err });
  }
  await atomicWrite(dir, MANIFEST_NAME, new TextEncoder().encode(`${json}\n`));
  return manifest;
}

/**
 * Writes a whole checkpoint of `step` under `root` (parts in parallel, then the manifest) and
 * prunes to the newest `keep` complete checkpoints. Returns the checkpoint's directory.
 * Rewriting an existing step first removes its manifest, so the directory is never a complete
 * checkpoint with a mix of old and new parts.
 */
export async function writeCheckpoint(
  root: string,
  step: number,
  parts: Readonly<Record<string, Uint8Array>>,
  meta: Readonly<Record<string, unknown>> = {},
  opts: WriteCheckpointOptions = {},
): Promise<string> {
  const dir = checkpointDir(root, step);
  const names = Object.keys(parts);
  for (const n of names) validatePartName(n, dir);
  const keep = opts.keep ?? 3;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new CheckpointError(`keep must be a positive integer (checkpoints to keep), got ${keep}`, root);
  await makeDir(dir);
  await rm(join(dir, MANIFEST_NAME), { force: true });
  const written = await Promise.all(names.map((n) => writePartAtomic(dir, n, parts[n])));
  await commitManifest(dir, { step, meta, parts: written });
  await pruneCheckpoints(root, keep);
  return dir;
}

function parseManifest(text: string, dir: string, step: number): Manifest | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `${MANIFEST_NAME} is not JSON (${(err as Error).message})`;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `${MANIFEST_NAME} is not an object`;
  const o = raw as Record<string, unknown>;
  if (o.format !== CHECKPOINT_FORMAT) return `${MANIFEST_NAME} has format ${JSON.stringify(o.format)}, this reader knows ${CHECKPOINT_FORMAT}`;
  if (o.step !== step) return `${MANIFEST_NAME} is of step ${JSON.stringify(o.step)}, but its directory ${dir} is step ${step}`;
  if (typeof o.createdAt !== 'string') return `${MANIFEST_NAME} has no createdAt`;
  if (typeof o.meta !== 'object' || o.meta === null || Array.isArray(o.meta)) return `${MANIFEST_NAME} meta is not an object`;
  if (!Array.isArray(o.parts)) return `${MANIFEST_NAME} parts is not a list`;
  const parts: ManifestPart[] = [];
  const names = new Set<string>();
  for (const p of o.parts as unknown[]) {
    const q = p as Partial<ManifestPart> | null;
    if (typeof q !== 'object' || q === null || typeof q.name !== 'string' || !PART_NAME.test(q.name) || q.name === MANIFEST_NAME || names.has(q.name)) {
      return `${MANIFEST_NAME} lists a bad or repeated part ${JSON.stringify(p)}`;
    }
    if (!Number.isSafeInteger(q.bytes) || (q.bytes as number) < 0 || typeof q.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(q.sha256))
      return `${MANIFEST_NAME}: part '${q.name}' has no valid bytes/sha256`;
    names.add(q.name);
    parts.push({ name: q.name, bytes: q.bytes as number, sha256: q.sha256 });
  }
  return { format: CHECKPOINT_FORMAT, step, createdAt: o.createdAt, meta: o.meta as Record<string, unknown>, parts };
}

function makeCheckpoint(dir: string, manifest: Manifest): Checkpoint {
  const byName = new Map(manifest.parts.map((p) => [p.name, p]));
  return {
    dir,
    step: manifest.step,
    createdAt: manifest.createdAt,
    meta: manifest.meta,
    parts: manifest.parts.map((p) => p.name),
    manifest,
    read(name: string): Uint8Array {
      const p = byName.get(name);
      if (p === undefined) throw new CheckpointError(`checkpoint ${dir} has no part '${name}' (parts: ${[...byName.keys()].join(', ') || 'none'}); was it written by a job with the same layout?`, dir);
      const path = join(dir, name);
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(path);
      } catch (err) {
        throw new CheckpointError(`checkpoint part ${path} cannot be read (${(err as Error).message}); the checkpoint was damaged after it was written — use an older one`, path, { cause: err });
      }
      if (bytes.length !== p.bytes || sha256(bytes) !== p.sha256) {
        throw new CheckpointError(
          `checkpoint part ${path} does not match its manifest (${bytes.length} bytes, expected ${p.bytes}, or a different SHA-256); the file was damaged — use an older checkpoint`,
          path,
        );
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    },
  };
}

/** Reads and checks one step directory: a Checkpoint, or the reason it is not one. */
async function inspect(dir: string, step: number, verify: boolean): Promise<CheckpointListing> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_NAME), 'utf8');
  } catch {
    return { dir, step, complete: false, problem: `no ${MANIFEST_NAME} (incomplete: the writer stopped before committing)` };
  }
  const manifest = parseManifest(text, dir, step);
  if (typeof manifest === 'string') return { dir, step, complete: false, problem: manifest };
  for (const p of manifest.parts) {
    const path = join(dir, p.name);
    try {
      if (verify) {
        const bytes = await readFile(path);
        if (bytes.length !== p.bytes) return { dir, step, complete: false, problem: `part '${p.name}' has ${bytes.length} bytes, the manifest says ${p.bytes} (truncated or replaced)` };
        if (sha256(bytes) !== p.sha256) return { dir, step, complete: false, problem: `part '${p.name}' does not match its SHA-256 (corrupt)` };
      } else {
        const s = await stat(path);
        if (s.size !== p.bytes) return { dir, step, complete: false, problem: `part '${p.name}' has ${s.size} bytes, the manifest says ${p.bytes} (truncated or replaced)` };
      }
    } catch {
      return { dir, step, complete: false, problem: `part '${p.name}' listed in the manifest is missing` };
    }
  }
  return { dir, step, complete: true, checkpoint: makeCheckpoint(dir, manifest) };
}

async function stepDirs(root: string): Promise<{ dir: string; step: number }[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CheckpointError(`cannot list checkpoint directory ${root}: ${(err as Error).message}`, root, { cause: err });
  }
  return names
    .filter((n) => STEP_DIR.test(n))
    .sort()
    .reverse()
    .map((n) => ({ dir: join(root, n), step: Number(n) }));
}

/** Every step directory under `root`, newest first, each complete or with the reason it is not. */
export async function listCheckpoints(root: string, opts: ListOptions = {}): Promise<CheckpointListing[]> {
  const out: CheckpointListing[] = [];
  for (const { dir, step } of await stepDirs(root)) out.push(await inspect(dir, step, opts.verify ?? true));
  return out;
}

/**
 * The newest complete and verified checkpoint under `root` (incomplete or corrupt directories are
 * skipped; `onSkip` hears why), or undefined when there is none.
 */
export async function latestCheckpoint(root: string, opts: { readonly onSkip?: (l: CheckpointListing) => void } = {}): Promise<Checkpoint | undefined> {
  for (const { dir, step } of await stepDirs(root)) {
    const l = await inspect(dir, step, true);
    if (l.checkpoint !== undefined) return l.checkpoint;
    opts.onSkip?.(l);
  }
  return undefined;
}

/** One checkpoint directory, verified; CheckpointError naming the problem when it is not complete. */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const base = dir.replace(/\/+$/, '').split('/').pop() ?? '';
  if (!STEP_DIR.test(base))
    throw new CheckpointError(`${dir} is not a checkpoint directory (its name must be the step, ${STEP_DIGITS} digits); pass <root>/<step>, or use latestCheckpoint(root)`, dir);
  const l = await inspect(dir, Number(base), true);
  if (l.checkpoint === undefined) throw new CheckpointError(`${dir} is not a usable checkpoint: ${l.problem}; use an older one (latestCheckpoint picks the newest complete one)`, dir);
  return l.checkpoint;
}

/**
 * Removes every step directory under `root` newer than `step` (−1: all of them), complete or not:
 * a rollback that restores `step` discards what training wrote after it, so a later checkpoint of
 * the restored run is not mistaken for — or pruned in favour of — the abandoned one. Returns the
 * removed directories, newest first.
 */
export async function discardCheckpointsAfter(root: string, step: number): Promise<string[]> {
  const removed: string[] = [];
  for (const d of await stepDirs(root)) {
    if (d.step <= step) continue;
    await rm(d.dir, { recursive: true, force: true });
    removed.push(d.dir);
  }
  return removed;
}

/**
 * Keeps the newest `keep` complete checkpoints under `root`; removes older complete ones and every
 * incomplete directory older than the newest complete one (newer incomplete ones may still be
 * being written). Returns the removed directories.
 */
export async function pruneCheckpoints(root: string, keep: number): Promise<string[]> {
  const listing = await listCheckpoints(root, { verify: false });
  const removed: string[] = [];
  let complete = 0;
  let newestComplete = -1;
  for (const l of listing) {
    const old = newestComplete >= 0 && l.step < newestComplete;
    if (l.complete) {
      complete++;
      if (newestComplete < 0) newestComplete = l.step;
      if (complete <= keep) continue;
    } else if (!old) continue;
    await rm(l.dir, { recursive: true, force: true });
    removed.push(l.dir);
  }
  return removed;
}
