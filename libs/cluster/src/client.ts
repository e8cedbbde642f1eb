// Asking node agents: discover them ($SRV.INFO, role `node`), read their info, start, stop and
// list actors, renew a lease. Every request retries across broker restarts (requestWithRetry).
import { listActorServices, requestWithRetry, type NatsConnection } from '@actorflow/bus';
import {
  actorListCodec,
  actorStatusCodec,
  CLUSTER_JOB,
  clusterSubjects,
  leaseRenewalCodec,
  nodeInfoCodec,
  startActorRequestCodec,
  stopActorsRequestCodec,
  type ActorList,
  type ActorStatus,
  type NodeInfo,
  type StartActorRequest,
} from '@actorflow/protocol';
import type { NodeCapacity } from './planner.ts';

export interface NodeRequestOptions {
  /** Deadline of one request with its retries (default 10 s). */
  readonly deadlineMs?: number;
}

const opts = (o: NodeRequestOptions): { deadlineMs: number; attemptTimeoutMs: number } => ({ deadlineMs: o.deadlineMs ?? 10_000, attemptTimeoutMs: Math.min(5000, o.deadlineMs ?? 10_000) });

export async function nodeInfo(nc: NatsConnection, node: string, o: NodeRequestOptions = {}): Promise<NodeInfo> {
  return nodeInfoCodec.decode(await requestWithRetry(nc, clusterSubjects.info(node), new Uint8Array(0), opts(o)));
}

/** Starting is idempotent: the same request for a running actor returns its status. */
export async function startActor(nc: NatsConnection, node: string, req: StartActorRequest, o: NodeRequestOptions = {}): Promise<ActorStatus> {
  return actorStatusCodec.decode(await requestWithRetry(nc, clusterSubjects.start(node), startActorRequestCodec.encode(req), opts(o)));
}

export async function stopActors(nc: NatsConnection, node: string, job: string, actor?: string, o: NodeRequestOptions = {}): Promise<ActorList> {
  return actorListCodec.decode(await requestWithRetry(nc, clusterSubjects.stop(node), stopActorsRequestCodec.encode({ job, ...(actor !== undefined ? { actor } : {}) }), opts(o)));
}

export async function listActors(nc: NatsConnection, node: string, o: NodeRequestOptions = {}): Promise<ActorList> {
  return actorListCodec.decode(await requestWithRetry(nc, clusterSubjects.list(node), new Uint8Array(0), opts(o)));
}

/** Renews the lease of `job` on `node` (fire and forget: call it every few seconds). */
export function renewLease(nc: NatsConnection, node: string, job: string, holder?: string): void {
  nc.publish(clusterSubjects.lease(node), leaseRenewalCodec.encode({ job, ...(holder !== undefined ? { holder } : {}) }));
}

/** Every node agent that answers within `timeoutMs`, with its info (sorted by name). */
export async function discoverNodes(nc: NatsConnection, o: { timeoutMs?: number } = {}): Promise<NodeInfo[]> {
  const timeoutMs = o.timeoutMs ?? 2000;
  const services = await listActorServices(nc, { job: CLUSTER_JOB, timeoutMs });
  const names = [...new Set(services.flatMap((s) => (s.metadata?.role === 'node' && s.metadata.rank !== undefined ? [s.metadata.rank] : [])))];
  const infos = await Promise.all(names.map((n) => nodeInfo(nc, n, { deadlineMs: timeoutMs }).catch(() => undefined)));
  return infos.filter((x): x is NodeInfo => x !== undefined).sort((a, b) => a.name.localeCompare(b.name));
}

/** A node's info as the planner's capacity. */
export function capacityOfInfo(n: NodeInfo): NodeCapacity {
  return {
    name: n.name,
    cores: n.cores,
    memoryBytes: n.memoryBytes,
    gpus: n.gpus.length,
    energyEfficient: n.energyEfficient,
    calibration: {
      sparseExamplesPerSec: n.calibration.sparseExamplesPerSec,
      matmulGflops: n.calibration.matmulGflops,
      ...(n.calibration.linkMBps !== undefined ? { linkMBps: n.calibration.linkMBps } : {}),
      ...(n.calibration.requestMs !== undefined ? { requestMs: n.calibration.requestMs } : {}),
    },
  };
}

/** Memory assumed for a blueprint machine that declares none and has no agent answering. */
export const ASSUMED_MEMORY_GIB = 8;

/** A blueprint machine as the planner's capacity; its agent's info (when it answered) wins for what it measured. */
export function capacityOfMachine(m: { name: string; cores?: number; memoryGiB?: number; gpus?: number; energyEfficient?: boolean }, info?: NodeInfo): NodeCapacity {
  if (info !== undefined) {
    const c = capacityOfInfo(info);
    // The blueprint's declared energy efficiency holds even when the agent was not told.
    return { ...c, energyEfficient: c.energyEfficient || m.energyEfficient === true };
  }
  const notes = m.memoryGiB === undefined ? [`${m.name}: memory not declared, assumed ${ASSUMED_MEMORY_GIB} GiB`] : [];
  return {
    name: m.name,
    cores: m.cores ?? 1,
    memoryBytes: (m.memoryGiB ?? ASSUMED_MEMORY_GIB) * 1024 ** 3,
    gpus: m.gpus ?? 0,
    energyEfficient: m.energyEfficient === true,
    ...(notes.length > 0 ? { notes } : {}),
  };
}
