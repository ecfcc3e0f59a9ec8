import type { BackoffOptions } from './backoff'

/** Any value JSON can carry: what a flag may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Flat metadata attached to flags and events (OFREP: string, number or boolean values). */
export type FlagMetadata = Record<string, string | number | boolean>

/**
 * Who the flags are for. `targetingKey` identifies the user (or device); every other attribute
 * is passed to the server's targeting rules as is.
 */
export interface EvaluationContext {
  targetingKey: string
  [attribute: string]: unknown
}

/**
 * One flag as the OFREP bulk endpoint returns it: a success (`value`, `variant`, `reason`,
 * `metadata`, all optional) or a failure (`errorCode`, `errorDetails`). `value` absent or `null`
 * means "use the caller's default".
 */
export interface FlagEntry {
  key: string
  value?: JsonValue
  reason?: string
  variant?: string
  metadata?: FlagMetadata
  errorCode?: string
  errorDetails?: string
  /** Epoch ms when this content was first received (set on persisted and bootstrap entries). */
  updatedAt?: number
}

/**
 * A snapshot of one user's flags in a form that can be serialised into HTML or a build:
 * what `fetchBootstrap` returns and what `client.snapshot()` produces.
 */
export interface Bootstrap {
  context: EvaluationContext
  flags: FlagEntry[]
  /** The server's ETag for this snapshot; sent as `If-None-Match` on the client's first request. */
  etag?: string
  /** Epoch ms when the snapshot was fetched; the `updatedAt` of its flags. */
  fetchedAt: number
}

/** Where a value came from, best first: `network` > `cache`/`bootstrap` (newer wins) > `fallback` > `default`. */
export type ValueSource = 'network' | 'cache' | 'bootstrap' | 'fallback' | 'default'

/** Everything known about one evaluation. */
export interface Details<T> {
  key: string
  value: T
  source: ValueSource
  reason?: string
  variant?: string
  metadata?: FlagMetadata
  /** `FLAG_NOT_FOUND`, `TYPE_MISMATCH`, or the server's per-flag error code. */
  errorCode?: string
  /** Epoch ms when this content was first received; an identical re-confirmation does not move it. */
  updatedAt?: number
  /** True when the latest attempt failed, or did not confirm this flag. */
  stale: boolean
}

/** Error codes of `Status.error` and of events. */
export type ErrorCode =
  | 'NETWORK'
  | 'TIMEOUT'
  | 'HTTP'
  | 'INVALID_RESPONSE'
  | 'EMPTY_RESPONSE'
  | 'UNAUTHORIZED'
  | 'INVALID_CONTEXT'
  | 'BOOTSTRAP_INVALID'
  | 'BOOTSTRAP_CONTEXT_MISMATCH'
  | 'STORAGE'

/** The client's state, for an app that wants to say how fresh its values are. */
export interface Status {
  /**
   * `loading`: no values yet and the first attempt is pending. `ready`: values in hand and the
   * latest finished attempt succeeded (or none has finished). `stale`: values in hand but the
   * latest attempt failed. `error`: credentials or context rejected, or no values after a failure.
   */
  state: 'loading' | 'ready' | 'stale' | 'error'
  /** The source of the data most recently applied. */
  source: 'none' | 'network' | 'cache' | 'bootstrap' | 'fallback'
  /** Epoch ms of the last 200 or 304; a failure leaves it unchanged. */
  lastSuccessAt?: number
  error?: { code: string; message: string; httpStatus?: number }
  /** Where values and events are persisted: IndexedDB, or memory when IndexedDB is missing or failing. */
  storage: 'indexeddb' | 'memory'
}

