import type { BackoffOptions } from './platform/backoff'

/** Any value JSON can carry: what a flag may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Flat metadata attached to flags and events (OFREP: string, number or boolean values). */
export type FlagMetadata = Record<string, string | number | boolean>

/**
 * Who the flags are for. `targetingKey` identifies the user (or device); every other attribute
 * is passed to the server's targeting rules as is.
 */
export interface EvaluationContext {
  /**
   * Identifies the user (or device) the flags are for: the cache keeps one entry per targetingKey
   * (and URL and static headers), while an ETag is sent, and an exposure logged once, per whole
   * context. Required: `createClient` throws without a string one.
   */
  targetingKey: string
  [attribute: string]: unknown
}

/**
 * One flag as the OFREP bulk endpoint returns it: a success (`value`, `variant`, `reason`,
 * `metadata`, all optional) or a failure (`errorCode`, `errorDetails`). `value` absent or `null`
 * means "use the caller's default".
 */
export interface FlagEntry {
  /** The flag's key; an entry without a string key is skipped when a response is read. */
  key: string
  /** The flag's value; absent or `null` means "use the caller's default". */
  value?: JsonValue
  /** Why the server chose this value (`STATIC`, `TARGETING_MATCH`, …; unknown reasons pass through). */
  reason?: string
  /** The name of the variant served, when the server names one. */
  variant?: string
  /** Flat metadata the server attached to this flag. */
  metadata?: FlagMetadata
  /**
   * Set on a failed evaluation (`FLAG_NOT_FOUND`, `PARSE_ERROR`, …). `FLAG_NOT_FOUND` removes the
   * flag (the caller's default is served); any other code keeps the last known good value, marked
   * stale, or serves the caller's default when none is held.
   */
  errorCode?: string
  /** The server's human-readable explanation of `errorCode`. */
  errorDetails?: string
  /** Epoch ms when this content was first received (set on persisted and bootstrap entries). */
  updatedAt?: number
}

/**
 * A snapshot of one user's flags in a form that can be serialised into HTML or a build:
 * what `fetchBootstrap` returns and what `client.snapshot()` produces.
 */
export interface Bootstrap {
  /** The user these flags were evaluated for; applied only to a client with the same `targetingKey` (another one: `BOOTSTRAP_CONTEXT_MISMATCH`, not applied). */
  context: EvaluationContext
  /** The flags as the server returned them, one entry per flag. */
  flags: FlagEntry[]
  /** The server's ETag for this snapshot; sent as `If-None-Match` on the client's first request. */
  etag?: string
  /**
   * Epoch ms when the snapshot was fetched (by `fetchBootstrap`: when the relay that answered
   * fetched it, if earlier); the `updatedAt` of its flags.
   */
  fetchedAt: number
  /**
   * True when the server said these values are stale (a relay answering from its last known good
   * through an outage of its own source). A client given it shows the flags as `stale`, with
   * status `stale` and error `UPSTREAM_STALE`, until a response says otherwise. Absent: fresh.
   */
  stale?: boolean
}

/**
 * JSON as TypeScript types an imported `.json` file: an object property may be `undefined`, because
 * an array's entries are typed as one union in which each entry gets the keys only others have as
 * `?: undefined`. Such a property counts as absent, as in JSON.
 */
export type JsonInput = string | number | boolean | null | JsonInput[] | { [key: string]: JsonInput | undefined }

/** What `bootstrap` and `fallback` take: a `Bootstrap`, or a JSON import of one (`import fallback from './flags.fallback.json'`) without a cast. */
export interface BootstrapInput extends Omit<Bootstrap, 'flags'> {
  /** The flags, as in `Bootstrap.flags`; a JSON import's `undefined` properties count as absent. */
  flags: Array<Omit<FlagEntry, 'value' | 'metadata'> & { value?: JsonInput; metadata?: Record<string, string | number | boolean | undefined> }>
}

/** Configured request headers: an object, or a function called per request that returns one (or a promise of one). */
export type HeadersOption = Record<string, string> | (() => Record<string, string> | PromiseLike<Record<string, string>>)

