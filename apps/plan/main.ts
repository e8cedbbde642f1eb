// npx nx run plan -- --blueprint FILE --use all|gpus|cpus|energy --model M --dataset D [--batch-size B] [--strategy auto|ps|mirrored] [--out plan.json]
// Selects machines (a blueprint's, or the node agents answering on the bus), places the job's
// actors on them, picks the strategy and predicts the step time, and prints why. The planner is
// @actorflow/cluster's planJob; this file gathers its inputs.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { busFlagOptions, busFlagsHelp, connect, busOptionsFrom, FlagError, intFlag, runActor } from '@actorflow/bus';
import {
  capacityOfInfo,
  capacityOfMachine,
  discoverNodes,
  loadBlueprint,
  modelCost,
  modelFlagSizing,
  parseSelectionPolicy,
  planJob,
  renderPlan,
  selectMachines,
  SELECTION_POLICIES,
  type RequestedStrategy,
} from '@actorflow/cluster';
import type { NodeInfo } from '@actorflow/protocol';
import { resolveUserPath, SYNTHETIC_SIZES, type SyntheticSize } from '@actorflow/data';
import { loadJobDataset } from '@actorflow/feed';
import { modelEntry, type Hyper } from '@actorflow/models';

const usage = `Usage: npx nx run plan -- [options]
  --blueprint FILE        the machines (.json, or .yaml/.yml; see docs/CLUSTER.md); without it, the node agents on the bus
  --use POLICY            ${SELECTION_POLICIES.join('|')} (default all)
  --model M               a registered model (default mf)
  --dataset D             synthetic:tiny|small|medium|ml20m, a ratings file, mnist:bundled (default synthetic:small)
  --split SPEC            the job's split (default random:0.1)
  --hyper KEY=VALUE       a model hyper-parameter (repeatable)
  --model-flag FLAG=VALUE the job's model flags (repeatable): dim and init-std size the model (as --hyper),
                          optimizer (and momentum) the optimizer state; others change no size
  --batch-size B          per-trainer batch (default: the model's recommended, else 1024)
  --epochs N              the job's epochs (the prediction then gives the whole training time)
  --strategy S            auto|ps|mirrored (default auto)
  --trainers N            trainers (default: one per selected machine)
  --link-mbps X           link throughput where none was measured (default 100)
  --timeout-ms MS         how long to wait for agents (default 2000)
  --out FILE              also write the plan as JSON
  --json                  print the plan as JSON instead of the table
${busFlagsHelp}`;

