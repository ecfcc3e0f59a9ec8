// `createClient` wires the pieces: the store holds what the app sees; flag sync (flags/sync.ts, a
// driver around a pure state machine) fetches and applies answers on the shared scheduler; the
// cache, the event queue and the environment's listeners come alive in `start()` and go quiet in
// `close()`. Evaluation is a lookup in the store and never waits for anything.
import { createEventQueue, type EventQueue } from './events/eventQueue'
import { createFlagCache, type FlagCache } from './flags/cache'
import { createDetailsReader } from './flags/details'
import { expectedType, type Expected } from './flags/evaluate'
import { createExposureLog } from './flags/exposures'
import { checkOptions, readNumbers } from './flags/options'
import { createStore } from './flags/store'
import { createSync } from './flags/sync'
import { initialState } from './flags/syncState'
import { createLiveLoader, liveWanted, type LiveLoader } from './live/liveLoader'
import { realClock } from './platform/clock'
import { browserEnvironment } from './platform/environment'
import { safeContextHash } from './platform/hash'
import { createLogger } from './platform/logger'
import { createSafeStorage, type SafeStorage } from './platform/storage'
import { uuid } from './platform/uuid'
import { ownContext, parseBootstrap } from './protocol/readers'
import type { Bootstrap, ClientOptions, Details, EvaluateOptions, EventStats, FlagClient, HoldfastEvent, JsonValue, Status } from './types'

const NO_EVENTS: EventStats = { queued: 0, sent: 0, dropped: 0, retries: 0, retriedRequests: 0 }

/**
 * Creates a client for one user. Nothing is fetched, stored or listened to until `start()`;
 * `bootstrap` and `fallback` are copied and applied synchronously here, so the first evaluation
 * (and the first React render, on the server too) already sees them. Throws only for programmer
 * mistakes: a missing or malformed `url` (no scheme, or the full endpoint path) or a context
 * without a string `targetingKey`. Everything else — a throwing bootstrap, odd numbers, a context
 * that cannot be serialised — becomes a warning or `Status.error`.
 */
