// The placement planner: from the selected machines (with their measured calibration when known),
// the model's sizes and the data, it places data shards, parameter shards, trainers, the
// aggregator and the evaluator, picks the strategy, predicts the step time and says why. Its
// output, a ShardingPlan, is plain JSON kept apart from the actors it places (like TorchRec's
// planner → ShardingPlan): the launcher reads it, nothing in it is live.
import { PlanError } from './errors.ts';

export type Strategy = 'ps' | 'mirrored';
export type RequestedStrategy = Strategy | 'auto';

/** Throughputs measured by the node agent at start (libs/cluster calibrate.ts). */
export interface Calibration {
  /** Fused sparse kernel (biased dot, dim CALIBRATION_DIM): examples per second, one core. */
  readonly sparseExamplesPerSec: number;
  /** A square matmul through the node's TF.js backend, GFLOP/s. */
  readonly matmulGflops: number;
  /** A round trip of a large message through the broker, MB/s (the node's link to NATS). */
  readonly linkMBps?: number;
  /**
   * One small request's round trip through the broker with its msgpack codec, ms (a pull-sized
   * message to itself and back): the fixed cost every pull, push and batch request pays besides its bytes.
   */
  readonly requestMs?: number;
}

/** The dim the sparse calibration kernel runs at (MF's default). */
export const CALIBRATION_DIM = 32;

/** One machine as the planner sees it. */
export interface NodeCapacity {
  readonly name: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly gpus: number;
  readonly energyEfficient: boolean;
  /** Absent: the planner assumes DEFAULT_CALIBRATION and says so. */
  readonly calibration?: Calibration;
  /** What was assumed about this machine (listed with the plan's assumptions). */
  readonly notes?: readonly string[];
}

/** Sizes of the model that decide the plan (see modelCost in model-cost.ts). */
export interface ModelCost {
  readonly name: string;
  readonly tables: readonly { readonly name: string; readonly rows: number; readonly dim: number }[];
  /** Total dense parameters (floats). */
  readonly denseParams: number;
  /** Rows gathered per example from each table (1 for rating models; the mean history length for interactions models). */
  readonly rowsPerExample: number;
  /** Bytes of every parameter (float32). */
  readonly parameterBytes: number;
}

export interface DatasetCost {
  readonly name: string;
  readonly trainRows: number;
  /** Bytes of the loaded dataset in one process (default 16 bytes a row: user, item, rating, index). */
  readonly bytes?: number;
}

export interface PlanInput {
  readonly nodes: readonly NodeCapacity[];
  readonly model: ModelCost;
  readonly dataset: DatasetCost;
  /** Per-trainer batch size. */
  readonly batchSize: number;
  readonly strategy?: RequestedStrategy;
  /** Trainers (default: one per node). */
  readonly trainers?: number;
  /** Link throughput when a node has none measured (default 100 MB/s). */
  readonly defaultLinkMBps?: number;
  /** Optimizer state per parameter in floats besides the parameter (Adam: 2; default 2). */
  readonly optimizerSlots?: number;
  /** The job's epochs: the prediction then includes the whole training time. */
  readonly epochs?: number;
  /** Hyper-parameters the model was sized with (recorded in the plan, so a person can check them). */
  readonly hyper?: Readonly<Record<string, number | string | boolean>>;
}

export type PlacedRole = 'trainer' | 'data-shard' | 'ps-shard' | 'aggregator' | 'evaluator';

export interface Placement {
  readonly role: PlacedRole;
  /** Rank of a trainer, index of a shard, 0 for the aggregator and the evaluator. */
  readonly index: number;
  readonly machine: string;
  /** Memory this actor is expected to hold. */
  readonly memoryBytes: number;
}

export interface MachineLoad {
  readonly name: string;
  readonly memoryBytes: number;
  readonly plannedBytes: number;
  readonly roles: readonly string[];
  readonly calibrated: boolean;
}

export interface Prediction {
  /** Mean time of one trainer step (mirrored: the synchronous step; ps: the mean over trainers). */
  readonly stepMs: number;
  readonly computeMs: number;
  readonly communicationMs: number;
  readonly examplesPerSec: number;
  readonly epochSeconds: number;
  /** epochSeconds × the job's epochs, when the planner was told them. */
  readonly trainSeconds?: number;
}

