// Public API of @actorflow/bus: connecting to NATS, large-message transport, heartbeats, and a real nats-server harness.
export {
  BusError,
  BusTimeoutError,
  NatsServerNotInstalledError,
  NatsServerStartError,
  RemoteError,
  NoRespondersBusError,
  ConnectionLostError,
  ConnectionClosedError,
  RetryDeadlineError,
} from './src/errors.ts';
export { NatsServer, type NatsServerOptions } from './src/server.ts';
export { busOptionsFrom, busFlagsHelp, busFlagOptions, toConnectionOptions, DEFAULT_SERVER, type BusOptions } from './src/options.ts';
export { connect, type NatsConnection } from './src/connect.ts';
export {
  publishLarge,
  subscribeLarge,
  requestLarge,
  serveLarge,
  maxMessageBytes,
  inboxPrefixOf,
  translateNatsError,
  HandlerError,
  RequestTooLargeError,
  DEFAULT_MAX_REQUEST_BYTES,
  type PublishLargeOptions,
  type SubscribeLargeOptions,
  type RequestLargeOptions,
  type ServeLargeOptions,
} from './src/large.ts';
export {
  requestWithRetry,
  retrying,
  isRetryable,
  retryDeadlineMs,
  retryAttemptMs,
  DEFAULT_BACKOFF,
  DEFAULT_RETRY_DEADLINE_MS,
  type Backoff,
  type RetryOptions,
  type RetryingOptions,
  type RequestWithRetryOptions,
  type Attempt,
} from './src/retry.ts';
export { levenshtein, didYouMean, type DidYouMeanOptions } from './src/suggest.ts';
export { connectActor, exitOnSignals, actorLog, runActor, EXIT_DIVERGED, intFlag, numberFlag, hyperFlags, FlagError, type ActorConnection } from './src/actor.ts';
export { startHeartbeat, LivenessTracker, type HeartbeatHandle } from './src/heartbeat.ts';
export { registerActorService, actorName, listActorServices, actorServiceStats, ACTOR_SERVICE_NAME, type ActorService, type ActorServiceOptions, type ActorStats } from './src/service.ts';
export type { Msg, Subscription } from '@nats-io/nats-core';
export {
  ROLES,
  rolePermissions,
  roleUser,
  roleOfApp,
  generateRoleCredentials,
  natsAuthUsers,
  natsAuthConfig,
  credentialsEnv,
  roleConnectOptions,
  inboxPrefix,
  trainerRankUser,
  trainerRankPermissions,
  printNatsConfig,
  nodeUser,
  nodeInboxPrefix,
  nodePermissions,
  generateNodeCredentials,
  nodeCredentialsEnv,
  nodeConnectOptions,
  natsNodeUsers,
  PermissionsConfigError,
  RESPONSE_PERMISSION,
  type Role,
  type RoleCredentials,
  type JobCredentials,
  type NatsPermissions,
  type SubjectPermission,
  type ResponsePermission,
  type NatsAuthConfigOptions,
  type NodeCredentials,
} from './src/permissions.ts';
