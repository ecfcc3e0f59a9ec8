// The public API of @holdfast/server. Everything else in src/ is internal.
export { createFlagServer, DEFAULT_HOST, DEFAULT_PORT } from './flagServer'
export type { FlagServer, FlagServerOptions } from './flagServer'
export { createFlagHandler } from './flagHandler'
export type { FlagHandler, FlagHandlerOptions } from './flagHandler'
export type { Middleware, Route, RouteHandler, RequestListener } from './http/requestHandler'
export { toFetchHandler } from './http/fetchAdapter'
export type { FetchHandler } from './http/fetchAdapter'
export type { FlagdDefinitions, FlagdFlag, FlagMetadata, JsonValue } from './flags/flagDefinitions'
export { parseFlagDefinitions, compileFlagDefinitions } from './flags/flagDefinitions'
export type { ParsedFlags, ParseOptions } from './flags/flagDefinitions'
export type { FlagSource, FlagSourceEvent, FlagSourceStatus, FlagDefinitionsVersion, FlagOrigin, ForwardedRequest, ForwardedAnswer } from './flags/flagSource'
export { createListeners } from './flags/flagSource'
export { createFileSource, createStaticSource } from './flags/fileSource'
export type { EditableFlagSource, LocalSourceOptions } from './flags/fileSource'
export { refusalReason, changedKeys, DEFAULT_MAX_SHRINK_PERCENT } from './flags/guard'
export { createServerMetrics } from './metrics'
export type { ServerMetrics } from './metrics'
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
export type { AcceptResult } from './events/sink'
export { EVENT_LIMITS, eventBatchSchema, eventSchema, readEventBatch } from './events/schema'
export { nodeFileSystem } from './events/fileSystem'
export type { EventFile, EventFileSystem } from './events/fileSystem'
export type { ForwarderClock, ForwarderOptions, ForwardingStats, ForwardOutcome } from './events/forwarder'
export type { DedupeWindowOptions } from './events/dedupeWindow'
export { DEFAULT_SPOOL_DIR } from './events/pipeline'
export type { EventsOptions } from './events/pipeline'
export { OUTAGE_MODES } from './demo/outage'
export type { OutageMode, OutageState } from './demo/outage'
export { consoleLogger, silentLogger } from './logger'
export type { ServerLogger } from './logger'
export { MAX_BODY_BYTES } from './http/body'
