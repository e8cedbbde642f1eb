import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  capacityOfMachine,
  cpuShare,
  loadBlueprint,
  mirroredRequestsPerStep,
  psRequestsPerStep,
  MEMORY_HEADROOM,
  modelCost,
  modelFlagSizing,
  planJob,
  PlanError,
  renderPlan,
  selectMachines,
  stepBytesOneWay,
  type NodeCapacity,
  type PlanInput,
  type SelectionPolicy,
  type ShardingPlan,
} from '../mod.ts';

const bp = loadBlueprint(join(import.meta.dirname, 'fixtures', 'blueprint.json'));
const small = { numUsers: 1000, numItems: 1700, globalMean: 3.5, numClasses: 10 };
const mf = modelCost('mf', small);
const dataset = { name: 'synthetic:small', trainRows: 90_000 };
const nodesOf = (policy: SelectionPolicy): NodeCapacity[] => selectMachines(bp.machines, policy).map((m) => capacityOfMachine(m));

/** The invariants every plan keeps: memory never exceeded, every role placed, shards spread. */
function checkInvariants(t: Test, plan: ShardingPlan, nodes: readonly NodeCapacity[]): void {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const m of plan.machines) {
    const n = byName.get(m.name);
    t.ok(n !== undefined, `${m.name} is a selected machine`);
    t.ok(m.plannedBytes <= (n?.memoryBytes ?? 0) * MEMORY_HEADROOM, `${m.name}: ${m.plannedBytes} planned ≤ ${MEMORY_HEADROOM} of its memory`);
    const placed = plan.placements.filter((p) => p.machine === m.name).reduce((s, p) => s + p.memoryBytes, 0);
    t.equal(placed, m.plannedBytes, `${m.name}: the loads add up`);
  }
  for (const p of plan.placements) t.ok(byName.has(p.machine), `${p.role}-${p.index} is on a selected machine`);
  const count = (role: string): number => plan.placements.filter((p) => p.role === role).length;
  t.equal(count('trainer'), plan.trainers, 'every trainer placed');
  t.equal(count('data-shard'), plan.dataShards, 'every data shard placed');
  t.ok(plan.dataShards >= 1);
  t.equal(count('evaluator'), 1, 'one evaluator');
  if (plan.strategy === 'ps') {
    t.equal(count('ps-shard'), plan.psShards, 'every parameter shard placed');
    t.ok(plan.psShards >= 1);
    t.equal(count('aggregator'), 0);
  } else {
    t.equal(count('aggregator'), 1, 'the mirrored aggregator placed');
    t.equal(plan.psShards, 0);
  }
  // Spread: no machine has two of a role while another selected machine has none of it (when it fits there).
  for (const role of ['trainer', 'data-shard', 'ps-shard']) {
    const per = nodes.map((n) => plan.placements.filter((p) => p.role === role && p.machine === n.name).length);
    if (per.reduce((a, b) => a + b, 0) <= nodes.length) t.ok(Math.max(...per) <= 1, `${role}s are on distinct machines: ${per.join(',')}`);
  }
  t.same(JSON.parse(JSON.stringify(plan)), plan, 'the plan is plain JSON');
  t.ok(plan.predicted.stepMs > 0 && plan.predicted.examplesPerSec > 0 && plan.predicted.epochSeconds > 0);
  t.ok(plan.reasons.length > 0);
}

t.test('a plan on each of the four selections keeps the invariants', async (t) => {
  for (const policy of ['all', 'gpus', 'cpus', 'energy'] as const) {
    const nodes = nodesOf(policy);
    const plan = planJob({ nodes, model: mf, dataset, batchSize: 1024 });
    t.equal(plan.format, 'actorflow.plan/1');
    t.equal(plan.trainers, nodes.length, `${policy}: one trainer per machine`);
    t.same(
      plan.machines.map((m) => m.name),
      nodes.map((n) => n.name),
    );
    checkInvariants(t, plan, nodes);
  }
});