export interface ShardingPlan {
  readonly format: 'actorflow.plan/1';
  readonly model: string;
  readonly dataset: string;
  readonly batchSize: number;
  readonly requestedStrategy: RequestedStrategy;
  readonly strategy: Strategy;
  readonly trainers: number;
  readonly dataShards: number;
  readonly psShards: number;
  readonly placements: readonly Placement[];
  readonly machines: readonly MachineLoad[];
  readonly predicted: Prediction;
  /** The other strategy's prediction (when it was feasible), for comparison. */
  readonly alternative?: { readonly strategy: Strategy; readonly predicted: Prediction } | { readonly strategy: Strategy; readonly infeasible: string };
  readonly reasons: readonly string[];
  readonly risks: readonly string[];
  readonly assumptions: readonly string[];
  /** What the model was sized as: its parameter bytes, the optimizer slots, the hyper-parameters given and the epochs. */
  readonly sizing?: {
    readonly parameterBytes: number;
    readonly optimizerSlots: number;
    readonly hyper: Readonly<Record<string, number | string | boolean>>;
    readonly epochs?: number;
  };
}

export const DEFAULT_CALIBRATION: Calibration = { sparseExamplesPerSec: 2_000_000, matmulGflops: 2, linkMBps: 100, requestMs: 0.5 };

/** Memory every actor process needs before its data (Node.js, TF.js, buffers). */
export const PROCESS_BASE_BYTES = 200 * 1024 * 1024;
/** Fraction of a machine's memory the plan may use (the rest is the OS's and others'). */
export const MEMORY_HEADROOM = 0.8;
/** The per-request cost assumed for a machine whose agent did not measure one, ms. */
export const DEFAULT_REQUEST_MS = 0.5;

function calibrationOf(n: NodeCapacity): Required<Calibration> {
  const c = n.calibration ?? DEFAULT_CALIBRATION;
  return { sparseExamplesPerSec: c.sparseExamplesPerSec, matmulGflops: c.matmulGflops, linkMBps: c.linkMBps ?? 100, requestMs: c.requestMs ?? DEFAULT_REQUEST_MS };
}

/** Roles that are busy every step (the evaluator and the mirrored aggregator only now and then). */
const BUSY_ROLES: ReadonlySet<PlacedRole> = new Set(['trainer', 'ps-shard', 'data-shard']);

/**
 * How much slower than calibrated a machine runs its share of a step: its busy actors over its
 * cores (at least 1). The calibration ran alone on an idle machine; during the job every busy
 * actor placed there (trainers, parameter shards, data shards) wants a core at once.
 */
export function cpuShare(placements: readonly Placement[], n: NodeCapacity): number {
  const busy = placements.filter((p) => p.machine === n.name && BUSY_ROLES.has(p.role)).length;
  return Math.max(1, busy / Math.max(1, n.cores));
}

/** Requests on one ps trainer's step: a pull and a push to every parameter shard, and one batch. */
export function psRequestsPerStep(psShards: number): number {
  return 2 * psShards + 1;
}

/** Requests on a mirrored step's critical path: the batch, the gradient to rank 0, the result back, and rank 0 taking the other W − 1. */
export function mirroredRequestsPerStep(trainers: number): number {
  return trainers === 1 ? 1 : 2 + trainers;
}

/** Bytes of the rows and dense tensors one trainer step moves one way (pull, or push). */
export function stepBytesOneWay(model: ModelCost, batchSize: number): number {
  let sparse = 0;
  for (const t of model.tables) sparse += Math.min(t.rows, Math.ceil(batchSize * model.rowsPerExample)) * t.dim * 4;
  return sparse + model.denseParams * 4;
}

/** Compute time of one step of `batchSize` examples on a node, ms. */
export function computeMs(model: ModelCost, batchSize: number, n: NodeCapacity): number {
  const c = calibrationOf(n);
  const dims = model.tables.reduce((s, t) => s + t.dim, 0);
  // The calibration kernel reads 2 rows of CALIBRATION_DIM (plus two biases) per example.
  const sparseSec = (batchSize * model.rowsPerExample * Math.max(dims, 1)) / (2 * (CALIBRATION_DIM + 1)) / c.sparseExamplesPerSec;
  // Forward 2 flops per dense parameter per example, backward 4.
  const denseSec = (6 * model.denseParams * batchSize) / (c.matmulGflops * 1e9);
  return (sparseSec + denseSec) * 1000;
}

