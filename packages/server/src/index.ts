// The public API of @holdfast/server. Everything else in src/ is internal.
export { createFlagServer, DEFAULT_HOST, DEFAULT_PORT } from './flagServer'
export type { FlagServer, FlagServerOptions } from './flagServer'
export { createFlagHandler } from './flagHandler'
export type { FlagHandler, FlagHandlerOptions } from './flagHandler'
export type { Middleware, Route, RouteHandler, RequestListener } from './http/requestHandler'
export { toFetchHandler } from './http/fetchAdapter'
export { CorsResponse } from './http/corsResponse'
export type { FetchHandler } from './http/fetchAdapter'
export type { FlagdDefinitions, FlagdFlag, FlagMetadata, JsonValue } from './flags/flagDefinitions'
export { parseFlagDefinitions, compileFlagDefinitions } from './flags/flagDefinitions'
export type { ParsedFlags, ParseOptions } from './flags/flagDefinitions'
export type { FlagSource, FlagSourceEvent, FlagSourceStatus, FlagDefinitionsVersion, FlagOrigin, ForwardedRequest, ForwardedAnswer } from './flags/flagSource'
export { createListeners } from './flags/flagSource'
export { createFileSource, createStaticSource } from './flags/fileSource'
export type { EditableFlagSource, LocalSourceOptions } from './flags/fileSource'
export { refusalReason, changedKeys, DEFAULT_MAX_SHRINK_PERCENT } from './flags/guard'
// The relay (CONTRACT §9): its options, status and sources, and the data dir's generation store.
export { DEFAULT_POLL_INTERVAL_SECONDS } from './flags/relayOptions'
export type { RelayOptions } from './flags/relayOptions'
export type { RefreshResult } from './flags/refreshResult'
export type { RelaySource } from './flags/relay'
export type { HoldfastMetadata, RelayMode, RelayStatus, ServedSource } from './flags/relayStatus'
export { createUrlSource } from './flags/urlSource'
export type { UrlSourceOptions } from './flags/urlSource'
export { createUpstreamSource, DEFAULT_FORWARD_HEADERS } from './flags/upstreamSource'
export type { UpstreamSourceOptions } from './flags/upstreamSource'
export { createGenerationStore, DEFAULT_KEEP_GENERATIONS } from './flags/generations'
export type { GenerationStore, GenerationStoreOptions, GenerationInfo, LoadedGeneration, SkippedGeneration } from './flags/generations'
export { makeSnapshot } from './flags/snapshotCommand'
export type { SnapshotRequest, SnapshotResult } from './flags/snapshotCommand'
export { DEFAULT_UPSTREAM_TIMEOUT_MS } from './flags/upstreamFetch'
export { createServerMetrics } from './metrics'
export { createStreamHub } from './ofrep/stream'
export { STREAM_PATH } from './ofrep/streamHub'
export type { FleetStreams, StreamHub, StreamNotice } from './ofrep/streamHub'
export type { StreamHubOptions } from './ofrep/streamHubOptions'
export type { LatencyValue, RouteLatency, ServerMetrics } from './metrics'
export type { OfrepBulkResponse, OfrepEntry, OfrepFailure, OfrepSuccess } from './ofrep/evaluate'
export {
  DEFAULT_REQUEST_LIMITS,
  FORBIDDEN_KEYS,
  bootstrapSchema,
  bootstrapEnvelopeSchema,
  evaluationContextSchema,
  evaluationRequestSchema,
  flagEntrySchema,
  ofrepBulkResponseSchema,
  ofrepFailureSchema,
  ofrepSuccessSchema,
} from './ofrep/schemas'
export type { RequestLimits, RequestErrorCode } from './ofrep/schemas'
export { flagdDocumentSchema } from './flags/schemas'
export { bootstrapJsonSchema } from './ofrep/jsonSchemas'
export type { ReceivedEvent } from './events/schema'
export type { AcceptResult, SinkClock } from './events/sink'
export type { StoreStall } from './events/storeStall'
export { EVENT_LIMITS, eventBatchSchema, eventSchema, readEventBatch } from './events/schema'
export { nodeFileSystem } from './events/fileSystem'
export type { EventFile, EventFileSystem } from './events/fileSystem'
export type { ForwarderOptions } from './events/forwarderOptions'
export type { ForwarderClock } from './events/forwarderClock'
export type { ForwardingStats, ForwardOutcome } from './events/forwardingStats'
export type { DedupeWindowOptions } from './events/dedupeWindow'
export { DEFAULT_SPOOL_DIR } from './events/eventsOptions'
export { createDeadLetter, deadLetterPath, DEAD_LETTER_MAX_BYTES } from './events/deadLetter'
export type { DeadLetter, DeadLetterRecord, DeadLetterStats } from './events/deadLetter'
export { runEventsCli, EVENTS_USAGE } from './events/replayCli'
export type { EventsOptions } from './events/eventsOptions'
export type { EventsStatus } from './events/eventsStatus'
export { OUTAGE_MODES } from './demo/outage'
export type { OutageMode, OutageState } from './demo/outage'
export { consoleLogger, silentLogger } from './logger'
export type { ServerLogger } from './logger'
export { MAX_BODY_BYTES } from './http/body'
export type { RedisRelayOptions } from './store/relayStore'
export { createRedisStore } from './store/redisStore'
export type { RedisStoreOptions } from './store/redisStoreOptions'
export { createMemoryStore } from './store/memoryStore'
export type { MemoryStoreOptions } from './store/memoryStore'
export { storeNamespace } from './store/storeNamespace'
export { createLeaseKeeper, DEFAULT_LEASE_TTL_MS } from './store/leaseKeeper'
export type { LeaseKeeper, LeaseKeeperOptions, LeaseRole } from './store/leaseKeeper'
export { createStoreReplica } from './store/storeReplica'
export type { LocalDocument, StoreReplica, StoreReplicaOptions } from './store/storeReplica'
export { createSharedContexts } from './store/sharedContexts'
export type { SharedContexts } from './store/sharedContexts'
export type { SharedContextsOptions } from './store/sharedContextsOptions'
export { createSharedDefinitions } from './store/sharedDefinitions'
export type { Asked, PollOutcome, SharedDefinitions, SharedStatus } from './store/sharedDefinitions'
export type { SharedDefinitionsOptions } from './store/sharedDefinitionsOptions'
export type { UpstreamReport } from './store/upstreamReport'
export type {
  LeaseOutcome,
  PutOutcome,
  SharedStore,
  StoredDocument,
  StoreNotice,
  StoreResult,
  StoreStatus,
} from './store/sharedStore'
