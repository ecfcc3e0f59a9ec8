// The driver of flag sync: it does the I/O the state machine (syncState.ts) cannot — cache reads
// and writes, the request, the scheduler — and feeds what happened back in as inputs. The store
// gets the state's flags and its derived status after every input. When to ask is the shared
// scheduler's decision (platform/scheduler.ts); what an answer means is the reducer's.
import { hashString, safeContextHash } from '../platform/hash'
import { HoldfastError, isRetryable } from '../platform/errors'
import { createScheduler } from '../platform/scheduler'
import { fetchFlags, type FetchResult } from '../protocol/fetchFlags'
import { isContext, ownContext } from '../protocol/readers'
import type { Bootstrap, Clock, EvaluationContext, Environment, Logger, Status, HeadersOption } from '../types'
import type { FlagCache } from './cache'
import { holdsValues, toEntries } from './merge'
import type { Store } from './store'
import { deriveStatus, reduce, type SyncInput, type SyncState } from './syncState'

/** Focus and visibility refetches are throttled to one per this many ms. */
const FOCUS_THROTTLE_MS = 5000

/** What the driver needs; the client passes options already read and checked. */
export interface SyncDeps {
  url: string
  headers?: HeadersOption
  timeoutMs: number
  pollMs: number
  refreshOnFocus: boolean
  acceptEmpty: boolean
  clearOnUnauthorized: boolean
  initial: SyncState
  store: Store
  logger: Logger
  clock: Clock
  random: () => number
  environment: Environment
  fetch: typeof fetch
  cache: () => FlagCache
  storageKind: () => Status['storage']
  /** Told of every answer applied for the current context, 200 or 304 (live updates: the advertised stream, sharing with other tabs). */
  onAnswer?: (result: FetchResult, contextHash: string) => void
}

/** A full (200) answer. */
export type OkResult = Extract<FetchResult, { kind: 'ok' }>

/** What a live-update refetch adds to an attempt. */
export interface AttemptExtra {
  /** Appended to the URL (`flagConfigEtag=…`). */
  query?: string
  /** Sent without `If-None-Match` (after the page was hidden long: OFREP asks for a full refetch). */
  full?: boolean
}

/** The flag sync of one client. */
export type Sync = ReturnType<typeof createSync>

