// Public API of @actorflow/collectives: process groups over NATS in the shape of torch.distributed's
// c10d — a ProcessGroup interface with backends behind it (star: rank 0 is the root), ReduceOp,
// and a rendezvous Store (served over NATS by rank 0 by default).
export { ProcessGroup, registerBackend, backendNames, type BackendFactory } from './src/group.ts';
export { StarProcessGroup } from './src/star.ts';
export { ReduceOp, reduceInRankOrder } from './src/reduce.ts';
export { MemoryStore, NatsStore, serveStore, type Store, type NatsStoreOptions } from './src/store.ts';
export { rendezvousPrefix } from './src/rendezvous.ts';
export { CollectiveError, CollectiveTimeoutError, RendezvousError, StoreError } from './src/errors.ts';
export type { Combine, GroupOptions, GroupStats, RejectedStats, Work } from './src/types.ts';
