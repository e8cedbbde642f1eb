import t from 'tap';
import { mkdir, mkdtemp, readFile, readdir, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  CHECKPOINT_FORMAT,
  CheckpointError,
  MANIFEST_NAME,
  checkpointDir,
  commitManifest,
  describePart,
  latestCheckpoint,
  listCheckpoints,
  openCheckpoint,
  pruneCheckpoints,
  discardCheckpointsAfter,
  stepDirName,
  validatePartName,
  writeCheckpoint,
  writePartAtomic,
  type ManifestPart,
} from '../mod.ts';

async function tempRoot(t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ckpt-test-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

t.test('round trip: parts, meta, manifest with sizes and checksums', async (t) => {
  const root = await tempRoot(t);
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 255);
  const dir = await writeCheckpoint(root, 42, { 'ps-0.bin': big, 'data-0.json': new TextEncoder().encode('{"a":1}'), empty: new Uint8Array(0) }, { job: 'j1', config: { lr: 0.01 } });
  t.equal(dir, join(root, '000000000042'));
  t.equal(stepDirName(42), '000000000042');
  t.equal(checkpointDir(root, 7), join(root, '000000000007'));
  const ck = await latestCheckpoint(root);
  t.ok(ck);
  if (ck === undefined) return;
  t.equal(ck.step, 42);
  t.equal(ck.dir, dir);
  t.same(ck.meta, { job: 'j1', config: { lr: 0.01 } });
  t.same([...ck.parts].sort(), ['data-0.json', 'empty', 'ps-0.bin']);
  t.same(ck.read('ps-0.bin'), big);
  t.equal(ck.read('empty').length, 0);
  t.equal(new TextDecoder().decode(ck.read('data-0.json')), '{"a":1}');
  t.throws(() => ck.read('nope'), CheckpointError);
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST_NAME), 'utf8')) as { format: number; step: number; parts: { name: string; bytes: number; sha256: string }[]; createdAt: string };
  t.equal(manifest.format, CHECKPOINT_FORMAT);
  t.equal(manifest.step, 42);
  t.ok(!Number.isNaN(Date.parse(manifest.createdAt)));
  t.equal(manifest.parts.find((p) => p.name === 'ps-0.bin')?.bytes, 300_000);
  t.match(manifest.parts[0].sha256, /^[0-9a-f]{64}$/);
  t.same(
    (await readdir(dir)).filter((n) => n.startsWith('.')),
    [],
    'no temp files left behind',
  );
  t.same((await openCheckpoint(dir)).step, 42);
  t.equal(await latestCheckpoint(join(root, 'missing')), undefined, 'no root: no checkpoint');
  t.same(await listCheckpoints(join(root, 'missing')), []);
});

t.test('part names, steps and keep are validated', async (t) => {
  const root = await tempRoot(t);
  for (const bad of ['', '.', '..', 'a/b', '../x', '.hidden', MANIFEST_NAME, 'x'.repeat(201), 'sp ace']) {
    t.throws(() => validatePartName(bad), CheckpointError, `'${bad.slice(0, 20)}' refused`);
    await t.rejects(writeCheckpoint(root, 1, { [bad]: bytes(1) }), CheckpointError);
  }
  t.equal(validatePartName('ps-0.state.bin'), 'ps-0.state.bin');
  for (const s of [-1, 1.5, Number.NaN, 1e12]) t.throws(() => stepDirName(s), /not an integer/);
  await t.rejects(writeCheckpoint(root, 1, { a: bytes(1) }, {}, { keep: 0 }), /keep must be a positive integer/);
  await t.rejects(writePartAtomic(root, 'a', 'text' as unknown as Uint8Array), /must be a Uint8Array/);
  await t.rejects(writeCheckpoint(root, 2, { a: bytes(1) }, { n: 1n } as unknown as Record<string, unknown>), /not JSON-serialisable/);
  await t.rejects(openCheckpoint(root), /not a checkpoint directory/);
});

t.test('keep-K pruning keeps the newest complete checkpoints', async (t) => {
  const root = await tempRoot(t);
  for (const step of [10, 20, 30, 40, 50]) await writeCheckpoint(root, step, { p: bytes(step) }, {}, { keep: 2 });
  const list = await listCheckpoints(root);
  t.same(
    list.map((l) => [l.step, l.complete]),
    [
      [50, true],
      [40, true],
    ],
  );
  t.equal((await latestCheckpoint(root))?.read('p')[0], 50);
  // Default keep is 3; an incomplete directory older than the newest complete one is removed too, a newer one is left alone.
  await writePartAtomic(checkpointDir(root, 45), 'p', bytes(1));
  await writePartAtomic(checkpointDir(root, 99), 'p', bytes(1));
  await writeCheckpoint(root, 60, { p: bytes(60) });
  t.same(
    (await listCheckpoints(root)).map((l) => [l.step, l.complete]),
    [
      [99, false],
      [60, true],
      [50, true],
      [40, true],
    ],
  );
  t.same(await pruneCheckpoints(root, 1), [checkpointDir(root, 50), checkpointDir(root, 40)]);
});

