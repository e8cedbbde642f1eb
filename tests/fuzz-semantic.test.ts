// Semantic fuzz (issue 13): the hostile cases of the issue replayed against a LIVE ps job, by a
// credentialed attacker — the job runs on a nats-server of our own without per-role users
// (`--nats-url`), so nothing but the parameter shards' own checks stands between the attacker and
// the model. While the job trains, the attacker sends pushes with NaN/Inf rows, duplicate rows, a
// forged paramVersion of 2^53, rows of another shard, an unknown table, an unknown dense name, a
// row beyond the table, a NaN dense part beside valid rows, bytes that are no gradient, an upload
// announcing 4 GiB, and a valid push without a reply subject.
//
// Every one had to be rejected, so the job must end exactly as a clean run of the same plan does:
// the same saved parameters byte for byte (a one-trainer ps job is deterministic), all finite, the
// same RMSE; and metrics.json's shard counters must name each rejection, charged to the sender.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NatsServer, RemoteError, connect, requestLarge, requestWithRetry } from '@actorflow/bus';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { gradientCodec, lossReportCodec, subjects } from '@actorflow/protocol';
import { ownerOfDense, ownerOfRow } from '@actorflow/strategies';

const root = resolve(import.meta.dirname, '..');
const JOB = 'fuzzsem';
const PS_SHARDS = 2;
const ATTACKER = 66;
/** The model's factor dim, set explicitly so the attacker's rows have the right shape. */
const DIM = 16;
const dec = new TextDecoder();

function jobArgs(server: NatsServer, out: string): string[] {
  return [
    ...['apps/job/main.ts', '--job', JOB, '--strategy', 'ps', '--trainers', '1', '--data-shards', '1', '--ps-shards', String(PS_SHARDS)],
    ...['--model-flag', `dim=${DIM}`, '--epochs', '3', '--eval-every', '0', '--backend', 'wasm', '--nats-url', server.url, '--out', out],
  ];
}

const env = (): NodeJS.ProcessEnv => ({ ...process.env, NATS_URL: '', NATS_USER: '', NATS_PASSWORD: '', NATS_INBOX_PREFIX: '' });

interface ShardStatsJson {
  readonly shard: number;
  readonly pushes: number;
  readonly rejected: number;
  readonly rejectedByReason: Record<string, number>;
  readonly bySender: Record<string, { accepted: number; rejected: Record<string, number> }>;
  readonly noReply: number;
}
interface Metrics {
  readonly metrics: { rmse: number };
  readonly steps: number;
  readonly psShards?: ShardStatsJson[];
}