function transferMs(bytes: number, mbps: number): number {
  return (bytes / (mbps * 1e6)) * 1000;
}

interface Draft {
  readonly strategy: Strategy;
  readonly placements: Placement[];
  readonly loads: Map<string, { used: number; roles: string[] }>;
  readonly predicted: Prediction;
  readonly psShards: number;
  readonly notes: string[];
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export { bytes as formatBytes };

class Placer {
  readonly placements: Placement[] = [];
  readonly loads = new Map<string, { used: number; roles: string[] }>();

  constructor(readonly nodes: readonly NodeCapacity[]) {
    for (const n of nodes) this.loads.set(n.name, { used: 0, roles: [] });
  }

  free(n: NodeCapacity): number {
    return n.memoryBytes * MEMORY_HEADROOM - (this.loads.get(n.name)?.used ?? 0);
  }

  count(n: NodeCapacity, role: PlacedRole): number {
    return this.placements.filter((p) => p.machine === n.name && p.role === role).length;
  }

  put(role: PlacedRole, index: number, n: NodeCapacity, memoryBytes: number): void {
    const load = this.loads.get(n.name);
    /* c8 ignore next */
    if (load === undefined) throw new PlanError(`internal: unknown machine ${n.name}`);
    load.used += memoryBytes;
    load.roles.push(`${role}${role === 'aggregator' || role === 'evaluator' ? '' : `-${index}`}`);
    this.placements.push({ role, index, machine: n.name, memoryBytes });
  }

