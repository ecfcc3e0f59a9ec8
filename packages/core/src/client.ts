// `createClient` wires the pieces: the store holds what the app sees; `sync` fetches and applies
// responses; the cache, the event queue and the browser listeners come alive in `start()` and go
// quiet in `close()`. Evaluation is a lookup in the store and never waits for anything.
import { createFlagCache, type FlagCache } from './cache'
import { evaluate, expectedType, type Expected } from './evaluate'
import { createExposureLog } from './exposures'
import type { HeldFlag } from './merge'
import { createEventQueue, type EventQueue } from './events/eventQueue'
import { isContext } from './schemas'
import { createSafeStorage, type SafeStorage } from './storage'
import { createStore } from './store'
import { createSync } from './sync'
import type { Bootstrap, ClientOptions, Clock, Details, EvaluateOptions, EventStats, FlagClient, HoldfastEvent, Status } from './types'
import { uuid } from './uuid'

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

const NO_EVENTS: EventStats = { queued: 0, sent: 0, dropped: 0, retries: 0, retriedRequests: 0 }

/**
 * Creates a client for one user. Nothing is fetched, stored or listened to until `start()`;
 * `bootstrap` and `fallback` are applied synchronously here, so the first evaluation (and the
 * first React render, on the server too) already sees them. Throws only for programmer
 * mistakes: a missing `url` or a context without a string `targetingKey`.
 */