/**
 * Where a value came from, best first: `network` > `cache`/`bootstrap` (newer wins) > `fallback` > `default`.
 * `fallback` also marks the previous user's values shown during a switch until the new user's arrive:
 * values for any user, none of them the new user's own.
 */
export type ValueSource = 'network' | 'cache' | 'bootstrap' | 'fallback' | 'default'

/** Everything known about one evaluation. */
export interface Details<T> {
  /** The flag's key, as asked for. */
  key: string
  /** The value served: the held one, or the caller's default when there is none or it has another type. */
  value: T
  /**
   * Where the flag's content came from; `default` when nothing is held for it (missing, or a failure
   * with no last known good value). A held flag keeps its source even when `value` is the caller's
   * default (no value sent, `TYPE_MISMATCH`).
   */
  source: ValueSource
  /** The server's reason for the value (`STATIC`, `TARGETING_MATCH`, …), when it gave one. */
  reason?: string
  /** The variant served, when the server named one. */
  variant?: string
  /** Flat metadata the server attached to this flag. */
  metadata?: FlagMetadata
  /** `FLAG_NOT_FOUND`, `TYPE_MISMATCH`, or the server's per-flag error code. */
  errorCode?: string
  /** Epoch ms when this content was first received; an identical re-confirmation does not move it. */
  updatedAt?: number
  /** True when the latest attempt failed, or did not confirm this flag. */
  stale: boolean
}

/**
 * Error codes of `Status.error` and of events. `UPSTREAM_STALE`: the server (a relay) answered,
 * but said its own values are stale (its upstream is failing); the values are served, marked stale.
 */
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
  | 'UPSTREAM_STALE'

/** The client's state, for an app that wants to say how fresh its values are. */
export interface Status {
  /**
   * `loading`: no values of this user's yet (values from `fallback` alone do not count) and the
   * first attempt is pending. `ready`: this user's values in hand and the latest finished attempt
   * succeeded (or none has finished). `stale`: values in hand but the latest attempt failed, or the
   * server said its own values are stale (`UPSTREAM_STALE`). `error`: credentials or context
   * rejected, or no values of this user's after a failed attempt.
   */
  state: 'loading' | 'ready' | 'stale' | 'error'
  /** The source of the data most recently applied. */
  source: 'none' | 'network' | 'cache' | 'bootstrap' | 'fallback'
  /** Epoch ms of the last 200 or 304; a failure leaves it unchanged. */
  lastSuccessAt?: number
  /**
   * Why the state is `stale` or `error`: the failure of the latest attempt (or the server's
   * `UPSTREAM_STALE`), as plain data; cleared by the next success with fresh values. Also set while
   * the state may be `loading` or `ready`: a bootstrap problem (`BOOTSTRAP_INVALID`,
   * `BOOTSTRAP_CONTEXT_MISMATCH`) until the first success, and `STORAGE` while values are kept in
   * memory only because IndexedDB failed.
   */
  error?: {
    /** One of `ErrorCode`. */
    code: string
    /** A readable account of the failure, for logs and support. */
    message: string
    /** The HTTP status, when the server answered with one. */
    httpStatus?: number
  }
  /**
   * Where values and events are persisted: IndexedDB, or memory when IndexedDB is missing or failing
   * (or `storage: 'memory'` was asked for). A `FlagStorage` of your own counts as persistent and
   * shared, `indexeddb`, until it fails (the client cannot tell what is behind it), including
   * `createMemoryStorage()`, whose Map stands for a database shared by clients.
   */
  storage: 'indexeddb' | 'memory'
  /**
   * True once `start()` has read the cache for the current user (whether or not it held anything),
   * so what is on screen is the best the page can know before the network answers. Absent (false)
   * before `start()`, on a server, and while the cache is being read; a user switch resets it until
   * the new user's cache entry is read.
   */
  cacheRead?: boolean
  /**
   * True from `pause()` (or a `setContext` without a `targetingKey`: a logout) until the next
   * `setContext`: no user is on the page, so the values held are nobody's and log no exposure.
   * Absent otherwise.
   */
  paused?: boolean
}

