// The node agents' messages (issue 16): round trips, validations that name the field, and fuzzed
// bytes (truncated, bit-flipped, random, and structurally mutated JSON) that only ever raise ProtocolError.
import t from 'tap';
import {
  actorExitCodec,
  actorListCodec,
  actorStatusCodec,
  clusterSubjects,
  leaseRenewalCodec,
  logLineCodec,
  nodeInfoCodec,
  ProtocolError,
  startActorRequestCodec,
  stopActorsRequestCodec,
  type Codec,
  type NodeInfo,
} from '../mod.ts';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

const info: NodeInfo = {
  name: 'n1',
  address: '10.0.0.1',
  cores: 4,
  cpuModel: 'Xeon',
  memoryBytes: 8e9,
  freeMemoryBytes: 4e9,
  gpus: [{ name: 'Tesla T4', memoryMiB: 15360 }],
  backends: ['wasm', 'cpu'],
  labels: { zone: 'a' },
  energyEfficient: true,
  calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 2.5, linkMBps: 300, ms: 250 },
  platform: 'linux-x64',
  pid: 42,
  running: 1,
  ts: 1,
};

t.test('subjects', async (t) => {
  t.equal(clusterSubjects.info('n1'), 'cluster.node.n1.info');
  t.equal(clusterSubjects.start('n1'), 'cluster.node.n1.start');
  t.equal(clusterSubjects.stop('n1'), 'cluster.node.n1.stop');
  t.equal(clusterSubjects.list('n1'), 'cluster.node.n1.list');
  t.equal(clusterSubjects.lease('n1'), 'cluster.node.n1.lease');
  t.equal(clusterSubjects.log('n1', 'trainer-0'), 'cluster.node.n1.log.trainer-0');
  t.equal(clusterSubjects.allInfo, 'cluster.node.*.info');
  t.equal(clusterSubjects.exit('n1', 'trainer-0'), 'cluster.node.n1.exit.trainer-0');
  t.equal(clusterSubjects.allLogs, 'cluster.node.*.log.*');
  t.equal(clusterSubjects.allExits, 'cluster.node.*.exit.*');
  t.throws(() => clusterSubjects.exit('n1', 'a.b'), { message: /actor name/ });
  t.throws(() => clusterSubjects.info('a.b'), { message: /node name 'a\.b' is not usable in a NATS subject/ });
  t.throws(() => clusterSubjects.log('n1', '>'), { message: /actor name/ });
});

t.test('round trips', async (t) => {
  t.same(nodeInfoCodec.decode(nodeInfoCodec.encode(info)), info);
  const noLink = { ...info, calibration: { sparseExamplesPerSec: 1, matmulGflops: 1, ms: 1 } };
  t.same(nodeInfoCodec.decode(nodeInfoCodec.encode(noLink)), noLink);
  const start = { job: 'j', actor: 'trainer-0', entry: 'apps/trainer/main.ts', args: ['--rank', '0'], env: { A: 'b' }, leaseMs: 5000 };
  t.same(startActorRequestCodec.decode(startActorRequestCodec.encode(start)), start);
  const bare = { job: 'j', actor: 'a', entry: 'x.ts', args: [] };
  t.same(startActorRequestCodec.decode(startActorRequestCodec.encode(bare)), bare);
  const running = { job: 'j', actor: 'a', entry: 'x.ts', pid: 7, running: true, code: null, signal: null, startedAt: 1 };
  const ended = { job: 'j', actor: 'a', entry: 'x.ts', running: false, code: 3, signal: null, startedAt: 1, endedAt: 2, stoppedBy: 'lease expired' };
  const killed = { ...ended, code: null, signal: 'SIGKILL' };
  for (const s of [running, ended, killed]) t.same(actorStatusCodec.decode(actorStatusCodec.encode(s)), s);
  t.same(actorListCodec.decode(actorListCodec.encode({ node: 'n1', actors: [running, ended] })), { node: 'n1', actors: [running, ended] });
  t.same(stopActorsRequestCodec.decode(stopActorsRequestCodec.encode({ job: 'j' })), { job: 'j' });
  t.same(stopActorsRequestCodec.decode(stopActorsRequestCodec.encode({ job: 'j', actor: 'a' })), { job: 'j', actor: 'a' });
  t.same(leaseRenewalCodec.decode(leaseRenewalCodec.encode({ job: 'j', holder: 'launcher' })), { job: 'j', holder: 'launcher' });
  t.same(leaseRenewalCodec.decode(leaseRenewalCodec.encode({ job: 'j' })), { job: 'j' });
  t.same(logLineCodec.decode(logLineCodec.encode({ job: 'j', actor: 'a', line: 'hi', ts: 3 })), { job: 'j', actor: 'a', line: 'hi', ts: 3 });
  for (const s of [ended, killed]) t.same(actorExitCodec.decode(actorExitCodec.encode({ node: 'n1', status: s })), { node: 'n1', status: s });
});