t.test('small model, compute-bound, fast links: mirrored, with the reason', async (t) => {
  const nodes = nodesOf('gpus').map((n) => ({ ...n, calibration: { sparseExamplesPerSec: 100_000, matmulGflops: 5, linkMBps: 1000, requestMs: 0.05 } }));
  const plan = planJob({ nodes, model: mf, dataset, batchSize: 1024, strategy: 'auto' });
  t.equal(plan.strategy, 'mirrored');
  t.equal(plan.requestedStrategy, 'auto');
  t.match(plan.reasons[0], /mirrored: the replica fits every machine and the all-gather .* (small|not more) next to the compute/);
  t.same(plan.risks, [], 'no staleness in synchronous training');
  t.equal(plan.alternative?.strategy, 'ps');
  t.ok(plan.alternative !== undefined && 'predicted' in plan.alternative);
  t.notOk(
    plan.assumptions.some((a) => /not measured/.test(a)),
    'measured machines need no assumed figures',
  );
  checkInvariants(t, plan, nodes);
  // The prediction's parts: the step is compute + all-gather + the batch round trip.
  t.ok(plan.predicted.stepMs >= plan.predicted.computeMs + plan.predicted.communicationMs);
});

t.test('a huge table does not fit a replica: ps with its tables sharded, staleness stated', async (t) => {
  const huge = modelCost('mf', { ...small, numUsers: 40_000_000 }, { hyper: { dim: 64 } });
  t.ok(huge.parameterBytes > 10e9, `${huge.parameterBytes} bytes of parameters`);
  const nodes = nodesOf('all');
  const plan = planJob({ nodes, model: huge, dataset, batchSize: 1024 });
  t.equal(plan.strategy, 'ps');
  t.match(plan.reasons[0], /ps: a full replica \(.* GiB with optimizer state\) does not fit every machine, so the tables are sharded over \d+ parameter shards/);
  t.ok(plan.alternative !== undefined && 'infeasible' in plan.alternative && /mirrored/.test(plan.alternative.strategy));
  t.match(plan.risks.join('\n'), /staleness/);
  checkInvariants(t, plan, nodes);
  // The parameters and their optimizer state are all held, spread over every machine.
  t.equal(plan.psShards, nodes.length);
  const held = plan.placements.filter((p) => p.role === 'ps-shard').reduce((s, p) => s + p.memoryBytes, 0);
  t.ok(held >= huge.parameterBytes * 3, `${held} bytes held by the shards`);
  t.throws(() => planJob({ nodes, model: huge, dataset, batchSize: 1024, strategy: 'mirrored' }), {
    name: 'PlanError',
    message: /--strategy mirrored does not fit: mirrored: trainer \d+ on .* needs a full replica/,
  });
});