/** Development warnings and errors; every message starts with `[holdfast]`. Default: `console`. */
export interface Logger {
  /** Something the app should look at: a failed request or write, an option that fell back to its default. */
  warn(message: string, ...args: unknown[]): void
  /** A mistake the app made (a bad context, a missing option) or a failure it cannot recover from. */
  error(message: string, ...args: unknown[]): void
  /** Optional tracing of what the client does; nothing is logged at this level when absent. */
  debug?(message: string, ...args: unknown[]): void
}

/**
 * The result type of `getValue`/`useValue` for a default of type `T`: a lone literal (`'light'`, `10`,
 * `false`, as a literal default is inferred) widens to its JSON type `W`; a union the app declared
 * (`type Theme = 'light' | 'dark'`) stays as it is, so `const t: Theme = getValue('theme', defaults.theme)` compiles.
 */
export type WidenLiteral<T, W> = true extends IsUnion<T> ? T : W
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never

/**
 * A key-value store for persisted flags and events. The default is IndexedDB through idb-keyval;
 * pass your own (e.g. for React Native) or `'memory'`. Methods may reject: the client never
 * throws for it. A call that rejects or does not settle within 3 s counts as a miss (a read) or is
 * logged (a write), and moves the client to memory (`Status.storage: 'memory'`, `Status.error`
 * `STORAGE`); it tries the storage again once a minute and goes back to it once a write succeeds.
 */
export interface FlagStorage {
  /** Reads one key: `undefined` when absent. A rejection counts as a miss (and moves the client to memory). */
  get(key: string): Promise<unknown>
  /** Writes one key (values are structured-clonable plain data). A rejection is logged (and moves the client to memory). */
  set(key: string, value: unknown): Promise<void>
  /** Deletes one key; deleting an absent key is not an error. */
  del(key: string): Promise<void>
  /** All keys; used to find persisted events and cache entries. */
  keys(): Promise<string[]>
  /** Optional batched forms; the client falls back to one call per key. */
  getMany?(keys: string[]): Promise<unknown[]>
  /** Optional: writes several keys at once; without it the client calls `set` per key. */
  setMany?(entries: [string, unknown][]): Promise<void>
  /** Optional: deletes several keys at once; without it the client calls `del` per key. */
  delMany?(keys: string[]): Promise<void>
  /**
   * Optional: reads `key` and, when `fn` returns a truthy value for what was read, writes it (when
   * it returns `null`, deletes the key), in one transaction, so no other tab's write lands between
   * the two (IndexedDB's does). Without it the client calls `get`, then `set` or `del`.
   */
  update?(key: string, fn: (value: unknown) => unknown): Promise<void>
}

/** What the environment tells a listener; every handler is optional. */
export interface EnvironmentHandlers {
  /** The page became visible or the window gained focus. */
  onVisible?: () => void
  /**
   * The page is being hidden or unloaded: last chance to send (keepalive). On `pagehide` it gets
   * that event: `persisted` means the page goes into the back/forward cache, frozen until restored.
   */
  onHidden?: (event?: { persisted?: boolean }) => void
  /** The browser reports it is back online. */
  onOnline?: () => void
  /** The page is about to be frozen (page lifecycle `freeze`): no script runs until `onResume`. */
  onFreeze?: () => void
  /** The frozen page runs again (`resume`). */
  onResume?: () => void
}

/**
 * The browser signals the client reacts to: online state, visibility, and the focus, visibility,
 * `online` and page-hide events. Default: the browser's (`navigator.onLine`,
 * `document.visibilityState`, window/document listeners); on a server, always online and visible
 * with no events. Tests pass a fake to drive them without patching globals.
 */
export interface Environment {
  /** Whether the network is believed to be up. */
  online(): boolean
  /** Whether the page is visible. */
  visible(): boolean
  /** Attaches the handlers; returns the function that removes every one of them. */
  listen(handlers: EnvironmentHandlers): () => void
}

/** Time as the client sees it; tests pass a fake. Default: `Date.now`, `setTimeout`, `clearTimeout`. */
export interface Clock {
  /** The current time in epoch milliseconds (`Date.now`). */
  now(): number
  /** Calls `callback` after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown
  /** Cancels a timer `setTimeout` returned; an unknown or fired handle is ignored. */
  clearTimeout(handle: unknown): void
}

