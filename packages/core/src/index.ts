// The public surface of @holdfast/core. Internals are not re-exported wholesale: every public
// name is listed here.
export { createClient } from './client'
export { observeFlag } from './flags/details'
export { fetchBootstrap } from './fetchBootstrap'
export type { FetchBootstrapOptions } from './fetchBootstrap'
export { HoldfastError, isRetryable } from './platform/errors'
export { backoffDelay, parseRetryAfter } from './platform/backoff'
export type { BackoffOptions } from './platform/backoff'
export { createScheduler } from './platform/scheduler'
export type { Scheduler, SchedulerOptions, Trigger } from './platform/scheduler'
export { browserEnvironment } from './platform/environment'
export { createMemoryStorage, createIndexedDbStorage } from './platform/storage'
export { stableStringify } from './platform/hash'
export { createLogger } from './platform/logger'
// The pure per-flag merge (last known good), shared with @holdfast/server's relay so the rule is written once.
export { mergeResponse } from './flags/merge'
export type { HeldFlag, FlagMap, MergeResult } from './flags/merge'
export type {
  Bootstrap,
  BootstrapInput,
  ClientOptions,
  Clock,
  Details,
  ErrorCode,
  EvaluateOptions,
  Environment,
  EnvironmentHandlers,
  EvaluationContext,
  EventOptions,
  EventStats,
  FlagClient,
  FlagEntry,
  FlagMetadata,
  FlagObservation,
  FlagObserver,
  FlagStorage,
  HeadersOption,
  HoldfastEvent,
  JsonInput,
  JsonValue,
  WidenLiteral,
  LiveOptions,
  Logger,
  Status,
  ValueSource,
} from './types'