  /** The machine with room that has the fewest of this role (spread), then the most free memory. */
  place(role: PlacedRole, index: number, memoryBytes: number, what: string): NodeCapacity {
    const fits = this.nodes.filter((n) => this.free(n) >= memoryBytes);
    if (fits.length === 0) {
      const best = Math.max(...this.nodes.map((n) => this.free(n)));
      throw new PlanError(
        `${what} needs ${bytes(memoryBytes)} but the most any selected machine has left is ${bytes(Math.max(0, best))} (of ${(MEMORY_HEADROOM * 100).toFixed(0)}% of its memory): select more or bigger machines, or shrink the model`,
      );
    }
    fits.sort((a, b) => this.count(a, role) - this.count(b, role) || this.free(b) - this.free(a) || a.name.localeCompare(b.name));
    const n = fits[0];
    this.put(role, index, n, memoryBytes);
    return n;
  }
}

function validate(input: PlanInput): void {
  if (input.nodes.length === 0) throw new PlanError('no machine to plan on: the selection is empty');
  if (!Number.isInteger(input.batchSize) || input.batchSize < 1) throw new PlanError(`batch size must be a positive integer, got ${input.batchSize}`);
  if (input.trainers !== undefined && (!Number.isInteger(input.trainers) || input.trainers < 1)) throw new PlanError(`trainers must be a positive integer, got ${input.trainers}`);
  if (input.dataset.trainRows < 1) throw new PlanError(`dataset ${input.dataset.name} has no training rows`);
  if (input.epochs !== undefined && (!Number.isInteger(input.epochs) || input.epochs < 1)) throw new PlanError(`epochs must be a positive integer, got ${input.epochs}`);
  for (const n of input.nodes) {
    if (!(n.memoryBytes > 0)) throw new PlanError(`machine ${n.name}: unknown or zero memory; give memoryGiB in the blueprint or run its agent`);
    const c = n.calibration;
    if (c !== undefined && !(c.sparseExamplesPerSec > 0 && c.matmulGflops > 0 && (c.linkMBps === undefined || c.linkMBps > 0) && (c.requestMs === undefined || c.requestMs >= 0)))
      throw new PlanError(`machine ${n.name}: calibration figures must be positive`);
  }
}

function datasetBytes(d: DatasetCost): number {
  return d.bytes ?? d.trainRows * 16;
}

function trainerOrder(nodes: readonly NodeCapacity[], trainers: number, model: ModelCost, batch: number): NodeCapacity[] {
  // Round robin over the nodes, fastest first: trainer r runs on the (r mod N)-th fastest node.
  const byspeed = [...nodes].sort((a, b) => computeMs(model, batch, a) - computeMs(model, batch, b) || a.name.localeCompare(b.name));
  return Array.from({ length: trainers }, (_, r) => byspeedAt(byspeed, r));
}

function byspeedAt(nodes: readonly NodeCapacity[], r: number): NodeCapacity {
  return nodes[r % nodes.length];
}

function dataShardsFor(input: PlanInput): number {
  const per = 512 * 1024 * 1024;
  return Math.max(1, Math.min(input.nodes.length, Math.max(2, Math.ceil(datasetBytes(input.dataset) / per))));
}

function placeCommon(p: Placer, input: PlanInput, dataShards: number): void {
  const dsBytes = PROCESS_BASE_BYTES + datasetBytes(input.dataset);
  for (let i = 0; i < dataShards; i++) p.place('data-shard', i, dsBytes, `data shard ${i} (the whole dataset is loaded, then partitioned)`);
}

function draftMirrored(input: PlanInput, trainers: number, slots: number): Draft {
  const { model, batchSize } = input;
  const replica = model.parameterBytes * (1 + slots);
  const p = new Placer(input.nodes);
  const order = trainerOrder(input.nodes, trainers, model, batchSize);
  order.forEach((n, r) => {
    if (p.free(n) < PROCESS_BASE_BYTES + replica) {
      throw new PlanError(
        `mirrored: trainer ${r} on ${n.name} needs a full replica with optimizer state, ${bytes(PROCESS_BASE_BYTES + replica)}, but ${n.name} has ${bytes(Math.max(0, p.free(n)))} left`,
      );
    }
    p.put('trainer', r, n, PROCESS_BASE_BYTES + replica);
  });
  const dataShards = dataShardsFor(input);
  placeCommon(p, input, dataShards);
  p.place('aggregator', 0, PROCESS_BASE_BYTES + replica, 'the mirrored aggregator (keeps the latest replica for checkpoints)');
  p.place('evaluator', 0, PROCESS_BASE_BYTES + model.parameterBytes + datasetBytes(input.dataset), 'the evaluator');
  const used = [...new Set(order)];
  // Each rank's compute, slowed by the busy actors sharing its machine; the step waits for the slowest.
  const compute = Math.max(...used.map((n) => computeMs(model, batchSize, n) * cpuShare(p.placements, n)));
  // Star all-gather: every rank sends its gradient to rank 0, rank 0 sends all W of them to each
  // rank; rank 0's link carries ~2·W gradients, the bottleneck. One rank: nothing on the wire.
  const grad = stepBytesOneWay(model, batchSize);
  const rank0Link = calibrationOf(order[0]).linkMBps;
  const slowest = Math.min(...used.map((n) => calibrationOf(n).linkMBps));
  // Every request pays its measured round trip, on the busiest trainer machine's share of a core.
  const requests = mirroredRequestsPerStep(trainers);
  const perRequest = Math.max(...used.map((n) => calibrationOf(n).requestMs * cpuShare(p.placements, n)));
  const requestMs = requests * perRequest;
  const comm = (trainers === 1 ? 0 : transferMs(2 * trainers * grad, Math.min(rank0Link, slowest))) + requestMs;
  const stepMs = compute + comm;
  const examplesPerSec = (trainers * batchSize) / (stepMs / 1000);
  const notes = [
    `mirrored: each step waits for the slowest trainer (${compute.toFixed(2)} ms of compute with the actors sharing its cores), an all-gather of ${trainers} × ${bytes(grad)} through rank 0 and ${requests} requests at ${perRequest.toFixed(2)} ms (${comm.toFixed(2)} ms in all)`,
  ];
  return { strategy: 'mirrored', placements: p.placements, loads: p.loads, predicted: predicted(stepMs, compute, comm, examplesPerSec, input), psShards: 0, notes };
}

function draftPs(input: PlanInput, trainers: number, slots: number): Draft {
  const { model, batchSize } = input;
  const state = model.parameterBytes * (1 + slots);
  const p = new Placer(input.nodes);
  const order = trainerOrder(input.nodes, trainers, model, batchSize);
  // A trainer holds only the rows of its batch.
  const trainerBytes = PROCESS_BASE_BYTES + 2 * stepBytesOneWay(model, batchSize);
  order.forEach((n, r) => {
    if (p.free(n) < trainerBytes) throw new PlanError(`ps: trainer ${r} on ${n.name} needs ${bytes(trainerBytes)}, ${n.name} has ${bytes(Math.max(0, p.free(n)))} left`);
    p.put('trainer', r, n, trainerBytes);
  });
  const dataShards = dataShardsFor(input);
  placeCommon(p, input, dataShards);
  // Parameter shards: at least one per machine (spread the traffic), more when the state does not fit.
  const biggest = Math.max(...input.nodes.map((n) => p.free(n)));
  const needed = Math.ceil(state / Math.max(1, biggest - PROCESS_BASE_BYTES));
  const psShards = Math.max(input.nodes.length, needed);
  const perShard = PROCESS_BASE_BYTES + Math.ceil(state / psShards);
  for (let k = 0; k < psShards; k++) p.place('ps-shard', k, perShard, `parameter shard ${k} of ${psShards} (${bytes(Math.ceil(state / psShards))} of parameters and optimizer state)`);
  p.place('evaluator', 0, PROCESS_BASE_BYTES + model.parameterBytes + datasetBytes(input.dataset), 'the evaluator (merges a snapshot of every shard)');
  const oneWay = stepBytesOneWay(model, batchSize);
  const shardNodes = p.placements.filter((x) => x.role === 'ps-shard').map((x) => input.nodes.find((n) => n.name === x.machine) ?? input.nodes[0]);
  const shardShare = shardNodes.reduce((s, n) => s + cpuShare(p.placements, n), 0) / shardNodes.length;
  // A shard applies its part of every push (the optimizer over the pushed rows): about the batch's
  // sparse compute over the shards, on the slowest shard's machine and share of it.
  const applyMs = Math.max(...shardNodes.map((n) => computeMs(model, Math.max(1, Math.ceil(batchSize / psShards)), n) * cpuShare(p.placements, n)));
  const requests = psRequestsPerStep(psShards);
  // Each trainer steps on its own: compute, then 2·S + 1 requests (each at its measured round trip,
  // slowed by the busy actors at both ends), the bytes over its link and a shard's apply.
  const steps = order.map((n) => {
    const share = cpuShare(p.placements, n);
    const c = computeMs(model, batchSize, n) * share;
    const perRequest = calibrationOf(n).requestMs * ((share + shardShare) / 2);
    const comm = transferMs(2 * oneWay, calibrationOf(n).linkMBps) + requests * perRequest + applyMs;
    return { c, comm, total: c + comm };
  });
  // The shards' links carry every trainer's traffic: a bound on the total rate.
  const shardLinks = p.placements.filter((x) => x.role === 'ps-shard').reduce((s, x) => s + calibrationOf(input.nodes.find((n) => n.name === x.machine) ?? input.nodes[0]).linkMBps, 0);
  const demand = steps.reduce((s, x) => s + (2 * oneWay) / (x.total / 1000), 0) / 1e6; // MB/s the trainers would move
  const slowdown = Math.max(1, demand / shardLinks);
  const examplesPerSec = steps.reduce((s, x) => s + batchSize / (x.total / 1000), 0) / slowdown;
  const mean = (f: (x: { c: number; comm: number; total: number }) => number): number => steps.reduce((s, x) => s + f(x), 0) / steps.length;
  const stepMs = mean((x) => x.total) * slowdown;
  const notes = [
    `ps: each trainer steps alone: ${mean((x) => x.c).toFixed(2)} ms of compute (with the actors sharing its cores) and ${mean((x) => x.comm).toFixed(2)} ms for ${requests} requests (a pull and a push per shard, a batch), ${bytes(oneWay)} each way and a shard's apply (${applyMs.toFixed(2)} ms)`,
  ];
  if (slowdown > 1) notes.push(`ps: the ${psShards} shards' links (${shardLinks.toFixed(0)} MB/s) are the bottleneck: ×${slowdown.toFixed(2)} on the step`);
  return {
    strategy: 'ps',
    placements: p.placements,
    loads: p.loads,
    predicted: predicted(
      stepMs,
      mean((x) => x.c),
      mean((x) => x.comm),
      examplesPerSec,
      input,
    ),
    psShards,
    notes,
  };
}

function predicted(stepMs: number, compute: number, comm: number, examplesPerSec: number, input: PlanInput): Prediction {
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  const epochSeconds = r(input.dataset.trainRows / examplesPerSec);
  return {
    stepMs: r(stepMs),
    computeMs: r(compute),
    communicationMs: r(comm),
    examplesPerSec: Math.round(examplesPerSec),
    epochSeconds,
    ...(input.epochs !== undefined ? { trainSeconds: r(epochSeconds * input.epochs) } : {}),
  };
}

function attempt(f: () => Draft): Draft | PlanError {
  try {
    return f();
  } catch (err) {
    if (err instanceof PlanError) return err;
    /* c8 ignore next */
    throw err;
  }
}

/** Plans a job: placement, strategy, predicted step time, reasons. Throws PlanError when nothing fits. */
export function planJob(original: PlanInput): ShardingPlan {
  validate(original);
  const link = original.defaultLinkMBps ?? DEFAULT_CALIBRATION.linkMBps ?? 100;
  // Every node with figures: measured ones, else the defaults (the assumptions say which).
  const input: PlanInput = {
    ...original,
    nodes: original.nodes.map((n) => ({
      ...n,
      calibration: { ...(n.calibration ?? DEFAULT_CALIBRATION), linkMBps: n.calibration?.linkMBps ?? link, requestMs: n.calibration?.requestMs ?? DEFAULT_REQUEST_MS },
    })),
  };
  const requested = input.strategy ?? 'auto';
  const trainers = input.trainers ?? input.nodes.length;
  const slots = input.optimizerSlots ?? 2;
  const { model, batchSize } = input;
  const mirrored = attempt(() => draftMirrored(input, trainers, slots));
  const ps = attempt(() => draftPs(input, trainers, slots));
  const reasons: string[] = [];
  const risks: string[] = [];
  const speeds = input.nodes.map((n) => computeMs(model, batchSize, n));
  const hetero = Math.max(...speeds) / Math.min(...speeds);
  let chosen: Draft;
  if (requested !== 'auto') {
    const d = requested === 'mirrored' ? mirrored : ps;
    if (d instanceof PlanError) throw new PlanError(`--strategy ${requested} does not fit: ${d.message}`);
    chosen = d;
    reasons.push(`strategy ${requested}: asked for`);
  } else if (mirrored instanceof PlanError && ps instanceof PlanError) {
    throw new PlanError(`neither strategy fits the selected machines: mirrored: ${mirrored.message}; ps: ${ps.message}`);
  } else if (mirrored instanceof PlanError) {
    chosen = ps as Draft;
    reasons.push(
      `ps: a full replica (${bytes(model.parameterBytes * (1 + slots))} with optimizer state) does not fit every machine, so the tables are sharded over ${chosen.psShards} parameter shards`,
    );
  } else if (ps instanceof PlanError) {
    chosen = mirrored;
    reasons.push(`mirrored: ps does not fit (${ps.message})`);
  } else {
    const commShare = mirrored.predicted.communicationMs / Math.max(mirrored.predicted.computeMs, 1e-9);
    if (hetero > 1.5) {
      chosen = ps.predicted.examplesPerSec >= mirrored.predicted.examplesPerSec ? ps : mirrored;
      reasons.push(
        `the machines differ ${hetero.toFixed(1)}× in speed: mirrored would wait for the slowest every step; ${chosen.strategy} is predicted faster (${ps.predicted.examplesPerSec} vs ${mirrored.predicted.examplesPerSec} examples/s for ps vs mirrored)`,
      );
    } else if (commShare <= 1) {
      chosen = mirrored;
      reasons.push(
        `mirrored: the replica fits every machine and the all-gather (${mirrored.predicted.communicationMs.toFixed(2)} ms) is ${commShare <= 0.25 ? 'small' : 'not more'} next to the compute (${mirrored.predicted.computeMs.toFixed(2)} ms); synchronous training is deterministic and has no staleness`,
      );
    } else {
      chosen = ps.predicted.examplesPerSec >= mirrored.predicted.examplesPerSec ? ps : mirrored;
      reasons.push(
        `the all-gather (${mirrored.predicted.communicationMs.toFixed(2)} ms) outweighs the compute (${mirrored.predicted.computeMs.toFixed(2)} ms), since every rank's rows go to every rank; ${chosen.strategy} is predicted faster (${ps.predicted.examplesPerSec} vs ${mirrored.predicted.examplesPerSec} examples/s for ps vs mirrored)`,
      );
    }
  }
  reasons.push(...chosen.notes);
  if (chosen.strategy === 'ps' && trainers > 1) {
    risks.push(
      hetero > 1.5
        ? `staleness: the fastest trainer is ~${hetero.toFixed(1)}× the slowest, so the slow one's pushes are computed on parameters up to ~${Math.ceil((trainers - 1) * hetero)} versions old; consider --staleness bound:${Math.ceil(2 * hetero)} or scale`
        : `staleness: with ${trainers} asynchronous trainers each push is ~${trainers - 1} versions stale on average (usually harmless for embeddings; --staleness bound:s caps it)`,
    );
  }
  if (chosen.strategy === 'mirrored' && hetero > 1.5) risks.push(`stragglers: every step waits for the slowest machine (${hetero.toFixed(1)}× slower than the fastest)`);
  const assumptions = [
    `per-step bytes: min(rows, batch × ${model.rowsPerExample.toFixed(1)}) gathered rows × dim × 4 bytes per table plus every dense float, once each way (pull and push)`,
    `memory: ${(MEMORY_HEADROOM * 100).toFixed(0)}% of each machine, ${bytes(PROCESS_BASE_BYTES)} per process, parameters plus ${slots} optimizer slots each`,
  ];
  for (const n of original.nodes) assumptions.push(...(n.notes ?? []));
  const uncalibrated = original.nodes.filter((n) => n.calibration === undefined).map((n) => n.name);
  if (uncalibrated.length > 0)
    assumptions.push(
      `not measured (no agent answered): ${uncalibrated.join(', ')} — assumed ${DEFAULT_CALIBRATION.sparseExamplesPerSec} sparse examples/s, ${DEFAULT_CALIBRATION.matmulGflops} GFLOP/s`,
    );
  assumptions.push(
    `cpu: the calibration ran on an idle machine; during the job each machine's compute and requests are slowed by its busy actors (trainers, parameter shards, data shards) over its cores`,
  );
  const noRequest = original.nodes.filter((n) => n.calibration !== undefined && n.calibration.requestMs === undefined).map((n) => n.name);
  if (noRequest.length > 0) assumptions.push(`request round trip not measured for ${noRequest.join(', ')}: assumed ${DEFAULT_REQUEST_MS} ms`);
  const noLink = original.nodes.filter((n) => n.calibration?.linkMBps === undefined).map((n) => n.name);
  if (noLink.length > 0) assumptions.push(`link throughput not measured for ${noLink.join(', ')}: assumed ${link} MB/s`);
  const other = chosen.strategy === 'ps' ? mirrored : ps;
  const alternative =
    other instanceof PlanError ? { strategy: chosen.strategy === 'ps' ? ('mirrored' as const) : ('ps' as const), infeasible: other.message } : { strategy: other.strategy, predicted: other.predicted };
  const machines: MachineLoad[] = original.nodes.map((n) => {
    const l = chosen.loads.get(n.name) ?? { used: 0, roles: [] };
    return { name: n.name, memoryBytes: n.memoryBytes, plannedBytes: l.used, roles: l.roles, calibrated: n.calibration !== undefined };
  });
  return {
    format: 'actorflow.plan/1',
    model: model.name,
    dataset: input.dataset.name,
    batchSize,
    requestedStrategy: requested,
    strategy: chosen.strategy,
    trainers,
    dataShards: chosen.placements.filter((x) => x.role === 'data-shard').length,
    psShards: chosen.psShards,
    placements: chosen.placements,
    machines,
    predicted: chosen.predicted,
    alternative,
    reasons,
    risks,
    assumptions,
    sizing: { parameterBytes: model.parameterBytes, optimizerSlots: slots, hyper: { ...(input.hyper ?? {}) }, ...(input.epochs !== undefined ? { epochs: input.epochs } : {}) },
  };
}