/** Options of the event pipeline: where events go, how often and how many are sent, and the queue bound. */
export interface EventOptions {
  /** Receiver URL: `POST {url}` with `{"events": [...]}`. Runs of slashes in its path are collapsed (`https://x//holdfast/v1/events` posts to `/holdfast/v1/events`). Required. */
  url: string
  /** Flush period, at least 100 ms (an unusable value falls back to the default with a warning). Default 10,000 ms. */
  flushIntervalMs?: number
  /** Events per request; reaching it triggers a flush. At least 1. Default 100. */
  batchSize?: number
  /** Queue bound; past it the oldest events (in the order they were logged) are dropped and counted. At least 1. Default 10,000. */
  maxQueued?: number
  /** Log an exposure per (context, flag, value, variant) on evaluation. Default true. */
  exposures?: boolean
  /** Retry delays after a failed send (capped exponential with jitter). Default 1,000 ms doubling up to 60,000 ms. */
  backoff?: BackoffOptions
}

/** An event as it is sent: `POST {events.url}` with `{"events": [Event, ...]}`. */
export interface HoldfastEvent {
  /** A unique id (UUID v4) per event; receivers de-duplicate by it, since delivery is at-least-once. */
  id: string
  /** `exposure`: a flag was evaluated and shown; `custom`: the app called `logEvent`. */
  type: 'exposure' | 'custom'
  /** The name passed to `logEvent`; for an exposure, the flag key. */
  name: string
  /** When the event happened, in epoch milliseconds. */
  time: number
  /** The user's `targetingKey` when it was logged; absent while paused or while the context has none. */
  targetingKey?: string
  /** Exposures: the flag evaluated. */
  flagKey?: string
  /** Exposures: the value served; custom events: the `value` passed to `logEvent`. */
  value?: JsonValue
  /** Exposures: the variant served, when the server named one. */
  variant?: string
  /** Exposures: the server's reason for the value, when it gave one. */
  reason?: string
  /** Exposures: where the value came from (`network`, `cache`, …). */
  source?: ValueSource
  /** Custom events: the `metadata` passed to `logEvent` (string, finite number and boolean values). */
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
  lastError?: {
    /** One of `ErrorCode`. */
    code: string
    /** A readable account of the failure, for logs and support. */
    message: string
    /** The receiver's HTTP status, when it answered with one. */
    httpStatus?: number
  }
}