t.test('heterogeneous machines: ps is faster and its staleness risk is quantified', async (t) => {
  const nodes = nodesOf('all').map((n, i) => ({ ...n, calibration: { sparseExamplesPerSec: i === 0 ? 2_000_000 : 100_000, matmulGflops: 5, linkMBps: 1000, requestMs: 0.05 } }));
  const plan = planJob({ nodes, model: mf, dataset, batchSize: 1024 });
  t.equal(plan.strategy, 'ps');
  t.match(plan.reasons[0], /the machines differ (19|20)\.\d× in speed: mirrored would wait for the slowest every step; ps is predicted faster/);
  t.match(plan.risks[0], /staleness: the fastest trainer is ~(19|20)\.\d× the slowest.*--staleness bound:40/);
  checkInvariants(t, plan, nodes);
  const forced = planJob({ nodes, model: mf, dataset, batchSize: 1024, strategy: 'mirrored' });
  t.equal(forced.strategy, 'mirrored');
  t.same(forced.reasons[0], 'strategy mirrored: asked for');
  t.match(forced.risks[0], /stragglers: every step waits for the slowest machine \((19|20)\.\d× slower/);
});

t.test('communication-bound on slow links: the faster strategy, and why', async (t) => {
  const nodes = nodesOf('cpus').map((n) => ({ ...n, calibration: { sparseExamplesPerSec: 5_000_000, matmulGflops: 5, linkMBps: 10, requestMs: 0.05 } }));
  const plan = planJob({ nodes, model: mf, dataset, batchSize: 1024 });
  t.match(plan.reasons[0], /the all-gather .* outweighs the compute/);
  t.equal(plan.strategy, 'ps', 'ps moves each trainer’s rows once; the all-gather moves every rank’s to every rank');
  t.ok(plan.alternative !== undefined && 'predicted' in plan.alternative && plan.alternative.predicted.examplesPerSec <= plan.predicted.examplesPerSec);
  t.match(plan.assumptions.join('\n'), /per-step bytes/);
});

t.test('assumptions name what was not measured or declared', async (t) => {
  const nodes = [capacityOfMachine({ name: 'bare' }), capacityOfMachine({ name: 'm', memoryGiB: 16, cores: 4 })];
  t.equal(nodes[0].memoryBytes, 8 * 1024 ** 3);
  const plan = planJob({ nodes, model: mf, dataset, batchSize: 256, defaultLinkMBps: 50, trainers: 3 });
  t.equal(plan.trainers, 3);
  const text = plan.assumptions.join('\n');
  t.match(text, /bare: memory not declared, assumed 8 GiB/);
  t.match(text, /not measured \(no agent answered\): bare, m/);
  t.match(text, /assumed 50 MB\/s/);
  t.same(
    plan.machines.map((m) => m.calibrated),
    [false, false],
  );
});

t.test("an agent's info wins over the blueprint, but not over its energy flag", async (t) => {
  const info = {
    name: 'eco-1',
    address: '10.0.0.4',
    cores: 2,
    cpuModel: 'x',
    memoryBytes: 4 * 1024 ** 3,
    freeMemoryBytes: 1,
    gpus: [],
    backends: ['cpu'],
    labels: {},
    energyEfficient: false,
    calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 1, ms: 10 },
    platform: 'linux',
    pid: 1,
    running: 0,
    ts: 0,
  };
  const c = capacityOfMachine(bp.machines[3], info);
  t.same(c, { name: 'eco-1', cores: 2, memoryBytes: 4 * 1024 ** 3, gpus: 0, energyEfficient: true, calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 1 } });
});

t.test('per-step bytes follow the gathered rows and the dense tensors', async (t) => {
  // MF: user and item factors and biases, each batch of 100 gathers ≤ 100 rows of each; the global mean is dense.
  const dim = mf.tables.find((x) => x.name === 'user')?.dim ?? 0;
  t.ok(dim > 0);
  t.equal(stepBytesOneWay(mf, 100), 100 * (2 * dim + 2) * 4 + mf.denseParams * 4);
  const ncf = modelCost('ncf', small);
  t.ok(ncf.denseParams > 0);
  t.equal(stepBytesOneWay(ncf, 10), ncf.tables.reduce((s, x) => s + Math.min(x.rows, 10) * x.dim * 4, 0) + ncf.denseParams * 4);
  const vae = modelCost('multvae', small, { trainRows: 50_000 });
  t.equal(vae.rowsPerExample, 50, 'interactions models gather a whole history per example');
  t.throws(() => modelCost('nope', small), /unknown model 'nope'/);
});

