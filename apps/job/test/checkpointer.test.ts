// The launcher's checkpointer over a real nats-server (issue 13): a mirrored replica holding a NaN
// is never written to disk (a rollback or --resume would have nothing but it), a finite newer one
// is; a rollback's rewind removes what the diverged run wrote and lets the restored run write its
// own steps again.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { connect, HandlerError, NatsServer, serveLarge } from '@actorflow/bus';
import { listCheckpoints } from '@actorflow/checkpoint';
import { subjects, trainerStateCodec, TRAINER_STATE_FORMAT } from '@actorflow/protocol';
import { JobCheckpointer } from '../src/checkpointer.ts';

const replica = (step: number, value: number): Uint8Array =>
  trainerStateCodec.encode({
    format: TRAINER_STATE_FORMAT,
    job: 'cpj',
    worldSize: 1,
    step,
    epoch: 0,
    stepInEpoch: step,
    params: { tables: { item: { rows: 1, dim: 2, data: Float32Array.from([1, value]) } }, dense: {} },
    optimizer: {},
  });

t.test('a non-finite replica is not checkpointed; finite ones are, and a rewind lets the restored run write its steps again', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const root = mkdtempSync(join(tmpdir(), 'actorflow-ckpt-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  let stored: Uint8Array | undefined;
  serveLarge(nc, subjects.ctl('cpj', 'state'), (payload) => {
    if (stored === undefined) throw new HandlerError('NO_STATE', 'none yet');
    const { after } = JSON.parse(new TextDecoder().decode(payload)) as { after: number };
    if (trainerStateCodec.decode(stored).step <= after) throw new HandlerError('NOT_NEWER', 'not newer');
    return stored;
  });
  await nc.flush();
  const lines: string[] = [];
  const ckpt = new JobCheckpointer({
    nc,
    job: 'cpj',
    strategy: 'mirrored',
    model: 'mf',
    root,
    keep: 5,
    every: { steps: 2 },
    psShards: 0,
    dataShards: 0,
    progress: { stepsDone: 0, rankSteps: () => ({}) },
    worldSize: () => 1,
    log: (l) => void lines.push(l),
  });
  const steps = async (): Promise<number[]> => (await listCheckpoints(root)).map((l) => l.step);

  t.equal(await ckpt.take('periodic'), false, 'nothing stored yet: skipped');
  stored = replica(2, 0.5);
  t.equal(await ckpt.take('periodic'), true);
  stored = replica(4, Number.NaN);
  t.equal(await ckpt.take('periodic'), false, 'a NaN in the replica: not written');
  t.equal(ckpt.nonFinite, 1);
  t.match(lines.join('\n'), /checkpoint of step 4 \(periodic\) not written: trainer\.bin: table item, row 0, is NaN .*stays step 2/);
  stored = replica(6, 0.25);
  t.equal(await ckpt.take('periodic'), true, 'a finite newer one is');
  t.same(await steps(), [6, 2]);
  t.equal(ckpt.latest?.step, 6);

  // A rollback restores step 2: step 6 (the diverged run's) goes, and step 4 of the restored run is new.
  await ckpt.rewind(2);
  t.same(await steps(), [2], 'the newer checkpoint of the diverged run is removed');
  t.match(lines.join('\n'), /rollback: removed 1 checkpoint\(s\) newer than step 2/);
  stored = replica(4, 0.75);
  t.equal(await ckpt.take('periodic'), true, 'the restored run’s step 4 is written though 6 was seen before');
  t.same(await steps(), [4, 2]);
  await ckpt.rewind(undefined);
  t.same(await steps(), [], 'back to the start: none left');
  t.equal(ckpt.written, 3);
});