t.test('discardCheckpointsAfter removes every step directory newer than the restored step, complete or not', async (t) => {
  const root = await tempRoot(t);
  for (const s of [10, 20, 30]) await writeCheckpoint(root, s, { p: bytes(s) });
  await mkdir(checkpointDir(root, 40), { recursive: true }); // torn
  t.same(await discardCheckpointsAfter(root, 20), [checkpointDir(root, 40), checkpointDir(root, 30)]);
  t.same(
    (await listCheckpoints(root)).map((l) => l.step),
    [20, 10],
    'the restored step and older ones stay',
  );
  t.same(await discardCheckpointsAfter(root, 20), [], 'nothing newer: nothing removed');
  t.same(await discardCheckpointsAfter(root, -1), [checkpointDir(root, 20), checkpointDir(root, 10)], '-1: back to the start');
  t.same(await discardCheckpointsAfter(join(root, 'missing'), -1), [], 'no directory: nothing to do');
});

t.test('torn writes are skipped with a reason and the previous checkpoint is returned', async (t) => {
  const root = await tempRoot(t);
  await writeCheckpoint(root, 1, { a: bytes(1, 1, 1), b: bytes(2) }, { n: 1 });
  const cases: [string, (dir: string) => Promise<void>, RegExp][] = [
    ['missing manifest', (dir) => unlink(join(dir, MANIFEST_NAME)), /no MANIFEST\.json/],
    ['truncated part', (dir) => truncate(join(dir, 'a'), 1), /part 'a' has 1 bytes, the manifest says 3/],
    ['wrong checksum', (dir) => writeFile(join(dir, 'a'), bytes(9, 9, 9)), /part 'a' does not match its SHA-256/],
    ['missing part', (dir) => unlink(join(dir, 'b')), /part 'b' listed in the manifest is missing/],
    ['manifest not JSON', (dir) => writeFile(join(dir, MANIFEST_NAME), '{"format": 1, "st'), /is not JSON/],
    ['manifest of another format', (dir) => rewriteManifest(dir, (m) => ({ ...m, format: 99 })), /format 99/],
    ['manifest of another step', (dir) => rewriteManifest(dir, (m) => ({ ...m, step: 3 })), /of step 3/],
    ['manifest with a bad part', (dir) => rewriteManifest(dir, (m) => ({ ...m, parts: [{ name: '../x', bytes: 1, sha256: 'ab' }] })), /bad or repeated part/],
    ['manifest with a bad checksum field', (dir) => rewriteManifest(dir, (m) => ({ ...m, parts: [{ name: 'a', bytes: 3, sha256: 'xyz' }] })), /no valid bytes\/sha256/],
    ['manifest without meta', (dir) => rewriteManifest(dir, (m) => ({ ...m, meta: null })), /meta is not an object/],
    ['manifest without parts', (dir) => rewriteManifest(dir, (m) => ({ ...m, parts: 'a' })), /parts is not a list/],
    ['manifest without createdAt', (dir) => rewriteManifest(dir, (m) => ({ ...m, createdAt: 5 })), /no createdAt/],
    ['manifest an array', (dir) => writeFile(join(dir, MANIFEST_NAME), '[]'), /is not an object/],
  ];
  for (const [what, damage, problem] of cases) {
    const dir = await writeCheckpoint(root, 2, { a: bytes(5, 5, 5), b: bytes(6) }, { n: 2 }, { keep: 10 });
    t.equal((await latestCheckpoint(root))?.step, 2, `${what}: step 2 is complete before the damage`);
    await damage(dir);
    const skipped: string[] = [];
    const ck = await latestCheckpoint(root, { onSkip: (l) => skipped.push(l.problem ?? '') });
    t.equal(ck?.step, 1, `${what}: the previous checkpoint is returned`);
    t.same(ck?.read('a'), bytes(1, 1, 1));
    t.match(skipped[0], problem, `${what}: the reason is given`);
    const listed = (await listCheckpoints(root)).find((l) => l.step === 2);
    t.equal(listed?.complete, false);
    t.match(listed?.problem, problem);
    await t.rejects(openCheckpoint(dir), problem);
  }
  // A part damaged after the checkpoint was opened: read() refuses it.
  const ck = await latestCheckpoint(root);
  await writeFile(join(ck?.dir ?? '', 'a'), bytes(7, 7, 7));
  t.throws(() => ck?.read('a'), /does not match its manifest/);
  await unlink(join(ck?.dir ?? '', 'a'));
  t.throws(() => ck?.read('a'), /cannot be read/);
  // Sizes-only listing does not notice a same-size corruption, the full one does.
  const dir = await writeCheckpoint(root, 3, { a: bytes(1, 2) });
  await writeFile(join(dir, 'a'), bytes(2, 1));
  t.equal((await listCheckpoints(root, { verify: false })).find((l) => l.step === 3)?.complete, true);
  t.equal((await listCheckpoints(root)).find((l) => l.step === 3)?.complete, false);
});