/** Options of `createClient`. */
export interface ClientOptions {
  /**
   * OFREP base URL with its scheme, e.g. `https://flags.example.com` (not the full endpoint path);
   * the client posts to `{url}/ofrep/v1/evaluate/flags`. Required: a missing or malformed `url`
   * throws at creation (a programmer mistake, not a runtime failure).
   */
  url: string
  /** The user the flags are for. Required, with a `targetingKey`. */
  context: EvaluationContext
  /**
   * Sent on every request; a function is called per request (e.g. to refresh a token) and may
   * return a promise, which is awaited within `requestTimeoutMs` (a rejection or a throw fails that
   * request as `NETWORK`, tried again later). Default: none (only `Content-Type`, `Accept` and,
   * when an ETag is held, `If-None-Match`).
   */
  headers?: HeadersOption
  /**
   * Server-rendered snapshot for this user, applied synchronously inside `createClient`. An
   * unreadable one is reported as `BOOTSTRAP_INVALID`, one for another context as
   * `BOOTSTRAP_CONTEXT_MISMATCH`; neither throws. Default: none.
   */
  bootstrap?: BootstrapInput
  /** Build-time snapshot for any user: lowest precedence, for a first visit with no network; a JSON import of one is taken as it is. Default: none (the caller's defaults). */
  fallback?: BootstrapInput
  /** Default `'indexeddb'` where available, else `'memory'`. */
  storage?: 'indexeddb' | 'memory' | FlagStorage
  /** IndexedDB database name prefix; two clients with the same name share values and events. Default `'holdfast'`. */
  storageName?: string
  /** Per-request timeout. Default 5,000 ms; `NaN`, zero, negative or infinite values fall back to it with a warning. */
  requestTimeoutMs?: number
  /** Polling period; 0 turns polling off. Default 0; `NaN`, negative or infinite values fall back to it with a warning. */
  refreshIntervalMs?: number
  /** Refetch (throttled to once per 5 s) when the page becomes visible or the window gains focus. Default true. */
  refreshOnFocus?: boolean
  /** Accept a clean response with zero flags while flags are held. Default false (`EMPTY_RESPONSE`). */
  acceptEmptyResponse?: boolean
  /** On 401/403, also drop the held and persisted values of the context: the caller's defaults stand in (`fallback` only for a user no answer has applied for yet). Default false. */
  clearCacheOnUnauthorized?: boolean
  /** The event pipeline; `false` or absent turns it off. Default: off (`logEvent` warns and records nothing). */
  events?: false | EventOptions
  /** The `fetch` every request goes through (tests, proxies, instrumentation). Default `globalThis.fetch`. */
  fetch?: typeof fetch
  /** Where `[holdfast]` warnings and errors go; a logger that throws is ignored. Default `console`. */
  logger?: Logger
  /** Default: the real clock and timers. */
  clock?: Clock
  /** Source of randomness for backoff jitter. Default `Math.random`. */
  random?: () => number
  /** Focus, visibility, online state and page hide. Default: the browser's (nothing on a server). */
  environment?: Environment
  /**
   * Live updates: when a bulk answer advertises an OFREP `sse` event stream, listen
   * to it and refetch (with the ETag) on each change notice; while it is down, poll; tabs of an
   * origin share one stream and each other's answers. Default true, in Node too: a Node program
   * holds the stream open until `close()` (a client made per request, or a script that never
   * closes it, passes `false`). `false` turns it off.
   */
  liveUpdates?: boolean | LiveOptions
}

/** Fine-tuning of `ClientOptions.liveUpdates`; every field has a default. A number that is NaN, 0, negative or infinite falls back to its default with a warning. */
export interface LiveOptions {
  /** Close the stream after the page has been hidden this long (s); overrides the server's `inactivityDelaySec` (default 120). */
  inactivityDelaySec?: number
  /** Poll period while the stream is down. Default 30,000 ms, ±20 % jitter; under 1,000 ms is raised to 1,000 with a warning. */
  fallbackPollMs?: number
  /** No byte (data or heartbeat) for this long and the stream is reconnected. Default 60,000 ms. */
  heartbeatTimeoutMs?: number
  /** One stream per origin, answers shared between tabs (BroadcastChannel, Web Locks). Default true in a browser page, false elsewhere. */
  shareTabs?: boolean
}

/** Options of `getDetails` and friends beyond the contract. */
export interface EvaluateOptions {
  /** Log an exposure for this evaluation. Default true; React hooks pass false and log after commit. */
  exposure?: boolean
  /**
   * Evaluate over what the client held when it was created (its `bootstrap` and `fallback`), before
   * the cache or the network changed anything: what a server render with the same options showed,
   * so what a hydrating render must show (React's `getServerSnapshot`; a `<Suspense>` boundary
   * whose code still loads hydrates late). The same object as a live read while the flag is
   * unchanged since. Logs no exposure. Default false. Outside a browser (no `window`: a server
   * render, where nothing hydrates) it reads what is held now, as without it.
   */
  asCreated?: boolean
}

/**
 * One reader's view of one flag (what a React hook holds; see `observeFlag`): `get()` returns the same observation
 * until something the reader shows changes, so it is a valid `useSyncExternalStore` snapshot;
 * `subscribe` is told when this flag changes, and, while what the reader shows only stands in, when
 * the status moves (the stand-in may have become the user's own).
 */
