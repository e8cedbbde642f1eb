// npx nx serve aggregator [-- --ps-shard 0 --ps-shards 2 --model mf --dim 32 --lr 0.01 …]
// Owns the job configuration (answers <job>.ctl.config), holds one shard of the parameters for
// ps trainers, and keeps the latest snapshot mirrored rank 0 sends (<job>.ctl.checkpoint in,
// <job>.ctl.snapshot out) — so `nx serve aggregator` with no flags serves either strategy.
// With no NATS_URL and nothing on the default address, it starts a local nats-server.
import { parseArgs } from 'node:util';
import { busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, registerActorService, runActor, type NatsConnection } from '@actorflow/bus';
import { resolveUserPath } from '@actorflow/data';
import { evalReportCodec, lossReportCodec, subjects } from '@actorflow/protocol';
import { ScalarWriter, summarizeEval, summarizeLoss } from '@actorflow/tensorboard';
import { join } from 'node:path';
import { exitActor, finishByHand, listModels, mintJobId, onJobEnd, supervised, workloadFor } from '@actorflow/workloads';

const usage = `Usage: npx nx serve aggregator -- [options]
  --job ID                job id (default: a fresh one, e.g. hand-mf3k2x9a-4f1c, that actors without --job join)
  --strategy ps|mirrored  the default strategy reported in the config (both are served)
  --ps-shard I            this aggregator's parameter shard (default 0)
  --ps-shards K           parameter shards in the job (default 1)
  --data-shards K         data shards to expect (default 1)
  --model NAME            model (default mf); --list-models shows every model with its hyper-parameters;
                          knn: neighbourhood kNN (--hyper kind=item|user similarity=pearson k=40 blocks=8 …)
  --hyper KEY=VALUE       a model hyper-parameter (repeatable), e.g. --hyper dim=64 --hyper layers=64,32
  --dim D, --init-std S   shortcuts for --hyper dim=D / initStd=S
  --optimizer NAME        adam, adagrad, sgd or rmsprop (default: the model's recommended, else adam);
                          --lr, --l2, --momentum (defaults: the model's recommended, else 0.01 / 2e-4)
  --dense-updates         optimizer touches every row each step (PyTorch-style dense Adam with weight decay)
  --staleness POLICY      none (default), scale, drop:N, bound:N (SSP)
  --seed N                initialisation seed (default 42)
  --world-size N          ranks of a mirrored job (default 1; trainers may override)
  --restore-shard FILE    ps: start this parameter shard from a checkpoint part (parameters, optimizer state, version)
  --restore-trainer FILE  mirrored: start with this replica state (a checkpoint's trainer.bin) for the ranks to resume from
  --out DIR               by hand: when the trainers are done, take the final evaluation and write the model
                          (DIR/model), metrics.json, eval.jsonl, eval.csv and TensorBoard scalars (DIR/tensorboard)
                          as the launcher does
  --dataset SPEC, --split SPEC   by hand: the data shards' dataset and split, recorded in DIR/model/config.json
                          for \`recommend\` (default synthetic:small, random:0.1 — the data shard's defaults)
  --keep-serving          by hand: keep serving after the job ends (by default the job's actors exit then)
${busFlagsHelp}`;

