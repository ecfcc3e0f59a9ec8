// The public API of @holdfast/server. Everything else in src/ is internal.
export { createFlagServer, DEFAULT_HOST, DEFAULT_PORT } from './flagServer'
export type { FlagServer, FlagServerOptions } from './flagServer'
export type { FlagdDefinitions, FlagdFlag, FlagMetadata, JsonValue } from './flagDefinitions'
export type { OfrepBulkResponse, OfrepEntry, OfrepFailure, OfrepSuccess } from './evaluate'
export type { ReceivedEvent, AcceptResult } from './eventSink'
export { OUTAGE_MODES } from './outage'
export type { OutageMode, OutageState } from './outage'
export { consoleLogger, silentLogger } from './logger'
export type { ServerLogger } from './logger'
export { MAX_BODY_BYTES } from './http'
export { createRedisStore } from './store/redisStore'
export type { RedisStoreOptions } from './store/redisStore'
export { createMemoryStore } from './store/memoryStore'
export type { MemoryStoreOptions } from './store/memoryStore'
export { storeNamespace } from './store/storeNamespace'
export { createLeaseKeeper, DEFAULT_LEASE_TTL_MS } from './store/leaseKeeper'
export type { LeaseKeeper, LeaseKeeperOptions, LeaseRole } from './store/leaseKeeper'
export { createStoreReplica } from './store/storeReplica'
export type { LocalDocument, StoreReplica, StoreReplicaOptions } from './store/storeReplica'
export { createSharedContexts } from './store/sharedContexts'
export type { SharedContexts, SharedContextsOptions } from './store/sharedContexts'
export { createSharedDefinitions } from './store/sharedDefinitions'
export type { PollOutcome, SharedDefinitions, SharedDefinitionsOptions, SharedStatus, UpstreamReport } from './store/sharedDefinitions'
export type {
  LeaseOutcome,
  PutOutcome,
  SharedStore,
  StoredDocument,
  StoreNotice,
  StoreResult,
  StoreStatus,
} from './store/sharedStore'
