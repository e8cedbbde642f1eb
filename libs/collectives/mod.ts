// Public API of @actorflow/collectives: process groups over NATS (star: rank 0 coordinates).
export { ProcessGroup, CollectiveError, CollectiveTimeoutError, RendezvousError, type GroupOptions, type GroupStats, type Work } from './src/group.ts';