t.test('every validation names the field', async (t) => {
  const bad: [(b: Uint8Array) => unknown, unknown, RegExp][] = [
    [nodeInfoCodec.decode, { ...info, gpus: 'none' }, /'gpus' must be an array/],
    [nodeInfoCodec.decode, { ...info, gpus: [{ name: 'x' }] }, /'memoryMiB' must be a number/],
    [nodeInfoCodec.decode, { ...info, cores: 0 }, /'cores' must be an integer >= 1/],
    [nodeInfoCodec.decode, { ...info, name: 'a.b' }, /node name/],
    [nodeInfoCodec.decode, { ...info, labels: { k: 1 } }, /labels\.k must be a string/],
    [nodeInfoCodec.decode, { ...info, calibration: { ...info.calibration, matmulGflops: 0 } }, /'matmulGflops' must be a positive number/],
    [nodeInfoCodec.decode, { ...info, calibration: undefined }, /calibration is not a map/],
    [startActorRequestCodec.decode, { job: 'j', actor: 'a', entry: 'x', args: [1] }, /args must be an array of strings/],
    [startActorRequestCodec.decode, { job: 'j', actor: 'a', entry: '', args: [] }, /'entry' must not be empty/],
    [startActorRequestCodec.decode, { job: 'j', actor: 'a b', entry: 'x', args: [] }, /actor name/],
    [startActorRequestCodec.decode, { job: 'j.k', actor: 'a', entry: 'x', args: [] }, /job id/],
    [startActorRequestCodec.decode, { job: 'j', actor: 'a', entry: 'x', args: [], leaseMs: 0 }, /'leaseMs' must be positive/],
    [startActorRequestCodec.decode, { job: 'j', actor: 'a', entry: 'x', args: [], env: { A: 1 } }, /env\.A must be a string/],
    [actorStatusCodec.decode, { job: 'j', actor: 'a', entry: 'x', running: true, code: 'x', signal: null, startedAt: 1 }, /code must be a number or null/],
    [actorStatusCodec.decode, { job: 'j', actor: 'a', entry: 'x', running: true, code: null, signal: 9, startedAt: 1 }, /signal must be a string or null/],
    [actorListCodec.decode, { node: 'n', actors: {} }, /'actors' must be an array/],
    [actorListCodec.decode, { node: 'n', actors: [3] }, /actors\[0\] is not a map/],
    [stopActorsRequestCodec.decode, { job: 'j', actor: '*' }, /actor name/],
    [leaseRenewalCodec.decode, { holder: 'x' }, /'job' must be a string/],
    [logLineCodec.decode, { job: 'j', actor: 'a', line: 1, ts: 1 }, /'line' must be a string/],
    [logLineCodec.decode, { job: 'j', actor: 'a.b', line: 'x', ts: 1 }, /actor name/],
    [actorStatusCodec.decode, { job: 'j>', actor: 'a', entry: 'x', running: true, code: null, signal: null, startedAt: 1 }, /job id/],
    [actorListCodec.decode, { node: 'n.1', actors: [] }, /node name/],
    [actorExitCodec.decode, { node: 'n1', status: { job: 'j', actor: 'a', entry: 'x', running: true, code: null, signal: null, startedAt: 1 } }, /running must be false/],
    [actorExitCodec.decode, { node: 'n1', status: { job: 'j', actor: 'a', entry: 'x', running: false, code: null, signal: null, startedAt: 1 } }, /needs a code or a signal/],
    [actorExitCodec.decode, { node: 'n 1', status: { job: 'j', actor: 'a', entry: 'x', running: false, code: 1, signal: null, startedAt: 1 } }, /node name/],
    [actorExitCodec.decode, { node: 'n1' }, /status is not a map/],
  ];
  for (const [decode, v, msg] of bad) t.throws(() => decode(enc(v)), { message: msg }, JSON.stringify(v));
  t.throws(() => nodeInfoCodec.decode(new Uint8Array([0xff])), { name: 'DecodeError', message: /not UTF-8 JSON/ });
});