await runActor('aggregator', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' },
      strategy: { type: 'string' },
      'ps-shard': { type: 'string' },
      'ps-shards': { type: 'string' },
      'data-shards': { type: 'string' },
      model: { type: 'string' },
      dim: { type: 'string' },
      'init-std': { type: 'string' },
      optimizer: { type: 'string' },
      lr: { type: 'string' },
      l2: { type: 'string' },
      momentum: { type: 'string' },
      hyper: { type: 'string', multiple: true },
      'list-models': { type: 'boolean' },
      'dense-updates': { type: 'boolean' },
      staleness: { type: 'string' },
      seed: { type: 'string' },
      'world-size': { type: 'string' },
      'restore-shard': { type: 'string' },
      'restore-trainer': { type: 'string' },
      out: { type: 'string' },
      dataset: { type: 'string' },
      split: { type: 'string' },
      'keep-serving': { type: 'boolean' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  if (v['list-models'] === true) {
    for (const m of listModels())
      console.log(
        `${m.name.padEnd(10)} ${m.description}\n${''.padEnd(11)}${Object.entries(m.hyper)
          .map(([k, d]) => `${k}=${String(d)}`)
          .join(' ')}`,
      );
    return;
  }
  let workload;
  try {
    workload = workloadFor(v.model ?? 'mf');
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  // No --job: the config owner (shard 0) mints a fresh id that the other actors find ($SRV.INFO).
  if (v.job === undefined && (v['ps-shard'] ?? '0') !== '0') throw new FlagError('--ps-shard above 0 needs --job: the id aggregator shard 0 printed');
  const minted = v.job === undefined ? mintJobId() : undefined;
  // The model's workload checks its flags before anything connects, then serves (libs/workloads).
  const role = workload.aggregator(v.model ?? 'mf', minted !== undefined ? { ...v, job: minted } : v);
  if (minted !== undefined) role.log(`job ${minted} (a fresh id: no --job given); actors started without --job join it, or pass --job ${minted}`);
  const started = Date.now();
  const out = v.out !== undefined ? resolveUserPath(v.out) : undefined;
  const { hyper: _hyper, ...connFlags } = v;
  const conn = await connectActor(connFlags, { name: role.name, startLocalServer: true, log: role.log });
  // The aggregator's counters (applied, dropped, rejected by reason) in $SRV.STATS once it serves.
  const live: { stats?: () => Record<string, number> } = {};
  await registerActorService(conn.nc, { role: 'aggregator', job: role.job, rank: role.rank, stats: () => live.stats?.() ?? {} });
  const served = await role.serve(conn.nc);
  live.stats = () => served.stats();
  exitOnSignals(conn, () => served.stop());
  if (supervised()) return; // the launcher ends the job and stops this process
  const keepServing = v['keep-serving'] === true;
  if (keepServing && out === undefined) return; // serves until stopped
  if (!served.configOwner) {
    onJobEnd(conn.nc, role.job, () => void exitActor(conn, () => served.stop()), { keepServing });
    return;
  }
  // By hand, the config owner ends the job (libs/workloads): final evaluation, the saved model, the end announced.
  const dataset = { source: v.dataset ?? 'synthetic:small', split: v.split ?? 'random:0.1', seed: served.config.seed };
  const board = out !== undefined ? boardOf(conn.nc, role.job, join(out, 'tensorboard')) : undefined;
  await finishByHand({ nc: conn.nc, workload, config: served.config, dataset, started, log: role.log, ...(out !== undefined ? { out } : {}) });
  board?.close();
  if (keepServing) {
    role.log(`job ${role.job} has ended; still serving (--keep-serving)`);
    return;
  }
  role.log(`job ${role.job} has ended: exiting`);
  // A moment for the other actors to hear the end while this process's nats-server (if it started one) still runs.
  await new Promise((r) => setTimeout(r, 500));
  await exitActor(conn, () => served.stop());
});

/** TensorBoard scalars of a by-hand job, as the launcher writes them: loss and ex/s per rank, eval metrics (DIR/tensorboard). */
function boardOf(nc: NatsConnection, job: string, dir: string): { close(): void } {
  const board = new ScalarWriter(dir);
  const subs = [
    nc.subscribe(subjects.loss, {
      callback: (_e, m) => {
        try {
          const r = lossReportCodec.decode(m.data);
          if (r.job === job && r.done !== true) summarizeLoss(board, r);
        } catch {
          /* not a loss report */
        }
      },
    }),
    nc.subscribe(subjects.eval, {
      callback: (_e, m) => {
        try {
          const r = evalReportCodec.decode(m.data);
          if (r.job === job) summarizeEval(board, r);
        } catch {
          /* not an eval report */
        }
      },
    }),
  ];
  return {
    close: () => {
      for (const s of subs) s.unsubscribe();
      board.close();
    },
  };
}