export function createClient(options: ClientOptions): FlagClient {
  checkOptions(options)
  const logger = createLogger(options.logger)
  const clock = options.clock ?? realClock
  const random = options.random ?? Math.random
  const environment = options.environment ?? browserEnvironment
  const { timeoutMs, pollMs } = readNumbers(options, logger)
  // Late-bound so a test or polyfill that replaces `fetch` after creation is still used.
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const storageName = options.storageName ?? 'holdfast'
  /** What flag sync, the event queue and live updates all get: one environment for every sender. */
  const common = { fetch: fetchImpl, headers: options.headers, logger, clock, random, environment }

  let storage: SafeStorage | undefined
  let cache: FlagCache | undefined
  let events: EventQueue | undefined
  let startPromise: Promise<Status> | undefined
  /** Set by `start()`: from then on the status reports the storage really in use. */
  let storageOpened = false
  let closePromise: Promise<void> | undefined

  const store = createStore(
    { flags: new Map(), status: { state: 'loading', source: 'none', storage: initialStorageKind(options.storage) }, events: NO_EVENTS },
    logger,
  )

  // Storage is opened on first need, never at creation: a client made during server rendering
  // must not touch IndexedDB.
  function ensureStorage(): SafeStorage {
    storage ??= createSafeStorage(options.storage, storageName, logger, sync.storageFailed)
    return storage
  }
  // An entry holds what one set of credentials fetched: static `headers` (an SDK key) name it too,
  // hashed with the URL, so a page on another environment's key never starts from (nor, in an
  // outage, keeps) these values. A headers function does not: a token that rotates would make
  // every page's entry a new one.
  // Read at every cache operation: `<FlagProvider headers={…}>` refills its object with the latest
  // prop, and the new key's answers are written (and read) under the new key, not the first one's.
  // Headers whose getter throws (a token read before login) name no fixed credentials: keyed as a
  // function's are, and the request reports the throw (NETWORK); thrown here, start() stayed `loading`.
  function ensureCache(): FlagCache {
    cache ??= createFlagCache({
      storage: ensureStorage(),
      url() {
        try {
          if (typeof options.headers == 'object') return options.url + JSON.stringify(options.headers)
        } catch {}
        return options.url
      },
      logger,
      now: clock.now,
    })
    return cache
  }
  function ensureEvents(): EventQueue | undefined {
    if (!options.events) return undefined
    events ??= createEventQueue({
      ...common,
      options: options.events,
      storage: ensureStorage(),
      storageName,
      requestTimeoutMs: timeoutMs,
      onStats: (stats) => store.setState({ events: stats }),
    })
    return events
  }

  const fallback = snapshotOption(options.fallback)
  const bootstrap = snapshotOption(options.bootstrap)
  const context = ownContext(options.context)
  const initial = initialState({ context, contextHash: safeContextHash(context), fallback, bootstrap, now: clock.now() })
  const skipped = (read: typeof bootstrap, what: string) => read && read !== 'invalid' && read.skipped && logger.warn(`${read.skipped} unreadable ${what} entries were skipped`)
  if (fallback === 'invalid') logger.warn('the `fallback` snapshot is malformed (or threw when read) and was ignored')
  else skipped(fallback, 'fallback')
  if (initial.bootstrapError) logger.warn(initial.bootstrapError.message)
  else skipped(bootstrap, 'bootstrap')
  if (initial.failure) logger.error(initial.failure.message)

  const liveOptions = liveWanted(options.liveUpdates)
  let live: LiveLoader | undefined
  const sync = createSync({
    ...common,
    url: options.url,
    timeoutMs,
    pollMs,
    refreshOnFocus: options.refreshOnFocus !== false,
    acceptEmpty: options.acceptEmptyResponse === true,
    clearOnUnauthorized: options.clearCacheOnUnauthorized === true,
    initial,
    store,
    cache: ensureCache,
    storageKind: () => (storageOpened ? ensureStorage().kind() : initialStorageKind(options.storage)),
    onAnswer: (result, hash) => live?.answered(result, hash),
  })
  // A fresh loader holds nothing and loads nothing until the next answer advertises a stream.
  const newLive = () => liveOptions && createLiveLoader({ ...common, options: liveOptions, url: options.url, sync })
  live = newLive()

  const exposures = createExposureLog(storageName)
  const exposuresOn = !!options.events && options.events.exposures !== false
  // What the client held when created (bootstrap, fallback): in a browser, what the server render
  // it hydrates showed. On a server (no `window`) nothing hydrates and a render shows what is held
  // now: a client started there before rendering renders its answer, not its defaults.
  const created = typeof window == 'object' ? store.getState() : undefined
  // Only `true`: getStatus and getEventStats are passed point-free (`start().then(client.getStatus)`).
  const state = (asCreated?: unknown) => (asCreated === true && created) || store.getState()
  const reader = createDetailsReader(state)

  /** Whether showing `details` counts as the user having seen it (not a stand-in, not a default). */
  function exposable(details: Details<unknown>): boolean {
    // The client's own type mismatch shows the caller's default, not what is held; a value the
    // server's per-flag TYPE_MISMATCH left held (§4) is the held value itself, served and seen.
    if (details.source === 'default' || (details.errorCode === 'TYPE_MISMATCH' && details.value !== state().flags.get(details.key)?.value)) return false
    // During a user switch the previous user's values stand in on screen: not an exposure of either.
    if (!sync.ownsValues()) return false
    // Fallback values shown while the cache is still being read only stand in for the user's own.
    return details.source !== 'fallback' || sync.cacheRead()
  }

  // The last evaluation already handled as an exposure, for the user it was handled for: a loop
  // reading one flag (the common hot path) costs a pointer comparison, not a lookup.
  let lastExposed: Details<unknown> | undefined
  let lastExposedFor = ''

  function logExposure(details: Details<unknown>) {
    if (!exposuresOn || !exposable(details)) return
    const contextHash = sync.contextHash()
    lastExposed = details
    lastExposedFor = contextHash
    if (!exposures.first(contextHash, details)) return
    const context = sync.context()
    const event: HoldfastEvent = {
      id: uuid(),
      type: 'exposure',
      name: details.key,
      time: clock.now(),
      targetingKey: context.targetingKey,
      flagKey: details.key,
      value: details.value as never,
      source: details.source,
    }
    if (details.variant !== undefined) event.variant = details.variant
    if (details.reason !== undefined) event.reason = details.reason
    ensureEvents()?.enqueue(event)
  }

  function details<T>(key: string, defaultValue: T, expected: Expected, exposure: boolean, asCreated?: boolean): Details<T> {
    const result = reader.read(key, defaultValue, expected, asCreated)
    if (asCreated === true) return result
    if (exposure && exposuresOn && (result !== lastExposed || lastExposedFor !== sync.contextHash())) logExposure(result)
    return result
  }

  return {
    start() {
      if (closePromise) return Promise.resolve(store.getState().status)
      startPromise ??= (async () => {
        storageOpened = true
        // Event delivery (a chunk) loads while the first request is out; start() does not wait for it.
        ensureEvents()?.start()
        return sync.start()
      })().catch((error: unknown) => {
        logger.error('start failed unexpectedly', error)
        return store.getState().status
      })
      return startPromise
    },
    getGate: (key, defaultValue = false) => details(key, defaultValue, 'boolean', true).value,
    getConfig: <T extends object>(key: string, defaultValue: T = {} as T) => details(key, defaultValue, 'object', true).value,
    getValue: <T extends JsonValue>(key: string, defaultValue: T) => details(key, defaultValue, expectedType(defaultValue), true).value,
    getDetails: <T>(key: string, defaultValue: T, evaluateOptions?: EvaluateOptions) =>
      details(key, defaultValue, expectedType(defaultValue), evaluateOptions?.exposure !== false, evaluateOptions?.asCreated),
    getStatus: (asCreated) => state(asCreated).status,
    refresh: () => sync.refresh(),
    setContext: (context) => sync.setContext(context).catch(() => store.getState().status),
    pause() {
      sync.pause()
      // The stream was opened with the user's headers: it goes too, and comes back with the first
      // answer after the next setContext.
      live?.close()
      live = newLive()
    },
    getContext: () => sync.context(),
    subscribe: (listener) => store.subscribe(listener),
    subscribeFlag: (key, listener) => store.subscribeFlag(key, listener),
    logEvent(name, eventOptions) {
      if (typeof name !== 'string' || name === '') {
        logger.warn('logEvent needs a non-empty event name')
        return
      }
      const queue = ensureEvents()
      if (!queue) {
        logger.warn(`logEvent("${name}") ignored: the client has no \`events\` option`)
        return
      }
      const event: HoldfastEvent = { id: uuid(), type: 'custom', name, time: clock.now(), targetingKey: sync.user() }
      // Options from plain JS may be null, or throw when read (a revoked Proxy): never into the app.
      try {
        const { value, metadata } = eventOptions ?? {}
        if (value !== undefined) event.value = value
        if (metadata !== undefined) event.metadata = metadata
      } catch {
        return logger.warn(`logEvent("${name}") ignored: its options threw`)
      }
      queue.enqueue(event)
    },
    logExposure,
    isExposable: exposable,
    flush: async () => {
      try {
        await ensureEvents()?.flush()
      } catch (error) {
        logger.error('flush failed unexpectedly', error)
      }
    },
    getEventStats: (asCreated) => state(asCreated).events,
    snapshot: (): Bootstrap => sync.snapshot(),
    // Never rejects: the cache's operations cannot (a failure to clear is logged by the storage).
    clearCache() {
      sync.cleared()
      return ensureCache().clear()
    },
    close() {
      closePromise ??= (async () => {
        sync.close()
        live?.close()
        try {
          await events?.close()
        } catch (error) {
          logger.warn('closing the event queue failed', error)
        }
        // The last cache write and the eviction it started are finished before close() resolves.
        await cache?.idle()
        await storage?.close()
      })()
      return closePromise
    },
  }
}

/** A `bootstrap`/`fallback` option read into a frozen copy; 'invalid' when it is malformed or throws. */
function snapshotOption(input: unknown): { bootstrap: Bootstrap; skipped: number } | 'invalid' | undefined {
  if (input === undefined) return undefined
  return parseBootstrap(input) ?? 'invalid'
}

// Until `start()` opens storage, the status reports the storage asked for, the same on a server
// and in a browser: an app that renders `status.storage` must hydrate without a mismatch. From
// `start()` on it reports what is really used (memory when IndexedDB is missing or failing).
function initialStorageKind(choice: ClientOptions['storage']): Status['storage'] {
  return choice === 'memory' ? 'memory' : 'indexeddb'
}