let seed = 1616;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

/** Replaces one value somewhere in the object with a value of another type. */
function mutate(v: unknown): unknown {
  const odd = [null, 1.5, -1, 'x', '', true, [], {}, 'a.b', Number.MAX_SAFE_INTEGER];
  if (v === null || typeof v !== 'object') return odd[Math.floor(rand() * odd.length)];
  const o: Record<string, unknown> = Array.isArray(v) ? { ...v } : { ...(v as Record<string, unknown>) };
  const keys = Object.keys(o);
  if (keys.length === 0 || rand() < 0.1) return odd[Math.floor(rand() * odd.length)];
  const k = keys[Math.floor(rand() * keys.length)];
  if (rand() < 0.2) delete o[k];
  else o[k] = mutate(o[k]);
  return Array.isArray(v) ? Object.values(o) : o;
}

t.test('fuzzed bytes and mutated messages only ever raise ProtocolError', async (t) => {
  const status = { job: 'j', actor: 'a', entry: 'x.ts', pid: 7, running: false, code: 1, signal: null, startedAt: 1, endedAt: 2 };
  const cases: [Codec<unknown>, unknown][] = [
    [nodeInfoCodec, info],
    [startActorRequestCodec, { job: 'j', actor: 'trainer-0', entry: 'apps/trainer/main.ts', args: ['--rank', '0'], env: { A: 'b' }, leaseMs: 5000 }],
    [actorStatusCodec, status],
    [actorListCodec, { node: 'n1', actors: [status] }],
    [stopActorsRequestCodec, { job: 'j', actor: 'a' }],
    [leaseRenewalCodec, { job: 'j', holder: 'h' }],
    [logLineCodec, { job: 'j', actor: 'a', line: 'hi', ts: 3 }],
    [actorExitCodec, { node: 'n1', status }],
  ];
  let foreign = 0;
  let accepted = 0;
  const attempt = (codec: Codec<unknown>, b: Uint8Array): void => {
    try {
      const v = codec.decode(b);
      accepted++;
      // Whatever is accepted re-encodes to something accepted again (validation is stable).
      codec.decode(codec.encode(v));
    } catch (err) {
      if (!(err instanceof ProtocolError)) foreign++;
    }
  };
  for (const [codec, msg] of cases) {
    const valid = enc(msg);
    for (let cut = 0; cut < valid.length; cut += 3) attempt(codec, valid.subarray(0, cut));
    for (let k = 0; k < 200; k++) {
      const flipped = valid.slice();
      flipped[Math.floor(rand() * flipped.length)] ^= 1 << Math.floor(rand() * 8);
      attempt(codec, flipped);
    }
    for (let k = 0; k < 50; k++)
      attempt(
        codec,
        Uint8Array.from({ length: Math.floor(rand() * 60) }, () => Math.floor(rand() * 256)),
      );
    for (let k = 0; k < 300; k++) attempt(codec, enc(mutate(msg)));
  }
  t.equal(foreign, 0, 'no TypeError/RangeError escapes a decoder');
  t.ok(accepted > 0, 'some mutations are still valid messages (the fuzzer reaches the validators)');
});
