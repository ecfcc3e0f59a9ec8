// The public surface of @holdfast/core. Internals are not re-exported wholesale: every public
// name is listed here.
export { createClient } from './client'
export { fetchBootstrap } from './fetchBootstrap'
export type { FetchBootstrapOptions } from './fetchBootstrap'
export { HoldfastError, isRetryable } from './errors'
export { backoffDelay, parseRetryAfter } from './backoff'
export type { BackoffOptions } from './backoff'
export { createMemoryStorage, createIndexedDbStorage } from './storage'
export { stableStringify } from './hash'
// The pure per-flag merge (last known good), shared with @holdfast/server's relay so the rule is written once.
export { mergeResponse } from './merge'
export type { HeldFlag, FlagMap, MergeResult } from './merge'
export type {
  Bootstrap,
  ClientOptions,
  Clock,
  Details,
  ErrorCode,
  EvaluateOptions,
  EvaluationContext,
  EventOptions,
  EventStats,
  FlagClient,
  FlagEntry,
  FlagMetadata,
  FlagStorage,
  HoldfastEvent,
  JsonValue,
  Logger,
  Status,
  ValueSource,
} from './types'