function parseHyper(list: readonly string[]): Hyper {
  const out: Record<string, number | string | boolean> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new FlagError(`--hyper takes KEY=VALUE, got '${kv}'`);
    const raw = kv.slice(eq + 1);
    out[kv.slice(0, eq)] = raw === 'true' ? true : raw === 'false' ? false : raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

/** The data facts the planner needs; synthetic sizes without generating the data. */
async function datasetFacts(source: string, split: string | undefined): Promise<{ numUsers: number; numItems: number; globalMean: number; numClasses: number; trainRows: number }> {
  if (source.startsWith('synthetic:')) {
    const size = source.slice('synthetic:'.length);
    if (!(size in SYNTHETIC_SIZES)) throw new FlagError(`unknown dataset '${source}'; use synthetic:${Object.keys(SYNTHETIC_SIZES).join('|synthetic:')} or a file path`);
    const s = SYNTHETIC_SIZES[size as SyntheticSize];
    return { numUsers: s.users, numItems: s.items, globalMean: 3.5, numClasses: 10, trainRows: Math.round(s.users * s.perUser * 0.9) };
  }
  const ds = await loadJobDataset({ source, seed: 42, ...(split !== undefined ? { split } : {}) });
  const trainRows = ds.images !== undefined ? ds.images.train.n : ds.train.length;
  return { numUsers: ds.numUsers, numItems: ds.numItems, globalMean: ds.globalMean, numClasses: ds.images?.numClasses ?? 10, trainRows };
}

async function askAgents(flags: Readonly<Record<string, string | boolean | undefined>>, timeoutMs: number): Promise<NodeInfo[]> {
  const nc = await connect({ ...busOptionsFrom(flags, process.env), name: 'plan', maxReconnectAttempts: 0 });
  try {
    return await discoverNodes(nc, { timeoutMs });
  } finally {
    await nc.close();
  }
}

await runActor('plan', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      blueprint: { type: 'string' },
      use: { type: 'string' },
      model: { type: 'string' },
      dataset: { type: 'string' },
      split: { type: 'string' },
      hyper: { type: 'string', multiple: true },
      'model-flag': { type: 'string', multiple: true },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      strategy: { type: 'string' },
      trainers: { type: 'string' },
      'link-mbps': { type: 'string' },
      'timeout-ms': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const { hyper: hyperList, 'model-flag': modelFlagList, ...flags } = v;
  const policy = parseSelectionPolicy(v.use ?? 'all');
  const strategy = v.strategy ?? 'auto';
  if (!['auto', 'ps', 'mirrored'].includes(strategy)) throw new FlagError(`--strategy must be auto, ps or mirrored, got '${strategy}'`);
  const modelName = v.model ?? 'mf';
  const entry = modelEntry(modelName);
  const batchSize = intFlag('batch-size', v['batch-size'], entry.recommended?.batchSize ?? 1024, 1);
  const epochs = v.epochs !== undefined ? intFlag('epochs', v.epochs, 1, 1) : undefined;
  // The job's --model-flag dim=… / optimizer=… size the model as its aggregators will build it; --hyper wins.
  const sizing = modelFlagSizing(modelFlagList ?? [], entry.recommended?.optimizer?.name);
  const hyper = { ...sizing.hyper, ...parseHyper(hyperList ?? []) };
  const timeoutMs = intFlag('timeout-ms', v['timeout-ms'], 2000, 1);
  const linkMBps = v['link-mbps'] !== undefined ? Number(v['link-mbps']) : undefined;
  if (linkMBps !== undefined && !(linkMBps > 0)) throw new FlagError(`--link-mbps must be a positive number, got '${v['link-mbps']}'`);
  const busNamed = v['nats-url'] !== undefined || (process.env.NATS_URL ?? '') !== '';
  let nodes;
  if (v.blueprint !== undefined) {
    const bp = loadBlueprint(resolveUserPath(v.blueprint));
    // Agents that answer (when a server is named) give measured figures for their machines.
    const infos = busNamed ? await askAgents(flags, timeoutMs) : [];
    const byName = new Map(infos.map((i) => [i.name, i]));
    nodes = selectMachines(bp.machines, policy).map((m) => capacityOfMachine(m, byName.get(m.name)));
  } else {
    const infos = await askAgents(flags, timeoutMs);
    if (infos.length === 0)
      throw new FlagError(
        `no node agent answered within ${timeoutMs} ms on ${busOptionsFrom(flags, process.env).servers.join(',')}: start \`npx nx serve node\` on each machine, or pass --blueprint FILE`,
      );
    nodes = selectMachines(infos, policy).map(capacityOfInfo);
  }
  const dataset = v.dataset ?? 'synthetic:small';
  const facts = await datasetFacts(dataset, v.split);
  const model = modelCost(modelName, facts, { hyper, trainRows: facts.trainRows });
  const plan = planJob({
    nodes,
    model,
    dataset: { name: dataset, trainRows: facts.trainRows },
    batchSize,
    strategy: strategy as RequestedStrategy,
    ...(v.trainers !== undefined ? { trainers: intFlag('trainers', v.trainers, 1, 1) } : {}),
    ...(linkMBps !== undefined ? { defaultLinkMBps: linkMBps } : {}),
    ...(sizing.optimizerSlots !== undefined ? { optimizerSlots: sizing.optimizerSlots } : {}),
    ...(epochs !== undefined ? { epochs } : {}),
    hyper,
  });
  if (v.out !== undefined) writeFileSync(resolveUserPath(v.out), `${JSON.stringify(plan, null, 2)}\n`);
  process.stdout.write(v.json === true ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
  if (v.out !== undefined && v.json !== true) process.stdout.write(`plan written to ${v.out}\n`);
});