export function createClient(options: ClientOptions): FlagClient {
  if (!options || typeof options.url !== 'string' || options.url === '')
    throw new TypeError('[holdfast] createClient needs a `url`: the base URL of an OFREP flag server')
  if (!isContext(options.context))
    throw new TypeError('[holdfast] createClient needs a `context` with a string `targetingKey`')

  const logger = options.logger ?? console
  const clock = options.clock ?? realClock
  const random = options.random ?? Math.random
  // Late-bound so a test or polyfill that replaces `fetch` after creation is still used.
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const storageName = options.storageName ?? 'holdfast'

  let storage: SafeStorage | undefined
  let cache: FlagCache | undefined
  let events: EventQueue | undefined
  let startPromise: Promise<Status> | undefined
  /** Set by `start()`: from then on the status reports the storage really in use. */
  let storageOpened = false
  let closePromise: Promise<void> | undefined

  const store = createStore(
    {
      flags: new Map(),
      status: { state: 'loading', source: 'none', storage: initialStorageKind(options.storage) },
      events: NO_EVENTS,
    },
    logger,
  )

  // Storage is opened on first need, never at creation: a client made during server rendering
  // must not touch IndexedDB.
  function ensureStorage(): SafeStorage {
    storage ??= createSafeStorage(options.storage, storageName, logger, () => sync.storageFailed())
    return storage
  }
  function ensureCache(): FlagCache {
    cache ??= createFlagCache({ storage: ensureStorage(), url: options.url, logger, now: clock.now })
    return cache
  }
  function ensureEvents(): EventQueue | undefined {
    if (!options.events) return undefined
    events ??= createEventQueue({
      options: options.events,
      storage: ensureStorage(),
      storageName,
      fetch: fetchImpl,
      headers: options.headers,
      logger,
      clock,
      random,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      onStats: (stats) => store.setState({ events: stats }),
    })
    return events
  }

  const sync = createSync({
    options,
    store,
    logger,
    clock,
    random,
    fetch: fetchImpl,
    cache: ensureCache,
    storageKind: () => (storageOpened ? ensureStorage().kind() : initialStorageKind(options.storage)),
  })

  const exposures = createExposureLog()
  const exposuresOn = !!options.events && options.events.exposures !== false
  // The same inputs give the same details object, so `useSyncExternalStore` and memoised consumers
  // see "unchanged" without comparing fields. Keyed by the held flag object (which changes exactly
  // when its details do), so the memo goes away with the flag; missing flags are keyed by name.
  type Memo = { defaultValue: unknown; expected: Expected; details: Details<unknown> }
  const heldMemo = new WeakMap<HeldFlag, Memo>()
  const missingMemo = new Map<string, Memo>()

  function logExposure(details: Details<unknown>) {
    if (!exposuresOn || details.source === 'default' || details.errorCode === 'TYPE_MISMATCH') return
    // During a user switch the previous user's values stand in on screen: not an exposure of either.
    if (!sync.ownsValues()) return
    const context = sync.context()
    if (!exposures.first(sync.contextHash(), details)) return
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

  function details<T>(key: string, defaultValue: T, expected: Expected, exposure: boolean): Details<T> {
    const flag = store.getState().flags.get(key)
    const memo = flag ? heldMemo.get(flag) : missingMemo.get(key)
    let result: Details<T>
    if (memo && Object.is(memo.defaultValue, defaultValue) && memo.expected === expected) {
      result = memo.details as Details<T>
    } else {
      result = evaluate(flag, key, defaultValue, expected)
      const next = { defaultValue, expected, details: result }
      if (flag) heldMemo.set(flag, next)
      else missingMemo.set(key, next)
    }
    if (exposure) logExposure(result)
    return result
  }

  return {
    start() {
      if (closePromise) return Promise.resolve(store.getState().status)
      startPromise ??= (async () => {
        storageOpened = true
        // Event delivery (a chunk) loads while the first request is out.
        ensureEvents()?.start()
        return sync.start()
      })()
      return startPromise
    },
    getGate: (key, defaultValue = false) => details(key, defaultValue, 'boolean', true).value,
    getConfig: <T extends object>(key: string, defaultValue: T = {} as T) => details(key, defaultValue, 'object', true).value,
    getValue: (key, defaultValue) => details(key, defaultValue, expectedType(defaultValue), true).value,
    getDetails: <T>(key: string, defaultValue: T, evaluateOptions?: EvaluateOptions) =>
      details(key, defaultValue, expectedType(defaultValue), evaluateOptions?.exposure !== false),
    getStatus: () => store.getState().status,
    refresh: () => sync.refresh(),
    setContext: (context) => sync.setContext(context),
    getContext: () => sync.context(),
    subscribe: (listener) => store.subscribe(listener),
    subscribeFlag: (key, listener) => store.subscribeFlag(key, listener),
    logEvent(name, eventOptions = {}) {
      if (typeof name !== 'string' || name === '') {
        logger.warn('[holdfast] logEvent needs a non-empty event name')
        return
      }
      const queue = ensureEvents()
      if (!queue) {
        logger.warn(`[holdfast] logEvent("${name}") ignored: the client has no \`events\` option`)
        return
      }
      const event: HoldfastEvent = {
        id: uuid(),
        type: 'custom',
        name,
        time: clock.now(),
        targetingKey: sync.context().targetingKey,
      }
      if (eventOptions.value !== undefined) event.value = eventOptions.value
      if (eventOptions.metadata !== undefined) event.metadata = eventOptions.metadata
      queue.enqueue(event)
    },
    logExposure,
    flush: async () => {
      try {
        await ensureEvents()?.flush()
      } catch (error) {
        logger.error('[holdfast] flush failed unexpectedly', error)
      }
    },
    getEventStats: () => store.getState().events,
    snapshot(): Bootstrap {
      return sync.snapshot()
    },
    async clearCache() {
      try {
        await ensureCache().clear()
      } catch (error) {
        logger.warn('[holdfast] clearing the cache failed', error)
      }
    },
    close() {
      closePromise ??= (async () => {
        sync.close()
        try {
          await events?.close()
        } catch (error) {
          logger.warn('[holdfast] closing the event queue failed', error)
        }
      })()
      return closePromise
    },
  }
}

// Until `start()` opens storage, the status reports the storage asked for, the same on a server
// and in a browser: an app that renders `status.storage` must hydrate without a mismatch. From
// `start()` on it reports what is really used (memory when IndexedDB is missing or failing).
function initialStorageKind(choice: ClientOptions['storage']): Status['storage'] {
  return choice === 'memory' ? 'memory' : 'indexeddb'
}