async function rewriteManifest(dir: string, f: (m: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
  const m = JSON.parse(await readFile(join(dir, MANIFEST_NAME), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, MANIFEST_NAME), JSON.stringify(f(m)));
}

t.test('rewriting a step never leaves a complete checkpoint of mixed parts', async (t) => {
  const root = await tempRoot(t);
  await writeCheckpoint(root, 5, { a: bytes(1), b: bytes(2) });
  await writeCheckpoint(root, 5, { a: bytes(3) });
  const ck = await latestCheckpoint(root);
  t.same(ck?.parts, ['a']);
  t.same(ck?.read('a'), bytes(3));
});

t.test('parts written by several writers in parallel become a checkpoint only with the manifest', async (t) => {
  const root = await tempRoot(t);
  await writeCheckpoint(root, 100, { 'ps-0': bytes(0), 'ps-1': bytes(1), 'ps-2': bytes(2) });
  const dir = checkpointDir(root, 200);
  // Three writers (worker threads, each with its own event loop and file handles) write their shard's part of step 200 at once.
  const run = (k: number): Promise<ManifestPart> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL('./fixtures/write-part.ts', import.meta.url), { workerData: { dir, k } });
      w.once('message', (m: ManifestPart) => resolve(m));
      w.once('error', reject);
      w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`writer ${k} exited with ${code}`))));
    });
  const parts = await Promise.all([0, 1, 2].map(run));
  t.same(
    parts.map((p) => p.bytes),
    [100000, 100001, 100002],
  );
  t.equal((await latestCheckpoint(root))?.step, 100, 'all parts written but no manifest: still the previous checkpoint');
  t.match((await listCheckpoints(root))[0], { step: 200, complete: false });
  // A manifest that does not list every part it is given cannot be committed with a wrong entry.
  await t.rejects(commitManifest(dir, { step: 200, parts: [{ ...parts[0], sha256: parts[1].sha256 }] }), /is not the one being committed/);
  await t.rejects(commitManifest(dir, { step: 200, parts: ['ps-0', 'ps-0'] }), /listed twice/);
  await t.rejects(commitManifest(dir, { step: 200, parts: ['ps-0', 'ps-9'] }), /cannot be read/);
  t.equal((await latestCheckpoint(root))?.step, 100, 'failed commits leave no manifest');
  // Entries from the writers, or just names (described from disk).
  await commitManifest(dir, { step: 200, meta: { shards: 3 }, parts: [parts[0], parts[1], 'ps-2'] });
  const ck = await latestCheckpoint(root);
  t.equal(ck?.step, 200);
  t.same(ck?.meta, { shards: 3 });
  for (const k of [0, 1, 2]) t.same(ck?.read(`ps-${k}`), new Uint8Array(100000 + k).fill(k + 1));
  t.same(await describePart(dir, 'ps-2'), parts[2]);
});

t.test('write failures are CheckpointErrors that name the path', async (t) => {
  const root = await tempRoot(t);
  await writeFile(join(root, 'file'), 'x');
  await t.rejects(writePartAtomic(join(root, 'file'), 'a', bytes(1)), CheckpointError);
  await writeFile(join(root, 'notadir'), 'x');
  await t.rejects(listCheckpoints(join(root, 'notadir')), /cannot list checkpoint directory/);
  const err = await writePartAtomic(join(root, 'file', 'sub'), 'a', bytes(1)).catch((e: unknown) => e);
  t.type(err, CheckpointError);
  // Directory exists but the temp file cannot be created there (a directory of the part's name blocks the rename).
  const dir = checkpointDir(root, 1);
  await writePartAtomic(join(dir, 'a'), 'x', bytes(1));
  const e2 = await writePartAtomic(dir, 'a', bytes(1)).catch((e: unknown) => e);
  t.type(e2, CheckpointError);
  t.match((e2 as CheckpointError).path, join(dir, 'a'));
  t.match((e2 as Error).message, /check that the directory is writable/);
  t.same(
    (await readdir(dir)).filter((n) => n.startsWith('.')),
    [],
    'the temp file is removed after a failure',
  );
});