t.test('nothing fits, bad inputs: PlanError with what to do', async (t) => {
  const tiny: NodeCapacity[] = [{ name: 'pi', cores: 1, memoryBytes: 256 * 1024 ** 2, gpus: 0, energyEfficient: true }];
  t.throws(() => planJob({ nodes: tiny, model: mf, dataset, batchSize: 1024 }), { name: 'PlanError', message: /neither strategy fits the selected machines/ });
  const base: PlanInput = { nodes: nodesOf('all'), model: mf, dataset, batchSize: 1024 };
  const cases: [Partial<PlanInput>, RegExp][] = [
    [{ nodes: [] }, /selection is empty/],
    [{ batchSize: 0 }, /batch size must be a positive integer/],
    [{ trainers: 0 }, /trainers must be a positive integer/],
    [{ dataset: { name: 'd', trainRows: 0 } }, /has no training rows/],
    [{ nodes: [{ name: 'z', cores: 1, memoryBytes: 0, gpus: 0, energyEfficient: false }] }, /machine z: unknown or zero memory/],
    [{ nodes: [{ name: 'z', cores: 1, memoryBytes: 1e9, gpus: 0, energyEfficient: false, calibration: { sparseExamplesPerSec: 0, matmulGflops: 1 } }] }, /calibration figures must be positive/],
  ];
  for (const [patch, msg] of cases) t.throws(() => planJob({ ...base, ...patch }), { name: 'PlanError', message: msg });
  const err = t.throws(() => planJob({ ...base, nodes: tiny, strategy: 'ps' })) as PlanError;
  t.match(err.message, /--strategy ps does not fit: .*needs .* but the most any selected machine has left is/);
});

t.test('the table shows machines, actors, the prediction and the reasons', async (t) => {
  const ps = planJob({ nodes: nodesOf('all'), model: modelCost('mf', { ...small, numUsers: 40_000_000 }, { hyper: { dim: 64 } }), dataset, batchSize: 1024 });
  const text = renderPlan(ps);
  t.match(text, /^plan: mf on synthetic:small, batch 1024, strategy ps \(auto\)/);
  t.match(text, /5 trainer\(s\), \d data shard\(s\), \d+ parameter shard\(s\), 1 evaluator/);
  t.match(text, /machine\s+memory\s+planned\s+calibrated\s+actors\n-+/);
  t.match(text, /gpu-1\s+64\.0 GiB\s+[\d.]+ GiB\s+no\s+.*trainer-\d/);
  t.match(text, /predicted step: [\d.]+ ms \(compute [\d.]+ ms, communication [\d.]+ ms\), \d+ examples\/s/);
  t.match(text, /mirrored instead: does not fit/);
  t.match(text, /why:\n {2}- ps: a full replica/);
  t.match(text, /risks:\n {2}- staleness/);
  t.match(text, /assumptions:\n/);
  const mirrored = planJob({ nodes: [capacityOfMachine({ name: 'solo', memoryGiB: 16 })], model: mf, dataset, batchSize: 1024, strategy: 'mirrored' });
  const m = renderPlan(mirrored);
  t.match(m, /1 trainer\(s\), 1 data shard\(s\), 1 aggregator, 1 evaluator/);
  t.match(m, /ps instead: [\d.]+ ms per step/);
  t.notMatch(m, /risks:/);
  t.equal(mirrored.predicted.communicationMs, 1, 'one rank: no all-gather, only its batch request (the assumed 0.5 ms, × 2 for the trainer and data shard on its one core)');
});

