// Public API of @actorflow/feed: data shards over NATS and the client that reads them.
export { loadJobDataset, heldOutOf, dataFacts, parseDataOptions, dataOptionFlags, type DataOptions, type DatasetSpec, type JobDataset, type ModelShape } from './src/dataset.ts';
export {
  serveDataShard,
  encodeBatch,
  DataShardStateError,
  DATA_SHARD_STATE_FORMAT,
  REQUEST_ID_MEMORY,
  type DataShardOptions,
  type DataShardService,
  type DataShardState,
  type SharedCursor,
  type DatasetInfo,
} from './src/service.ts';
export { DataClient, decodeBatch, type FedBatch, type FeedKind, type DataClientOptions, type FeedPosition } from './src/client.ts';
export { serveJobConfig, fetchJobConfig, JobConfigUnavailableError, type JobConfig } from './src/config.ts';
