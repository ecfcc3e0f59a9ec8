// Keeping the held flags in step with the server: which context, which ETag, one request in
// flight, retries with backoff and Retry-After, polling, refetch on focus, pause while offline,
// and the status of CONTRACT §3 derived from what happened last. The rules for turning a response
// into flags are in merge.ts; this file decides when to ask and what the answer means for status.
import { createRetrier } from './backoff'
import type { FlagCache } from './cache'
import { isOffline, watchEnvironment } from './environment'
import { HoldfastError, isRetryable, toStatusError } from './errors'
import { contextHashOf } from './hash'
import { confirmAll, layerSnapshot, markStale, mergeResponse, toEntries, type FlagMap } from './merge'
import { isContext, parseBootstrap } from './schemas'
import type { Store } from './store'
import { fetchFlags, type FetchResult } from './transport'
import type { Bootstrap, ClientOptions, Clock, EvaluationContext, Logger, Status } from './types'

type StatusError = NonNullable<Status['error']>
type Trigger = 'start' | 'refresh' | 'context' | 'retry' | 'poll' | 'focus' | 'online'

/** Focus and visibility refetches are throttled to one per this many ms. */
const FOCUS_THROTTLE_MS = 5000

export interface SyncDeps {
  options: ClientOptions
  store: Store
  logger: Logger
  clock: Clock
  random: () => number
  fetch: typeof fetch
  cache: () => FlagCache
  storageKind: () => Status['storage']
}