export interface FlagObserver<T, R = Details<T>> {
  /** The current observation; the same object until something the reader shows changes. */
  get(): FlagObservation<T, R>
  /**
   * The observation of what the client held when it was created (`EvaluateOptions.asCreated`):
   * what a server render showed, for `useSyncExternalStore`'s `getServerSnapshot`. `get()`'s own
   * while the flag is unchanged since; else one that only stands in (no exposure).
   */
  getServer(): FlagObservation<T, R>
  /** Calls `listener` when `get()` may return a new observation; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
}

/** What a `FlagObserver` hands its reader. */
export interface FlagObservation<T, R = Details<T>> {
  /** The selection (`select(details)`, default the details). */
  readonly result: R
  /** The evaluation behind it: what an exposure reports. */
  readonly details: Details<T>
  /** False while the value only stands in (the previous user's during a switch, fallback while the cache is read). */
  readonly exposable: boolean
  /** The client's context (`getContext()`, by identity) when it was evaluated: after a switch it is another user's. */
  readonly who: EvaluationContext
}

/**
 * The client. Evaluation is synchronous, from memory, and never throws; no method rejects, and no
 * failure of the network, storage or server throws into the app: failures become `getStatus()`,
 * per-flag `errorCode`s and `[holdfast]` warnings.
 */
export interface FlagClient {
  /**
   * Opens storage, applies the cached values of this user and sends the first request; with
   * `events` set it also attaches the event listeners and fetches event delivery (a chunk)
   * meanwhile, without waiting for it. Resolves with the status once the first network attempt
   * settled (retries are not awaited). Never rejects; idempotent (later calls return the same
   * promise); after `close()` it only returns the status.
   */
  start(): Promise<Status>
  /**
   * A boolean flag. Returns the held value when it is a boolean, else `defaultValue` (default
   * `false`): while nothing is known, for a missing flag (`FLAG_NOT_FOUND`) or a value of another
   * type (`TYPE_MISMATCH`). Logs an exposure when events are on. Never throws.
   */
  getGate(key: string, defaultValue?: boolean): boolean
  /**
   * An object flag (a plain object, not an array). Returns the held value (frozen: mutating it
   * throws in strict mode and changes nothing), else `defaultValue` (default `{}`). Never throws.
   */
  getConfig<T extends object>(key: string, defaultValue?: T): T
  /**
   * A string flag: `getValue('theme', 'light')` is a `string`, not the literal type `'light'` (name a
   * union with `getValue<Theme>(…)`); a default already typed as a union (`defaults.theme: Theme`) keeps it.
   */
  getValue<T extends JsonValue>(key: string, defaultValue: T & string): WidenLiteral<T, string>
  /** A number flag: `getValue('limit', 10)` is a `number`, not the literal type `10`; a union of numbers keeps its type. */
  getValue<T extends JsonValue>(key: string, defaultValue: T & number): WidenLiteral<T, number>
  /** A boolean flag: `getValue('beta', false)` is a `boolean`, not the literal type `false`. */
  getValue<T extends JsonValue>(key: string, defaultValue: T & boolean): WidenLiteral<T, boolean>
  /** Any JSON flag, type-checked against `defaultValue` (`null` accepts any type). Returns the default when missing or mismatched. Never throws. */
  getValue<T extends JsonValue>(key: string, defaultValue: T): T
  /**
   * Everything known about one evaluation: value, source, reason, variant, metadata, `updatedAt`,
   * `stale` and `errorCode`. The same object is returned while nothing changed. Logs an exposure
   * unless `options.exposure` is false (default true). Never throws.
   */
  getDetails<T>(key: string, defaultValue: T, options?: EvaluateOptions): Details<T>
  /**
   * The current status (`loading`, `ready`, `stale`, `error`); the same object until it changes.
   * `asCreated` exactly `true`: the status when the client was created (see
   * `EvaluateOptions.asCreated`); any other argument reads the current one, so the method can be
   * passed point-free (`client.start().then(client.getStatus)`). Synchronous; never throws.
   */
  getStatus(asCreated?: unknown): Status
  /**
   * One attempt now, ignoring polling intervals, backoff and the offline flag, but not a pending
   * `Retry-After` from the server (then it resolves with the current status without a request).
   * Joins a request already in flight. Resolves with the status; never rejects.
   */
  refresh(): Promise<Status>
  /**
   * Switches the user. Their cached values show at once if this page has them; otherwise the
   * previous values stay visible (state `loading`) until the new user's arrive — and go the moment
   * an attempt for the new user fails with nothing cached (fallback or defaults, state `error`).
   * A context without a string `targetingKey` (`{ targetingKey: user?.id }` after a logout) is
   * refused with an error log and pauses flag sync as `pause()` does (a live-update stream stays
   * open, asking nothing): nothing more is asked for the previous user, and until a context with a
   * `targetingKey` comes, events carry none and the held values log no exposure. One that cannot be
   * serialised (a BigInt, a cycle) gives state `error` with `INVALID_CONTEXT`. A switch abandons
   * the request out, unless that one was sent during a burst of switches: then it waits for it,
   * and only the latest context is sent: a call per render costs one request per round trip. A server's
   * `Retry-After` outlives the switch: the new context is shown what a failed attempt shows until
   * it ends, then asked for. Resolves with the status once the attempt for this context settled,
   * or when a newer call superseded it (at once; or, when its own request was already out, when
   * that request settles). Never rejects.
   */
  setContext(context: EvaluationContext): Promise<Status>
  /**
   * For a page with no user (a logout): sends no flag request at all — no polls, focus refetches,
   * retries, live-update refetches or `refresh()` — and closes the live-update stream, until the
   * next `setContext`, which fetches again (for the same user too). Values held stay readable,
   * as nobody's: no exposure is logged for them and `logEvent` records no `targetingKey`; queued
   * events are delivered as before.
   */
  pause(): void
  /** The current context (as passed to `createClient` or `setContext`). Synchronous; never throws. */
  getContext(): EvaluationContext
  /** Calls `listener` after any change of values or status; returns the unsubscribe function. A throwing listener is logged, not propagated. */
  subscribe(listener: () => void): () => void
  /** Calls `listener` only when that flag's details change (at most once per update); returns the unsubscribe function. A throwing listener is logged, not propagated. */
  subscribeFlag(key: string, listener: () => void): () => void
  /**
   * Queues a custom event (persisted within 100 ms, sent in batches). Ignored with a warning
   * without the `events` option or with an empty name. Never throws.
   */
  logEvent(name: string, options?: { value?: string | number; metadata?: FlagMetadata }): void
  /**
   * Logs the exposure of an evaluation made with `{ exposure: false }` (React hooks do, after
   * commit). Nothing is logged for defaults, type mismatches, values that only stand in, or an
   * exposure already logged for this user, flag, value and variant on this page.
   */
  logExposure(details: Details<unknown>): void
  /**
   * Whether showing `details` (an evaluation with `{ exposure: false }`) counts now as the user having
   * seen it: false for defaults, type mismatches and values that only stand in (the previous user's
   * during a switch, a fallback while the cache is read, any while paused). The rule `logExposure`
   * applies before its de-duplication; React hooks follow it (`observeFlag`). Required of a
   * `FlagClient` of your own (a wrapper handed to `<FlagProvider client>`): hooks call it on every
   * read, and one without it throws a TypeError in render. Delegate it, or use `createTestClient`.
   */
  isExposable(details: Details<unknown>): boolean
  /** Sends queued events now (this tab's and others'); resolves when done or failed. Never rejects. */
  flush(): Promise<void>
  /**
   * What the event queue has done: events queued, sent, dropped and retried, retried requests, and
   * `lastError` (why events are waiting) until the next success. All zero without `events`, and
   * with `asCreated` exactly `true` (the counts when the client was created, as a server render
   * showed them; any other argument reads the current ones, as for `getStatus`).
   */
  getEventStats(asCreated?: unknown): EventStats
  /** The current user's values in bootstrap form (no values while a switch is pending). Never throws. */
  snapshot(): Bootstrap
  /**
   * Removes this origin's persisted values (e.g. on logout); never rejects. Answers to requests
   * already sent are not written back; values in memory stay until the app switches the context.
   * A storage it could not clear is left for memory (`Status.storage` `memory`, `Status.error`
   * `STORAGE`) until the client's next try of it (at most a minute later, or `close()`) clears it.
   */
  clearCache(): Promise<void>
  /**
   * Flushes events (bounded by `requestTimeoutMs`), stops timers and listeners, and resolves once
   * the last cache write and the eviction it started have finished; then closes the IndexedDB
   * connection the client opened (never a `storage` passed in). Idempotent; never rejects.
   */
  close(): Promise<void>
}
