import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { evalReportCodec, lossReportCodec } from '@actorflow/protocol';
import { FILE_VERSION, ScalarWriter, TensorBoardError, readEventFile, readScalars, summarizeEval, summarizeLoss } from '../mod.ts';
import { crc32c, decodeEvent, encodeEvent, frameRecord, maskedCrc32c, readRecords } from '../internal_mod.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'tb-'));
const f32 = (x: number): number => Math.fround(x);

t.test('CRC-32C: the standard check value and the masked form', async (t) => {
  t.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  t.equal(crc32c(new Uint8Array(0)), 0);
  const c = crc32c(Uint8Array.of(1, 2, 3));
  t.equal(maskedCrc32c(Uint8Array.of(1, 2, 3)), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

t.test('scalars written are read back with verified CRCs', async (t) => {
  const dir = tmp();
  const w = new ScalarWriter(dir, { flushEveryMs: 0 });
  t.match(w.path, /events\.out\.tfevents\.\d+\./);
  w.scalar('loss/rank0', 0.75, 1, 1000.5);
  w.scalar('loss/rank0', 0.5, 2, 1001.25);
  w.scalars({ 'eval/rmse': 0.93, 'eval/mae': 0.74 }, 2 ** 40 + 3, 1002);
  w.scalar('loss/rank1', Number.NaN, 3, 1003);
  w.close();
  w.close(); // idempotent
  t.throws(() => w.scalar('x', 1, 1), TensorBoardError);
  const events = readEventFile(w.path);
  t.equal(events.length, 5);
  t.equal(events[0].fileVersion, FILE_VERSION, 'first record names the file version');
  t.same(events[1], { wallTime: 1000.5, step: 1, values: [{ tag: 'loss/rank0', value: 0.75 }] });
  t.same(events[3].values, [
    { tag: 'eval/rmse', value: f32(0.93) },
    { tag: 'eval/mae', value: f32(0.74) },
  ]);
  t.equal(events[3].step, 2 ** 40 + 3, 'int64 steps beyond 32 bits');
  const s = readScalars(dir);
  t.same(Object.keys(s).sort(), ['eval/mae', 'eval/rmse', 'loss/rank0', 'loss/rank1']);
  t.same(
    s['loss/rank0'].map((p) => [p.step, p.value, p.wallTime]),
    [
      [1, 0.75, 1000.5],
      [2, 0.5, 1001.25],
    ],
  );
  t.ok(Number.isNaN(s['loss/rank1'][0].value), 'NaN is kept');
});

t.test('buffering: records reach the file on flush, or when the buffer is full', async (t) => {
  const dir = tmp();
  const w = new ScalarWriter(dir, { flushEveryMs: 0, now: () => 42 });
  const header = statSync(w.path).size;
  t.ok(header > 0, 'the file-version record is written at once');
  w.scalar('a', 1, 1);
  t.equal(statSync(w.path).size, header, 'buffered');
  w.flush();
  t.ok(statSync(w.path).size > header, 'flushed');
  t.same(readEventFile(w.path)[1], { wallTime: 42, step: 1, values: [{ tag: 'a', value: 1 }] }, 'default wall time from the clock');
  const small = new ScalarWriter(dir, { flushEveryMs: 0, maxBufferBytes: 1 });
  small.scalar('b', 2, 1);
  t.equal(readEventFile(small.path).length, 2, 'a full buffer flushes');
  small.scalars({}, 2);
  t.equal(readdirSync(dir).length, 2, 'one file per writer');
  w.close();
  small.close();
  const timed = new ScalarWriter(dir);
  timed.close();
  t.throws(() => new ScalarWriter(dir, { flushEveryMs: -1 }), /flushEveryMs must be ≥ 0/);
});

t.test('bad input and bad files fail with what and where', async (t) => {
  const dir = tmp();
  const w = new ScalarWriter(dir, { flushEveryMs: 0 });
  t.throws(() => w.scalar('', 1, 1), /tag must not be empty/);
  t.throws(() => w.scalar('x', '1' as unknown as number, 1), /must be a number/);
  t.throws(() => w.scalar('x', 1, -1), /non-negative integer/);
  t.throws(() => w.scalar('x', 1, 1.5), /non-negative integer/);
  t.throws(() => w.scalar('x', 1, 1, Number.NaN), /wall time/);
  w.scalar('x', 1, 1);
  w.close();
  const good = readFileSync(w.path);
  const flip = Buffer.from(good);
  flip[flip.length - 6] ^= 0xff;
  const corrupt = join(dir, 'events.out.tfevents.corrupt');
  writeFileSync(corrupt, flip);
  t.throws(() => readEventFile(corrupt), /data CRC mismatch at byte \d+: the file is corrupt/);
  const lenFlip = Buffer.from(good);
  lenFlip[0] ^= 1;
  writeFileSync(corrupt, lenFlip);
  t.throws(() => readEventFile(corrupt), /length CRC mismatch at byte 0/);
  writeFileSync(corrupt, good.subarray(0, good.length - 3));
  t.throws(() => readEventFile(corrupt), /truncated record at byte/);
  writeFileSync(corrupt, good.subarray(0, 5));
  t.throws(() => readEventFile(corrupt), /truncated record header at byte 0/);
  t.throws(() => readScalars(dir), TensorBoardError, 'readScalars reports a corrupt file too');
  t.throws(() => decodeEvent(Uint8Array.of(0x0a, 0x05, 0x61)), /protobuf truncated/);
  t.throws(() => decodeEvent(Uint8Array.of(0x0b)), /unsupported protobuf wire type 3/);
  t.throws(() => decodeEvent(Uint8Array.of(0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), /varint longer than 10 bytes/);
  t.throws(() => new ScalarWriter(join(corrupt, 'sub')), /cannot create a TensorBoard event file in/);
});

t.test('unknown fields are skipped (as TensorFlow writers add them)', async (t) => {
  // Event with an extra varint field 4, a fixed64 field 6, a summary value holding an extra string field 3 and a value with no simple_value.
  const base = encodeEvent({ wallTime: 1, step: 7, values: [{ tag: 'x', value: 2 }] });
  const extra = Uint8Array.of(0x20, 0x05, 0x31, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x79, 0x1a, 0x00, 0x2a, 0x02, 0x12, 0x00);
  const e = decodeEvent(Uint8Array.from([...base, ...extra]));
  t.same(e, { wallTime: 1, step: 7, values: [{ tag: 'x', value: 2 }] });
  t.same(readRecords(frameRecord(base)), [base]);
});

t.test('train.loss / train.eval reports map to loss/rank<r>, examples_per_sec/rank<r>, eval/<metric>', async (t) => {
  const dir = tmp();
  const w = new ScalarWriter(dir, { flushEveryMs: 0 });
  const loss = lossReportCodec.decode(
    lossReportCodec.encode({ job: 'j', rank: 1, step: 40, epoch: 0, loss: 0.8125, examples: 4096, examplesPerSec: 20000, strategy: 'mirrored', backend: 'wasm', ts: 1_700_000_000_500 }),
  );
  summarizeLoss(w, loss);
  summarizeLoss(w, { ...loss, step: 41, loss: Number.NaN });
  summarizeEval(w, evalReportCodec.decode(evalReportCodec.encode({ job: 'j', step: 40, metrics: { rmse: 0.9375, 'ndcg@10': 0.25 }, ts: 1_700_000_001_000, final: true })));
  w.close();
  const s = readScalars(dir);
  t.same(s['loss/rank1'][0], { step: 40, value: 0.8125, wallTime: 1_700_000_000.5 });
  t.ok(Number.isNaN(s['loss/rank1'][1].value), 'a diverged loss stays NaN');
  t.same(s['examples_per_sec/rank1'][0], { step: 40, value: 20000, wallTime: 1_700_000_000.5 });
  t.same(s['eval/rmse'], [{ step: 40, value: 0.9375, wallTime: 1_700_000_001 }]);
  t.same(s['eval/ndcg@10'], [{ step: 40, value: 0.25, wallTime: 1_700_000_001 }]);
});

// A real TensorFlow writer (tfjs-node's C++ summary writer) as the reference, where the native backend loads.
t.test('files from TensorFlow (tf.node.summaryFileWriter) decode with our reader', async (t) => {
  let tfnode: typeof import('@tensorflow/tfjs-node') | undefined;
  try {
    tfnode = await import('@tensorflow/tfjs-node');
  } catch (err) {
    t.skip(`tfjs-node does not load here (${(err as Error).message.split('\n')[0]}); build it with npm run native:from-python`, async () => undefined);
    return;
  }
  const dir = tmp();
  const w = tfnode.node.summaryFileWriter(dir);
  w.scalar('loss/rank0', 0.5, 1);
  w.scalar('loss/rank0', 0.25, 2);
  w.scalar('eval/rmse', 0.9, 3);
  w.flush();
  const s = readScalars(dir);
  t.same(
    s['loss/rank0'].map((p) => [p.step, p.value]),
    [
      [1, 0.5],
      [2, 0.25],
    ],
  );
  t.same(
    s['eval/rmse'].map((p) => [p.step, p.value]),
    [[3, f32(0.9)]],
  );
  const first = readEventFile(join(dir, readdirSync(dir)[0]))[0];
  t.equal(first.fileVersion, FILE_VERSION, 'TensorFlow writes the same file version');
});

// TensorBoard's own reader, where the Python package is installed (it is not a dependency;
// TENSORBOARD_PYTHON names a Python that has it, e.g. a venv's).
t.test("TensorBoard's EventAccumulator reads our files", async (t) => {
  const py = [process.env.TENSORBOARD_PYTHON, '/usr/bin/python3', 'python3']
    .filter((p): p is string => p !== undefined && p !== '')
    .find((p) => spawnSync(p, ['-c', 'import tensorboard.backend.event_processing.event_accumulator'], { encoding: 'utf8' }).status === 0);
  if (py === undefined) {
    t.skip('the Python tensorboard package is not importable (pip install tensorboard to run this check)', async () => undefined);
    return;
  }
  const dir = tmp();
  const w = new ScalarWriter(dir, { flushEveryMs: 0 });
  w.scalar('loss/rank0', 0.5, 1, 10);
  w.scalar('loss/rank0', 0.25, 2, 11);
  w.scalars({ 'eval/rmse': 0.9375, 'examples_per_sec/rank0': 12000 }, 2 ** 33, 12);
  w.close();
  const script = [
    'import json, sys',
    'from tensorboard.backend.event_processing import event_accumulator as ea',
    'a = ea.EventAccumulator(sys.argv[1]); a.Reload()',
    'print(json.dumps({t: [[e.step, e.value, e.wall_time] for e in a.Scalars(t)] for t in sorted(a.Tags()["scalars"])}))',
  ].join('\n');
  const r = spawnSync(py, ['-c', script, dir], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), {
    'eval/rmse': [[2 ** 33, 0.9375, 12]],
    'examples_per_sec/rank0': [[2 ** 33, 12000, 12]],
    'loss/rank0': [
      [1, 0.5, 10],
      [2, 0.25, 11],
    ],
  });
});