export function createSync(deps: SyncDeps) {
  const { options, store, logger, clock } = deps
  const timeoutMs = options.requestTimeoutMs ?? 5000

  let context = options.context
  let contextHash = contextHashOf(context)
  /** The ETag of the last clean snapshot, valid only for exactly the context it was fetched for. */
  let etag: { value: string; contextHash: string; at: number } | undefined
  /** Whether the held flags belong to the current context (false between a switch and its values). */
  let ownValues = false
  /** What the latest finished attempt for this context did. */
  let outcome: 'none' | 'success' | 'failure' | 'fatal' = 'none'
  let lastError: StatusError | undefined
  let bootstrapError: StatusError | undefined
  let storageError: StatusError | undefined
  let lastSuccessAt: number | undefined
  let source: Status['source'] = 'none'
  let fallbackFlags: FlagMap = new Map()

  let started = false
  let closed = false
  let inFlight: { promise: Promise<Status>; controller: AbortController } | undefined
  let lastAttemptAt = -Infinity
  const retrier = createRetrier({ clock, random: deps.random })
  let pollTimer: unknown
  let waitingForOnline = false
  /** A context the server rejected with 400: not retried automatically (refresh/setContext still try). */
  let rejectedContext: string | undefined
  let stopEnvironment: (() => void) | undefined

  // --- status ----------------------------------------------------------------------------------
  function status(flags: FlagMap): Status {
    const hasValues = ownValues && flags.size > 0
    let state: Status['state']
    if (outcome === 'fatal') state = 'error'
    else if (outcome === 'failure') state = hasValues ? 'stale' : 'error'
    else if (outcome === 'success') state = 'ready'
    else state = hasValues ? 'ready' : 'loading'
    const next: Status = { state, source, storage: deps.storageKind() }
    if (lastSuccessAt !== undefined) next.lastSuccessAt = lastSuccessAt
    const error = lastError ?? bootstrapError ?? storageError
    if (error) next.error = error
    return next
  }
  function commit(flags: FlagMap = store.getState().flags) {
    store.setState({ flags, status: status(flags) })
  }

  // --- initial snapshots, applied synchronously ---------------------------------------------------
  function applyInitial() {
    let flags: FlagMap = new Map()
    if (options.fallback !== undefined) {
      const parsed = parseBootstrap(options.fallback)
      if (parsed) {
        fallbackFlags = layerSnapshot(new Map(), parsed.bootstrap.flags, 'fallback', undefined)
        flags = fallbackFlags
        if (flags.size > 0) source = 'fallback'
      } else {
        logger.warn('[holdfast] the `fallback` snapshot is malformed and was ignored')
      }
    }
    if (options.bootstrap !== undefined) {
      const parsed = parseBootstrap(options.bootstrap)
      if (!parsed) {
        bootstrapError = { code: 'BOOTSTRAP_INVALID', message: 'the bootstrap snapshot is malformed and was ignored' }
      } else if (parsed.bootstrap.context.targetingKey !== context.targetingKey) {
        bootstrapError = {
          code: 'BOOTSTRAP_CONTEXT_MISMATCH',
          message: 'the bootstrap was rendered for another targetingKey and was ignored',
        }
      } else {
        const b = parsed.bootstrap
        flags = layerSnapshot(flags, b.flags, 'bootstrap', b.fetchedAt)
        source = 'bootstrap'
        if (b.etag !== undefined && contextHashOf(b.context) === contextHash) etag = { value: b.etag, contextHash, at: b.fetchedAt }
        if (parsed.skipped > 0) logger.warn(`[holdfast] ${parsed.skipped} unreadable bootstrap entries were skipped`)
      }
      if (bootstrapError) logger.warn(`[holdfast] ${bootstrapError.message}`)
    }
    ownValues = flags.size > 0
    commit(flags)
  }
  applyInitial()

  // --- the cache ---------------------------------------------------------------------------------
  function applyCached(record: { flags: Bootstrap['flags']; savedAt: number; etag?: string; contextHash?: string }) {
    const base = ownValues ? store.getState().flags : fallbackFlags
    const flags = layerSnapshot(base, record.flags, 'cache', record.savedAt)
    ownValues = true
    source = 'cache'
    // A cached ETag is usable only for the very context (all attributes) it was fetched for, and
    // only if it is newer than what we hold (e.g. a bootstrap's).
    if (record.etag !== undefined && record.contextHash === contextHash && (!etag || etag.at <= record.savedAt))
      etag = { value: record.etag, contextHash, at: record.savedAt }
    commit(flags)
  }

  async function loadCache(forHash: string, targetingKey: string) {
    const record = await deps.cache().read(targetingKey)
    if (record && forHash === contextHash && !closed) applyCached(record)
  }

  function persist() {
    const flags = store.getState().flags
    void deps
      .cache()
      .write(context.targetingKey, { flags: toEntries(flags), etag: etag?.contextHash === contextHash ? etag.value : undefined, contextHash })
  }

  // --- timers --------------------------------------------------------------------------------------
  function clearPoll() {
    if (pollTimer !== undefined) clock.clearTimeout(pollTimer)
    pollTimer = undefined
  }
  function schedulePoll() {
    const every = options.refreshIntervalMs ?? 0
    if (!started || closed || every <= 0 || retrier.pending()) return
    clearPoll()
    pollTimer = clock.setTimeout(() => {
      pollTimer = undefined
      void attempt('poll')
    }, every)
  }

  // --- one attempt ---------------------------------------------------------------------------------
  function attempt(trigger: Trigger): Promise<Status> {
    const current = () => Promise.resolve(store.getState().status)
    if (closed) return current()
    if (inFlight) return inFlight.promise
    const automatic = trigger === 'retry' || trigger === 'poll' || trigger === 'focus' || trigger === 'online'
    // A server that said "come back later" is obeyed even by refresh(); only the retry it set up fires.
    if (trigger !== 'retry' && retrier.waiting()) return current()
    if (automatic && rejectedContext === contextHash) return current()
    if (automatic && isOffline()) {
      waitingForOnline = true
      return current()
    }
    if (trigger === 'poll' && retrier.pending()) return current()
    clearPoll()
    retrier.consume()
    waitingForOnline = false

    const controller = new AbortController()
    const forHash = contextHash
    lastAttemptAt = clock.now()
    const promise = fetchFlags({
      fetch: deps.fetch,
      url: options.url,
      context,
      headers: options.headers,
      etag: etag?.contextHash === contextHash ? etag.value : undefined,
      timeoutMs,
      signal: controller.signal,
      now: clock.now,
    })
      .then((result) => (forHash === contextHash && !closed ? apply(result) : store.getState().status))
      .catch((error: unknown) => {
        logger.error('[holdfast] unexpected error while applying a response', error)
        return store.getState().status
      })
      .finally(() => {
        if (inFlight?.controller === controller) inFlight = undefined
      })
    inFlight = { promise, controller }
    return promise
  }

  function apply(result: FetchResult): Status {
    if (result.kind === 'aborted') return store.getState().status
    if (result.kind === 'error') return fail(result.error)
    const held = store.getState().flags
    const etagBefore = etag?.value
    let flags: FlagMap
    if (result.kind === 'not-modified') {
      flags = confirmAll(ownValues ? held : new Map())
    } else {
      // Placeholder values of the previous user are not this context's: merge against nothing.
      const merged = mergeResponse(ownValues ? held : new Map(), result.entries, {
        now: clock.now(),
        skipped: result.skipped,
        acceptEmpty: options.acceptEmptyResponse,
      })
      if (merged.rejected)
        return fail(new HoldfastError('EMPTY_RESPONSE', 'the server answered with no flags while flags are held; values kept'))
      if (result.skipped > 0) logger.warn(`[holdfast] ${result.skipped} unreadable flag entries were skipped`)
      flags = merged.flags
      etag = merged.clean && result.etag !== undefined ? { value: result.etag, contextHash, at: clock.now() } : undefined
    }
    ownValues = true
    outcome = 'success'
    lastError = bootstrapError = storageError = undefined
    lastSuccessAt = clock.now()
    source = 'network'
    retrier.reset()
    commit(flags)
    // A poll that confirms what is held changes nothing on disk either: the store kept the same
    // map, so there is nothing new to write (with 10,000 flags that is a sizeable clone per poll).
    if (store.getState().flags !== held || etag?.value !== etagBefore) persist()
    schedulePoll()
    return store.getState().status
  }

  function fail(error: HoldfastError): Status {
    lastError = toStatusError(error)
    const fatal = error.code === 'UNAUTHORIZED' || error.code === 'INVALID_CONTEXT'
    outcome = fatal ? 'fatal' : 'failure'
    if (error.code === 'INVALID_CONTEXT') rejectedContext = contextHash
    let flags = markStale(store.getState().flags)
    if (error.code === 'UNAUTHORIZED' && options.clearCacheOnUnauthorized) {
      flags = new Map()
      ownValues = false
      etag = undefined
      void deps.cache().remove(context.targetingKey)
    }
    commit(flags)
    logger.warn(`[holdfast] flag fetch failed (${error.code}): ${error.message}; serving the last known values`)
    if (isRetryable(error)) retrier.schedule(error, () => void attempt('retry'))
    else schedulePoll()
    return store.getState().status
  }

  // --- public operations ----------------------------------------------------------------------------
  return {
    context: () => context,
    contextHash: () => contextHash,
    /** False between a user switch and the new user's values: what is on screen is the previous user's. */
    ownsValues: () => ownValues,

    async start(): Promise<Status> {
      started = true
      commit() // storage is known now (IndexedDB, or memory when it is missing)
      stopEnvironment = watchEnvironment({
        onVisible: () => {
          if (options.refreshOnFocus !== false && clock.now() - lastAttemptAt >= FOCUS_THROTTLE_MS) void attempt('focus')
        },
        onOnline: () => {
          if (waitingForOnline || outcome === 'failure') void attempt('online')
        },
      })
      // Cache first, then the network: the cached values are on screen before any answer, and the
      // cached ETag can go on the first request (a 304 then confirms them). A stuck IndexedDB is
      // bounded by the storage timeout, so it can delay the first request but never stop it.
      await loadCache(contextHash, context.targetingKey)
      return attempt('start')
    },

    refresh: () => attempt('refresh'),

    async setContext(next: EvaluationContext): Promise<Status> {
      if (!isContext(next)) {
        logger.error('[holdfast] setContext needs a context with a string `targetingKey`; the call was ignored')
        return store.getState().status
      }
      const nextHash = contextHashOf(next)
      if (nextHash === contextHash) return inFlight?.promise ?? store.getState().status
      inFlight?.controller.abort()
      inFlight = undefined
      clearPoll()
      retrier.reset()
      context = next
      contextHash = nextHash
      outcome = 'none'
      lastError = undefined
      const known = deps.cache().peek(next.targetingKey)
      if (known) {
        // This page has seen the user before: show their values at once.
        ownValues = false
        applyCached(known)
      } else {
        // No flash of defaults: the previous values stay visible, marked stale, while the state
        // says `loading` until the new user's values arrive.
        ownValues = false
        commit(markStale(store.getState().flags))
      }
      if (!started || closed) return store.getState().status
      if (!known) await loadCache(nextHash, next.targetingKey)
      if (nextHash !== contextHash) return store.getState().status
      return attempt('context')
    },

    storageFailed() {
      storageError = { code: 'STORAGE', message: 'persistent storage failed; running on memory' }
      commit()
    },

    snapshot(): Bootstrap {
      const snapshot: Bootstrap = {
        context,
        flags: ownValues ? toEntries(store.getState().flags) : [],
        fetchedAt: lastSuccessAt ?? clock.now(),
      }
      if (etag?.contextHash === contextHash) snapshot.etag = etag.value
      return snapshot
    },

    close() {
      closed = true
      clearPoll()
      retrier.reset()
      inFlight?.controller.abort()
      inFlight = undefined
      stopEnvironment?.()
      stopEnvironment = undefined
    },
  }
}