/** Creates the driver; nothing happens until `start()`. */
export function createSync(deps: SyncDeps) {
  const { store, logger, clock } = deps
  let state = deps.initial
  let started = false
  let closed = false
  /** No user on the page (a logout): nothing is asked for the one who left until the next setContext. */
  let paused = false
  /**
   * The one request out, and whether a switch sent it while another request was out (`burst`: a
   * later switch waits for it rather than abort it, or a switch per render would again be one
   * request per call).
   */
  let inFlight: { promise: Promise<Status>; controller: AbortController; burst?: boolean } | undefined
  /** A context the server rejected with 400: not retried automatically (refresh/setContext still try). */
  let rejectedContext: string | undefined
  /** A user switch still reading the new user's cache (no request out yet). */
  let switching: Promise<Status> | undefined
  /** The last failure logged, so an outage that lasts is reported once, not once per retry. */
  let lastLogged = ''
  /** How many unreadable entries the last answer applied had, logged once while it stays so. */
  let skippedLogged = 0
  /** The failure that brought the latest backoff or `Retry-After`: what a switch it holds back shows. */
  let held: HoldfastError | undefined
  /** Settles the switch waiting for a request out to settle: a newer switch superseded it. */
  let wake = () => {}

  const scheduler = createScheduler({
    clock,
    environment: deps.environment,
    random: deps.random,
    pollMs: deps.pollMs,
    focusThrottleMs: deps.refreshOnFocus ? FOCUS_THROTTLE_MS : 0,
    run: (trigger) => void attempt(trigger),
  })

  const status = () => store.getState().status
  /**
   * A page with no user (a logout): no request at all (polls, focus, retries, live-update
   * refetches, refresh) until the next setContext. A request already out may finish; the values
   * held stay as they are, but are nobody's (no exposure, no targetingKey on events), and the status
   * says so (`paused`). Event delivery has its own scheduler and goes on.
   * After close() nothing changes: no setContext could end the pause (it is ignored then), and a
   * closed client's status is what close() left (before: `paused` for good, its listeners told).
   */
  function pause() {
    if (closed) return
    paused = true
    scheduler.stop()
    commit(state)
  }
  function dispatch(input: SyncInput) {
    const next = reduce(state, input)
    commit(next)
  }
  function commit(next: SyncState) {
    state = next
    store.setState({ flags: state.flags, status: deriveStatus(state, deps.storageKind(), started, paused), partial: state.removed })
  }
  commit(state)

  async function loadCache(forHash: string, targetingKey: string) {
    const record = await deps.cache().read(targetingKey)
    if (closed || forHash !== state.contextHash) return
    dispatch(record ? { type: 'cache', contextHash: forHash, record, now: clock.now() } : { type: 'cache-miss', contextHash: forHash })
  }

  /** The ETag held, when it names a snapshot of the current context. */
  const heldEtag = () => (state.etag?.contextHash === state.contextHash ? state.etag : undefined)

  /** Requests up to this generation were sent before the last `clearCache()`: their answers are not persisted. */
  let clearedBefore = 0

  function persist() {
    if (!state.own || state.contextHash === undefined) return
    // The ETag of a snapshot a relay said is stale is not kept: after a reload a 304 to it would
    // not say so (the cache entry has no room for it), the full answer will.
    const held = heldEtag()
    const etag = held?.stale ? undefined : held
    void deps.cache().write(state.context.targetingKey, {
      flags: toEntries(state.flags),
      etag: etag?.value,
      etagKeys: etag ? [...etag.keys] : undefined,
      contextHash: state.contextHash,
      heldAt: state.heldAt,
      // On success, a failure is the relay's UPSTREAM_STALE: its answer is a stale one.
      stale: !!state.failure,
    })
  }

  function attempt(trigger: 'explicit' | 'retry' | 'poll' | 'focus' | 'online', extra: AttemptExtra = {}): Promise<Status> {
    if (closed || paused) return Promise.resolve(status())
    if (inFlight) return inFlight.promise
    const forHash = state.contextHash
    if (forHash === undefined) return Promise.resolve(status())
    if (!scheduler.allows(trigger)) {
      // Only a server's `Retry-After` holds an explicit call. A switch it holds back is shown what a
      // failed attempt for that context shows (their cache, else fallback or defaults: never the
      // previous user's values as theirs); the scheduler asks for the latest context when it ends.
      if (trigger === 'explicit' && state.outcome === 'none' && held) dispatch({ type: 'held', error: held })
      return Promise.resolve(status())
    }
    if (trigger !== 'explicit' && rejectedContext === forHash) return Promise.resolve(status())
    scheduler.began()
    dispatch({ type: 'request' })
    const generation = state.generation
    const controller = new AbortController()
    const send = (etag?: string) =>
      fetchFlags({
        query: extra.query,
        fetch: deps.fetch,
        url: deps.url,
        context: state.context,
        headers: deps.headers,
        etag,
        timeoutMs: deps.timeoutMs,
        signal: controller.signal,
        now: clock.now,
        clock,
      })
    const promise = send(extra.full ? undefined : heldEtag()?.value)
      // A 304 for a snapshot no longer held (a cache entry, with its own ETag, landed while the
      // request was out) confirms nothing held (§2.1), but the server is healthy: asked again at
      // once without If-None-Match, once. Only a 304 to that one is INVALID_RESPONSE (fetchFlags).
      // Not after pause() (a logout): no request for the user who left; the 304 only said the
      // server is there, as an abandoned request would (no error, values as they are).
      .then((result) =>
        result.kind == 'not-modified' && result.etag != heldEtag()?.value && generation == state.generation ? (paused ? ({ kind: 'aborted' } as const) : send()) : result,
      )
      .then((result) => {
        if (closed) return status()
        apply(generation, forHash, result)
        // Live updates act on a 200 only; anything else (a 304, or an answer discarded while the
        // state stayed a success) just tells them the server is there.
        // Nor, while paused, do they (re)open a stream for the user who left.
        if (state.outcome === 'success' && !paused) deps.onAnswer?.(result, forHash)
        return status()
      })
      .catch((error: unknown) => {
        logger.error('unexpected error while applying a response', error)
        return status()
      })
      .finally(() => {
        if (inFlight?.controller === controller) inFlight = undefined
      })
    inFlight = { promise, controller }
    return promise
  }

  /**
   * Whether an answer went out with the static headers held now: one fetched on an SDK key the app
   * has since changed (`<FlagProvider headers>` refilled) is not written under the new key's entry.
   * Headers that cannot be read now (a throwing getter) name no key to write under.
   * The hash is fetchFlags' `creds` (`hashString(sent + '')`, `sent` their JSON; an object's JSON is
   * a string already). Not a shared helper: every shape of one cost (b) 4–9 B more than this line.
   * If the two drift, no answer on static headers is cached: headers.test.tsx's reloads catch it.
   */
  function sentAsNow(result: FetchResult): boolean {
    try {
      return typeof deps.headers != 'object' || (result as { creds?: string }).creds == hashString(JSON.stringify(deps.headers))
    } catch {
      return false
    }
  }

  /** Feeds an answer to the reducer; when it changed anything, settles it. */
  function apply(generation: number, forHash: string, result: FetchResult) {
    const before = state
    dispatch({ type: 'answer', generation, contextHash: forHash, result, now: clock.now(), acceptEmpty: deps.acceptEmpty, clearOnUnauthorized: deps.clearOnUnauthorized })
    if (state !== before) {
      // Entries without a string `key` (a vendor naming it `flagKey`) are skipped (§2.1): said once
      // while answers keep coming so, or every flag was the caller's default, `ready`, and not a word.
      if (result.kind == 'ok' && skippedLogged != (skippedLogged = result.skipped) && skippedLogged) logger.warn(`${skippedLogged} unreadable flag entries (no key) skipped`)
      settle(before, generation > clearedBefore && sentAsNow(result))
    }
    // An answer for a context since replaced is not applied, but a server's `Retry-After` is about
    // the server: the next context waits for it too. (Any other failure only arms a retry, which
    // the request of the switch waiting for this one replaces at once.)
    else if (result.kind === 'error') scheduler.failed((held = result.error))
  }

  /** After an answer was applied: the scheduler told, the cache written, the outcome logged. */
  function settle(before: SyncState, mayPersist: boolean) {
    if (state.outcome === 'success') {
      // A relay's stale answer (its upstream failing) is asked again on the failure backoff, or a
      // page without polling or live updates would stay `stale` for its life.
      if (state.failure) scheduler.failed(state.failure)
      else scheduler.succeeded()
      lastLogged = ''
      // A poll that confirms what is held changes nothing on disk either: the store kept the same
      // map, so there is nothing new to write (with 10,000 flags that is a sizeable clone per poll).
      // An answer to a request sent before `clearCache()` (a logout) is not written back.
      if (mayPersist && (state.flags !== before.flags || state.etag?.value !== before.etag?.value || !before.own)) persist()
      if (state.failure) report(state.failure)
      return
    }
    const error = state.failure!
    if (error.code === 'INVALID_CONTEXT') rejectedContext = state.contextHash
    if (error.code === 'UNAUTHORIZED' && deps.clearOnUnauthorized) void deps.cache().remove(state.context.targetingKey)
    report(error)
    // A 413 is final for an event batch (delivery splits it), but for a flag request it is one of
    // CONTRACT §2.1's "other 4xx": transient, retried with backoff like them.
    if (isRetryable(error) || error.httpStatus === 413) scheduler.failed((held = error))
    else scheduler.halted()
  }

  /** One honest line about a failure: what failed, and what the app is shown instead. */
  function report(error: HoldfastError) {
    const key = `${error.code}:${error.httpStatus ?? ''}:${state.contextHash}`
    if (key === lastLogged) return
    lastLogged = key
    if (error.code === 'UPSTREAM_STALE') return logger.warn(`${error.message}; served as stale`)
    const shown =
      state.own && holdsValues(state.flags)
        ? 'serving the last known values'
        : `nothing known for this user: serving ${state.fallback.size > 0 ? 'the fallback values' : "the caller's defaults"}`
    logger.warn(`flag fetch failed (${error.code}): ${error.message}; ${shown}`)
  }

  return {
    context: () => state.context,
    contextHash: () => state.contextHash ?? '',
    /** False between a user switch and the new user's values (what is on screen is the previous user's), and while paused. */
    ownsValues: () => state.own && !paused,
    /** The targetingKey events are logged for: none while paused (no user on the page). */
    user: () => (paused ? undefined : state.context.targetingKey),
    /** The cache of the current user has been read: fallback values no longer only stand in for it. */
    cacheRead: () => state.cacheRead,

    async start(): Promise<Status> {
      started = true
      commit(state) // storage is known now (IndexedDB, or memory when it is missing)
      scheduler.start()
      // Cache first, then the network: the cached values are on screen before any answer, and the
      // cached ETag can go on the first request (a 304 then confirms them). A stuck IndexedDB is
      // bounded by the storage timeout, so it can delay the first request but never stop it.
      const generation = state.generation
      if (state.contextHash !== undefined) await loadCache(state.contextHash, state.context.targetingKey)
      // A refresh() while the cache was read (a slow IndexedDB) asked already: its request out is
      // joined, and once it settled this start is settled too (before, the same question went
      // out again at once, two requests for one page load). Only one asked meanwhile: an attempt
      // that finished before start() (a refresh() in a handler that ran first) had no scheduler
      // running to arm its retry, and a 503 then was `error` for the life of the page.
      return state.outcome == 'none' || generation == state.generation ? attempt('explicit') : status()
    },

    refresh: () => attempt('explicit'),

    async setContext(input: EvaluationContext): Promise<Status> {
      // `{ targetingKey: user?.id }` after a logout: there is no user to switch to, and none to keep
      // asking for or logging events as (before, the previous user's polls and events went on).
      // Paused as by pause(); the client's live stream, if any, stays and asks nothing meanwhile.
      if (!isContext(input)) {
        logger.error('setContext needs a context with a string `targetingKey`: paused until one comes')
        pause()
        return status()
      }
      const next = ownContext(input)
      const nextHash = safeContextHash(next)
      // A closed client sends nothing more: a switch would leave the new user `loading` for good.
      // The same context again is no switch (a provider's effect re-run on the client it closed).
      if (closed) {
        if (nextHash !== state.contextHash) logger.warn('setContext after close: ignored')
        return status()
      }
      const resumed = paused
      paused = false
      if (started) scheduler.start()
      // The same user asked again while their switch reads the cache: the same settling as the first
      // call. The same user back after a pause: asked again, their values may have moved meanwhile.
      // Resumed, the status says so at once (Status.paused): a reader holding a value it could not
      // expose while no user was on the page exposes it now, though no value changed. Not asked before
      // start(), which asks (before: a request from setContext, and start() asked again).
      if (nextHash !== undefined && nextHash === state.contextHash) {
        if (resumed) commit(state)
        return switching ?? inFlight?.promise ?? (resumed && started ? attempt('explicit') : status())
      }
      wake()
      // The request out is abandoned at once (its answer would be discarded anyway: a login right
      // after the page loaded, or attributes the page learnt a moment later, need not wait for it),
      // unless it is itself the request of a burst of switches: then this one waits for it, so a
      // switch per render (to the same user or to ever new ones) is one request per round trip,
      // never one per call.
      const burst = !!inFlight
      if (inFlight && !inFlight.burst) {
        inFlight.controller.abort()
        inFlight = undefined
      }
      scheduler.reset()
      lastLogged = ''
      const known = nextHash === undefined ? undefined : deps.cache().peek(next.targetingKey)
      dispatch({ type: 'switch', context: next, contextHash: nextHash, cached: known, now: clock.now(), afterPause: resumed })
      if (nextHash === undefined) {
        report(state.failure!)
        return status()
      }
      if (!started) return status()
      const run = (switching = (async () => {
        // Read even when this page remembered the user (`known`, shown at once): another tab may
        // have saved newer values for them since, and the newer of the two is what a failed
        // attempt leaves on screen (before, the page's older memory, for the whole outage).
        await loadCache(nextHash, next.targetingKey)
        // A request still out is for a context since replaced: its answer will be discarded (the
        // generation guard). Switches meanwhile replace each other; the latest goes when it settles.
        while (inFlight && nextHash === state.contextHash) await new Promise((resolve) => void inFlight!.promise.then((wake = resolve as () => void)))
        // Superseded; or an attempt for this context (a retry the wait's end fired) settled meanwhile.
        if (nextHash !== state.contextHash || state.outcome !== 'none') return status()
        const settled = attempt('explicit')
        if (inFlight) inFlight.burst = burst
        return settled
      })())
      const done = () => void (switching === run && (switching = undefined))
      void run.then(done, done)
      return run
    },

    storageFailed: (message?: string) => dispatch({ type: 'storage-failed', message }),

    /**
     * One attempt for live updates (live/liveSession.ts): a notice's refetch (`explicit`, with
     * `flagConfigEtag`), a poll while the stream is down (`poll`: backoff and offline hold it),
     * or a full refetch without `If-None-Match`. Joins the request in flight, if any.
     */
    request: attempt,
    /** A request is in flight (an answer to it may predate a notice that just came). */
    busy: () => !!inFlight,
    etag: () => heldEtag()?.value,
    /**
     * Applies a full answer another tab fetched for this same context (same url and context hash)
     * as if it were this tab's own; false when it does not fit (another user now, a request out).
     */
    /** The cache was cleared (a logout): answers to the requests already out are not written back. */
    cleared() {
      clearedBefore = state.generation
    },

    adopt(result: OkResult, forHash: string): boolean {
      // Only called by live updates, which run between start() and close().
      if (inFlight || forHash !== state.contextHash) return false
      dispatch({ type: 'request' })
      apply(state.generation, forHash, result)
      return state.outcome === 'success'
    },

    snapshot(): Bootstrap {
      const snapshot: Bootstrap = {
        context: state.context,
        flags: state.own ? toEntries(state.flags) : [],
        fetchedAt: state.lastSuccessAt ?? clock.now(),
      }
      const etag = heldEtag()
      if (etag) snapshot.etag = etag.value
      if (state.failure?.code === 'UPSTREAM_STALE') snapshot.stale = true
      return snapshot
    },

    pause,

    close() {
      closed = true
      scheduler.stop()
      inFlight?.controller.abort()
      inFlight = undefined
      // Nothing is pending any more: `loading` would never end (an app waiting on it, for good).
      // Shown as the first attempt failing so (a switch's: the previous user's values go). The
      // OpenFeature provider reads this message to refuse a closed client passed in to it.
      if (status().state == 'loading') dispatch({ type: 'held', error: new HoldfastError('NETWORK', 'client closed') })
    },
  }
}
