// The shape of a process group, after torch.distributed's c10d: a ProcessGroup interface (what
// every backend offers), a Store for the rendezvous (src/store.ts), and backends behind them
// (src/star.ts today; a ring backend registers itself the same way, src/group.ts).
import type { NatsConnection } from '@actorflow/bus';
import type { ReduceOp } from './reduce.ts';
import type { Store } from './store.ts';

export interface GroupOptions {
  readonly nc: NatsConnection;
  readonly job: string;
  readonly worldSize: number;
  readonly rank: number;
  /** The backend (default 'star'); see registerBackend. */
  readonly backend?: string;
  /**
   * The rendezvous store. Default: a store served over NATS request/reply by rank 0 of the group
   * (NatsStore), as c10d's TCPStore is hosted by rank 0. Any Store works (e.g. a JetStream KV one).
   */
  readonly store?: Store;
  /** Per collective (and for the rendezvous), without progress; default 30 s. */
  readonly timeoutMs?: number;
  readonly name?: string;
  /**
   * Incarnation of the group (an integer ≥ 0): a group re-formed after a fault (every rank restarted
   * from a checkpoint, maybe fewer of them) uses generation + 1 and never sees the old group's
   * messages. Default: none (the subjects of a group without generations).
   */
  readonly generation?: number;
  /** How often a contribution without a result (or a ring chunk not acknowledged) is resent; default min(5 s, timeoutMs / 3). */
  readonly resendMs?: number;
  /** Where ignored messages are reported, at most once per 10 s; default stderr. */
  readonly log?: (line: string) => void;
}

/** Messages refused because their sender is not a member of this group, by the field that gave it away. */
export interface RejectedStats {
  /** Another job's id. */
  readonly job: number;
  /** Another generation (an old or a future incarnation of the group). */
  readonly generation: number;
  /** Another world size. */
  readonly worldSize: number;
  /** A sender that cannot have sent it: a member claiming to be the root, a root message from another rank, a ring message from a rank that is not the neighbour. */
  readonly rank: number;
  /** A claimed rank other than the rank of the subject it came on (`up.<r>`, `p2p.<to>.<r>`): another rank posing as r. */
  readonly subject: number;
}

/** Counters of what a group ignored or repeated (for tests and diagnostics). */
export interface GroupStats {
  /** Messages that failed validation (including ranks outside the group's world). */
  readonly malformed: number;
  /** Messages not from a member of this group (the sum of `rejected`), or too far ahead. */
  readonly foreign: number;
  /** Non-member messages by reason. */
  readonly rejected: RejectedStats;
  /** Repeated contributions, results or chunks (resends), ignored or answered from the cache. */
  readonly duplicates: number;
  /** Messages this rank sent again (no result or acknowledgement in time, or a reconnect). */
  readonly resent: number;
  /** Reconnects of the connection seen by this group. */
  readonly reconnects: number;
}

/** A started collective (the async form): `await work.wait()` for its result. */
export interface Work<T> {
  wait(): Promise<T>;
}

/**
 * A user-defined reduction for allReduceWith: every rank's bytes, in rank order, to the one
 * result. It runs on the root only; every rank must pass the same function (it is not sent).
 */
export type Combine = (parts: readonly Uint8Array[]) => Uint8Array;

/** What every backend offers (torch.distributed's ProcessGroup, with NATS-specific additions). */
export interface ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly generation: number | undefined;
  /** The backend's name ('star'). */
  readonly backend: string;
  /** Every rank's bytes, in rank order, on every rank. */
  allGather(data: Uint8Array, op?: string): Promise<Uint8Array[]>;
  /** The element-wise reduction over ranks (default SUM), in rank order: the same bits on every rank and in every run. */
  allReduce(tensor: Float32Array, op?: ReduceOp): Promise<Float32Array>;
  /** Every rank's bytes combined by `combine` (in rank order, once), the one result on every rank. */
  allReduceWith(data: Uint8Array, combine: Combine, op?: string): Promise<Uint8Array>;
  /**
   * The sum by the ring algorithm (reduce-scatter then all-gather between neighbours): deterministic,
   * but not in rank order, so its bits may differ from allReduce's in the last place.
   */
  allReduceRing(tensor: Float32Array): Promise<Float32Array>;
  /** root's bytes on every rank. */
  broadcast(data: Uint8Array, root?: number): Promise<Uint8Array>;
  barrier(): Promise<void>;
  /** The reduction on `root` (others get undefined). */
  reduce(tensor: Float32Array, root?: number, op?: ReduceOp): Promise<Float32Array | undefined>;
  /** Every rank's bytes on `root` (others get undefined). */
  gather(data: Uint8Array, root?: number): Promise<Uint8Array[] | undefined>;
  /** `root` hands rank r its `parts[r]`. */
  scatter(parts: readonly Uint8Array[] | undefined, root?: number): Promise<Uint8Array>;
  /** The reduction, then rank r keeps slice r of worldSize equal slices (the last one takes the remainder). */
  reduceScatter(tensor: Float32Array, op?: ReduceOp): Promise<Float32Array>;
  /**
   * A sub-group of some ranks of this group, with its own subjects; members are renumbered 0…k-1
   * in the order given (as torch.distributed.new_group). Every member must call it with the same
   * ranks; non-members get undefined. It shares this group's generation and backend.
   */
  newGroup(ranks: readonly number[], name?: string): Promise<ProcessGroup | undefined>;
  /** The asynchronous form of any collective: start it now, wait for it later. */
  start<T>(op: (g: this) => Promise<T>): Work<T>;
  /** What this rank ignored or repeated so far. */
  stats(): GroupStats;
  /** Leaves the group: unsubscribes, stops resending, and fails the collectives still waiting. */
  destroy(): void;
}