t.test('hostile pushes during a live ps job are all rejected, counted by name, and the model equals a clean run', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  t.teardown(() => server.stop());
  const cleanOut = join(tmpdir(), `actorflow-fuzz-clean-${process.pid}`);
  const attackedOut = join(tmpdir(), `actorflow-fuzz-attacked-${process.pid}`);
  for (const d of [cleanOut, attackedOut]) rmSync(d, { recursive: true, force: true });
  t.teardown(() => [cleanOut, attackedOut].forEach((d) => rmSync(d, { recursive: true, force: true })));

  // 1. The clean run.
  const clean = spawnSync(process.execPath, ['--import', 'tsx', ...jobArgs(server, cleanOut)], { cwd: root, encoding: 'utf8', timeout: 400_000, env: env() });
  t.equal(clean.status, 0, `the clean run finishes: ${clean.stderr.slice(-1500)}`);
  const cleanMetrics = JSON.parse(readFileSync(join(cleanOut, 'metrics.json'), 'utf8')) as Metrics;
  for (const s of cleanMetrics.psShards ?? []) t.equal(s.rejected, 0, `clean run: shard ${s.shard} rejected nothing`);
  const dim = DIM;

  // 2. The same plan again, attacked while it trains.
  const attacker = await connect({ servers: [server.url], name: 'attacker' });
  t.teardown(() => attacker.close());
  const training = new Promise<void>((resolveTraining) => {
    const sub = attacker.subscribe(subjects.loss, {
      callback: (_e, m) => {
        try {
          const r = lossReportCodec.decode(m.data);
          if (r.job === JOB && r.done !== true) {
            sub.unsubscribe();
            resolveTraining();
          }
        } catch {
          /* not ours */
        }
      },
    });
  });
  await attacker.flush();
  let stderr = '';
  const child = spawn(process.execPath, ['--import', 'tsx', ...jobArgs(server, attackedOut)], { cwd: root, env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGTERM'));
  await Promise.race([training, exited.then((c) => Promise.reject(new Error(`the attacked run ended (code ${c}) before training started: ${stderr.slice(-1500)}`)))]);

  const info = JSON.parse(dec.decode(await requestWithRetry(attacker, subjects.dataInfo(JOB), new Uint8Array(0), { deadlineMs: 30_000 }))) as { numUsers: number };
  const numUsers = info.numUsers;
  const usersOf = (k: number): number[] => Array.from({ length: numUsers }, (_, r) => r).filter((r) => ownerOfRow('user', r, PS_SHARDS) === k);
  const mine = usersOf(0);
  const foreign = usersOf(1)[0] as number;
  const versionOf = async (k: number): Promise<number> => (JSON.parse(dec.decode(await requestLarge(attacker, `${JOB}.ps.${k}.stats`, new Uint8Array(0)))) as { version: number }).version;
  const rows = (rs: number[], fill = 0.5): { rows: Int32Array; values: Float32Array } => ({ rows: Int32Array.from(rs), values: new Float32Array(rs.length * dim).fill(fill) });
  const encode = (sparse: Record<string, { rows: Int32Array; values: Float32Array }>, dense: Record<string, Float32Array>, paramVersion: number): Uint8Array =>
    gradientCodec.encode({ job: JOB, rank: ATTACKER, step: 0, paramVersion, count: 1, loss: 1, dense, sparse });
  const push = async (shard: number, payload: Uint8Array): Promise<unknown> => requestLarge(attacker, subjects.psPush(JOB, shard, ATTACKER), payload, { timeoutMs: 20_000 }).catch((e: unknown) => e);

  const nan = rows(mine.slice(0, 3));
  nan.values[dim + 1] = Number.NaN;
  nan.values[2 * dim + 1] = Number.POSITIVE_INFINITY;
  const meanOwner = ownerOfDense('mean', PS_SHARDS);
  const cases: { reason: string; shard: number; payload: (v: number) => Uint8Array }[] = [
    { reason: 'NON_FINITE', shard: 0, payload: (v) => encode({ user: nan }, {}, v) },
    { reason: 'DUPLICATE_ROW', shard: 0, payload: (v) => encode({ user: rows([mine[0]!, mine[1]!, mine[0]!]) }, {}, v) },
    { reason: 'BAD_VERSION', shard: 0, payload: () => encode({ user: rows([mine[0]!]) }, {}, 2 ** 53) },
    { reason: 'NOT_OWNER', shard: 0, payload: (v) => encode({ user: rows([mine[0]!, foreign]) }, {}, v) },
    { reason: 'UNKNOWN_TABLE', shard: 0, payload: (v) => encode({ users: rows([mine[0]!]) }, {}, v) },
    { reason: 'UNKNOWN_DENSE', shard: 0, payload: (v) => encode({ user: rows([mine[0]!]) }, { nope: new Float32Array(1) }, v) },
    { reason: 'BAD_ROW', shard: 0, payload: (v) => encode({ user: rows([numUsers + 7]) }, {}, v) },
    // Valid rows beside a NaN dense part: the whole push goes, its rows too.
    { reason: 'NON_FINITE', shard: meanOwner, payload: (v) => encode({ user: rows([usersOf(meanOwner)[0]!]) }, { mean: new Float32Array([Number.NaN]) }, v) },
    { reason: 'MALFORMED', shard: 1, payload: () => new Uint8Array([0xc1, 2, 3, 4]) },
  ];
  for (const c of cases) {
    const err = await push(c.shard, c.payload(await versionOf(c.shard)));
    t.ok(err instanceof RemoteError, `${c.reason} on shard ${c.shard}: refused with a coded remote error`);
    t.equal((err as RemoteError).code, c.reason, `${c.reason}: ${(err as Error).message.slice(0, 160)}`);
  }
  // An upload announcing 4 GiB: refused at the handshake, before a byte is held.
  const h = natsHeaders();
  h.set('Af-Upload', String(4 * 1024 ** 3));
  const big = await attacker.request(subjects.psPush(JOB, 0, ATTACKER), new Uint8Array(0), { timeout: 20_000, headers: h });
  t.equal(big.headers?.get('Af-Error'), 'TOO_LARGE', `a 4 GiB upload is refused at once: ${dec.decode(big.data).slice(0, 160)}`);
  // A valid push without a reply subject: never applied, counted.
  attacker.publish(subjects.psPush(JOB, 0, ATTACKER), encode({ user: rows([mine[2]!]) }, {}, await versionOf(0)));
  await attacker.flush();

  const code = await exited;
  t.equal(code, 0, `the attacked run finishes: ${stderr.slice(-1500)}`);
  const attacked = JSON.parse(readFileSync(join(attackedOut, 'metrics.json'), 'utf8')) as Metrics;
  const s = attacked.psShards ?? [];
  t.equal(s.length, PS_SHARDS, 'metrics.json has every shard');
  const expected: Record<number, Record<string, number>> = {};
  for (const c of [...cases, { reason: 'TOO_LARGE', shard: 0 }]) expected[c.shard] = { ...expected[c.shard], [c.reason]: (expected[c.shard]?.[c.reason] ?? 0) + 1 };
  for (const shard of s) {
    t.same(shard.rejectedByReason, expected[shard.shard] ?? {}, `shard ${shard.shard}: each rejection counted under its name`);
    t.same(shard.bySender[String(ATTACKER)]?.accepted ?? 0, 0, `shard ${shard.shard}: nothing of the attacker's applied`);
    t.same(
      shard.bySender[String(ATTACKER)]?.rejected ?? {},
      Object.fromEntries(Object.entries(expected[shard.shard] ?? {}).filter(([r]) => r !== 'MALFORMED' && r !== 'TOO_LARGE')),
      'charged to the attacker rank',
    );
    // Bytes that are no gradient and an oversize upload's handshake carry no rank: charged to sender -1 (unknown).
    t.same(
      shard.bySender['-1']?.rejected ?? {},
      Object.fromEntries(Object.entries(expected[shard.shard] ?? {}).filter(([r]) => r === 'MALFORMED' || r === 'TOO_LARGE')),
      'unattributable ones charged to sender -1',
    );
  }
  t.equal(s.find((x) => x.shard === 0)?.noReply, 1, 'the push without a reply subject was counted, not applied');
  t.match(stderr + readFileSync(join(attackedOut, 'logs', 'aggregator-0.log'), 'utf8'), /4294967296 B, above the limit/, 'the oversize upload is logged by the shard');
  t.equal(s.find((x) => x.shard === 0)?.rejectedByReason.TOO_LARGE, 1, 'and counted in its stats as TOO_LARGE');

  // The model: what a clean run makes, byte for byte, all finite.
  const cleanParams = readFileSync(join(cleanOut, 'model', 'params.bin'));
  const attackedParams = readFileSync(join(attackedOut, 'model', 'params.bin'));
  t.ok(existsSync(join(attackedOut, 'model', 'params.bin')), 'the attacked run saved its model (the save refuses non-finite parameters)');
  t.ok(cleanParams.equals(attackedParams), 'the saved parameters equal the clean run’s, byte for byte');
  t.equal(attacked.metrics.rmse, cleanMetrics.metrics.rmse, `the same final RMSE (${cleanMetrics.metrics.rmse})`);
  t.equal(
    s.reduce((a, x) => a + x.pushes, 0),
    (cleanMetrics.psShards ?? []).reduce((a, x) => a + x.pushes, 0),
    'the same pushes applied as in the clean run',
  );
});