t.test('the per-request cost and the cores shared by busy actors enter the step time', async (t) => {
  t.equal(psRequestsPerStep(3), 7, 'ps: a pull and a push per shard and a batch');
  t.equal(mirroredRequestsPerStep(1), 1, 'one rank: its batch only');
  t.equal(mirroredRequestsPerStep(2), 4, 'two ranks: batch, gradient up, result down, rank 0 taking the other');
  const node = (name: string, cores: number): NodeCapacity => ({ name, cores, memoryBytes: 16 * 1024 ** 3, gpus: 0, energyEfficient: false });
  const pl = (role: 'trainer' | 'ps-shard' | 'data-shard' | 'evaluator', machine: string) => ({ role, index: 0, machine, memoryBytes: 1 });
  const placements = [pl('trainer', 'a'), pl('ps-shard', 'a'), pl('data-shard', 'a'), pl('evaluator', 'a'), pl('trainer', 'b')];
  t.equal(cpuShare(placements, node('a', 1)), 3, 'three busy actors on one core (the evaluator is not counted)');
  t.equal(cpuShare(placements, node('a', 4)), 1, 'never faster than calibrated');
  t.equal(cpuShare(placements, node('c', 1)), 1, 'a machine with nothing on it');
  const cal = (requestMs: number) => ({ sparseExamplesPerSec: 2_000_000, matmulGflops: 5, linkMBps: 1000, requestMs });
  const nodes = (requestMs: number): NodeCapacity[] => ['a', 'b', 'c'].map((n) => ({ ...node(n, 2), calibration: cal(requestMs) }));
  const base: Omit<PlanInput, 'nodes'> = { model: mf, dataset, batchSize: 512, trainers: 2 };
  for (const strategy of ['ps', 'mirrored'] as const) {
    const fast = planJob({ ...base, nodes: nodes(0.1), strategy });
    const slow = planJob({ ...base, nodes: nodes(1.1), strategy });
    const requests = strategy === 'ps' ? psRequestsPerStep(fast.psShards) : mirroredRequestsPerStep(2);
    const grew = slow.predicted.stepMs - fast.predicted.stepMs;
    t.ok(grew >= requests * 1 - 1e-6, `${strategy}: 1 ms more a request adds at least ${requests} ms a step (${grew.toFixed(3)})`);
    t.ok(
      slow.reasons.some((r) => /requests/.test(r)),
      `${strategy}: the reason counts the requests`,
    );
  }
  const unmeasured = planJob({ ...base, nodes: ['a', 'b'].map((n) => ({ ...node(n, 2), calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 1 } })) });
  t.ok(
    unmeasured.assumptions.some((a) => a.includes('request round trip not measured for a, b')),
    'an agent that measured no request cost: the assumed one is listed',
  );
  t.throws(() => planJob({ ...base, nodes: [{ ...node('a', 1), calibration: cal(-1) }] }), /calibration figures must be positive/);
});

t.test('model flags size the model; epochs give the whole training time', async (t) => {
  t.same(modelFlagSizing([]), { hyper: {} });
  t.same(modelFlagSizing([], 'adam'), { hyper: {}, optimizer: 'adam', optimizerSlots: 2 });
  t.same(modelFlagSizing(['dim=64', '--init-std=0.05', 'lr=0.1', 'dense-updates', 'optimizer=sgd'], 'adam'), { hyper: { dim: 64, initStd: 0.05 }, optimizer: 'sgd', optimizerSlots: 0 });
  t.equal(modelFlagSizing(['optimizer=sgd', 'momentum=0.9']).optimizerSlots, 1, 'sgd with momentum keeps a velocity');
  t.equal(modelFlagSizing(['optimizer=adagrad', 'momentum=0.9']).optimizerSlots, 1);
  t.equal(modelFlagSizing(['optimizer=rmsprop', 'momentum=0']).optimizerSlots, 1);
  t.same(modelFlagSizing(['optimizer=lion', 'dim=abc']), { hyper: {}, optimizer: 'lion' }, 'an unknown optimizer or a non-number dim: no guess');
  const nodes = nodesOf('cpus');
  const plain = planJob({ nodes, model: mf, dataset, batchSize: 512 });
  t.equal(plain.predicted.trainSeconds, undefined);
  t.same(plain.sizing, { parameterBytes: mf.parameterBytes, optimizerSlots: 2, hyper: {} });
  const sized = planJob({ nodes, model: modelCost('mf', small, { hyper: { dim: 64 } }), dataset, batchSize: 512, epochs: 4, optimizerSlots: 0, hyper: { dim: 64 } });
  t.equal(sized.sizing?.epochs, 4);
  t.ok(Math.abs((sized.predicted.trainSeconds ?? 0) - sized.predicted.epochSeconds * 4) < 0.01);
  t.ok((sized.sizing?.parameterBytes ?? 0) > mf.parameterBytes);
  t.match(renderPlan(sized), /model: [\d.]+ [KMG]?i?B of parameters, 0 optimizer slot\(s\) per parameter, dim=64, 4 epoch\(s\)/);
  t.match(renderPlan(sized), /s per epoch, [\d.]+ s in all/);
  t.throws(() => planJob({ nodes, model: mf, dataset, batchSize: 512, epochs: 0 }), /epochs must be a positive integer, got 0/);
});