/** Development warnings and errors; every message starts with `[holdfast]`. Default: `console`. */
export interface Logger {
  warn(message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
  debug?(message: string, ...args: unknown[]): void
}

/**
 * A key-value store for persisted flags and events. The default is IndexedDB through idb-keyval;
 * pass your own (e.g. for React Native) or `'memory'`. Methods may reject: the client treats a
 * failed read as a miss and logs a failed write.
 */
export interface FlagStorage {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
  del(key: string): Promise<void>
  /** All keys; used to find persisted events and cache entries. */
  keys(): Promise<string[]>
  /** Optional batched forms; the client falls back to one call per key. */
  getMany?(keys: string[]): Promise<unknown[]>
  setMany?(entries: [string, unknown][]): Promise<void>
  delMany?(keys: string[]): Promise<void>
}

/** Time as the client sees it; tests pass a fake. Default: `Date.now`, `setTimeout`, `clearTimeout`. */
export interface Clock {
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Options of the event pipeline (`ClientOptions.events`). */
export interface EventOptions {
  /** Receiver URL: `POST {url}` with `{"events": [...]}`. Runs of slashes in its path are collapsed (`https://x//holdfast/v1/events` posts to `/holdfast/v1/events`). Required. */
  url: string
  /** Flush period. Default 10,000 ms. */
  flushIntervalMs?: number
  /** Events per request; reaching it triggers a flush. Default 100. */
  batchSize?: number
  /** Queue bound; past it the oldest events are dropped (and counted). Default 10,000. */
  maxQueued?: number
  /** Log an exposure per (context, flag, value, variant) on evaluation. Default true. */
  exposures?: boolean
  /** Retry delays after a failed send (capped exponential with jitter). Default 1,000 ms doubling up to 60,000 ms. */
  backoff?: BackoffOptions
}

/** An event as it is sent: `POST {events.url}` with `{"events": [HoldfastEvent, ...]}`. */
export interface HoldfastEvent {
  id: string
  type: 'exposure' | 'custom'
  name: string
  time: number
  targetingKey?: string
  flagKey?: string
  value?: JsonValue
  variant?: string
  reason?: string
  source?: ValueSource
  metadata?: FlagMetadata
}

/**
 * What the event queue has done, for an app or a demo that shows why events are waiting. Counts
 * are of events, except `retriedRequests`.
 */
export interface EventStats {
  /** Events waiting to be sent: this page's and those other pages left in storage. */
  queued: number
  /** Events a receiver accepted (2xx). */
  sent: number
  /** Events given up on: rejected by the receiver (400, 422, a lone 413), unreadable in storage, not serialisable, or pushed out by `maxQueued`. */
  dropped: number
  /** Events sent again after a failed request (one event in three failed requests counts 3). */
  retries: number
  /** Requests that carried events sent before (what the network saw, not events × attempts). */
  retriedRequests: number
  /**
   * Why events are waiting: the failure of the latest delivery attempt, until a request succeeds.
   * 401, 403, 404, 405 and 410 mean the events URL or its key is wrong; the events are kept and
   * retried with backoff. Absent while nothing failed.
   */
  lastError?: { code: string; message: string; httpStatus?: number }
}

/** Options of `createClient`. */
export interface ClientOptions {
  /** OFREP base URL; the client posts to `{url}/ofrep/v1/evaluate/flags`. Required. */
  url: string
  /** The user the flags are for. Required, with a `targetingKey`. */
  context: EvaluationContext
  /** Sent on every request; a function is called per request (e.g. to refresh a token). */
  headers?: Record<string, string> | (() => Record<string, string>)
  /** Server-rendered snapshot for this user, applied synchronously inside `createClient`. */
  bootstrap?: Bootstrap
  /** Build-time snapshot for any user: lowest precedence, for a first visit with no network. */
  fallback?: Bootstrap
  /** Default `'indexeddb'` where available, else `'memory'`. */
  storage?: 'indexeddb' | 'memory' | FlagStorage
  /** IndexedDB database name prefix; two clients with the same name share values and events. Default `'holdfast'`. */
  storageName?: string
  /** Per-request timeout. Default 5,000 ms. */
  requestTimeoutMs?: number
  /** Polling period; 0 turns polling off. Default 0. */
  refreshIntervalMs?: number
  /** Refetch (throttled to once per 5 s) when the page becomes visible or the window gains focus. Default true. */
  refreshOnFocus?: boolean
  /** Accept a clean response with zero flags while flags are held. Default false (`EMPTY_RESPONSE`). */
  acceptEmptyResponse?: boolean
  /** On 401/403, also drop the held and persisted values of the context. Default false. */
  clearCacheOnUnauthorized?: boolean
  /** The event pipeline; `false` or absent turns it off. */
  events?: false | EventOptions
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch
  /** Default `console`. */
  logger?: Logger
  /** Default: the real clock and timers. */
  clock?: Clock
  /** Source of randomness for backoff jitter. Default `Math.random`. */
  random?: () => number
}

/** Options of `getDetails` and friends beyond the contract. */
export interface EvaluateOptions {
  /** Log an exposure for this evaluation. Default true; React hooks pass false and log after commit. */
  exposure?: boolean
}

/** The client. Evaluation is synchronous and never throws; nothing here rejects. */
export interface FlagClient {
  /**
   * Opens storage, applies the cache and sends the first request; with `events` set it also
   * attaches the event listeners and fetches event delivery (a chunk) meanwhile, without waiting
   * for it. Resolves with the status once the first network attempt settled; never rejects.
   * Idempotent.
   */
  start(): Promise<Status>
  getGate(key: string, defaultValue?: boolean): boolean
  getConfig<T extends object>(key: string, defaultValue?: T): T
  getValue<T extends JsonValue>(key: string, defaultValue: T): T
  getDetails<T>(key: string, defaultValue: T, options?: EvaluateOptions): Details<T>
  getStatus(): Status
  refresh(): Promise<Status>
  setContext(context: EvaluationContext): Promise<Status>
  getContext(): EvaluationContext
  subscribe(listener: () => void): () => void
  subscribeFlag(key: string, listener: () => void): () => void
  logEvent(name: string, options?: { value?: string | number; metadata?: FlagMetadata }): void
  /** Log the exposure of an evaluation made with `{ exposure: false }` (React hooks do, after commit). */
  logExposure(details: Details<unknown>): void
  flush(): Promise<void>
  getEventStats(): EventStats
  snapshot(): Bootstrap
  clearCache(): Promise<void>
  close(): Promise<void>
}
