// Proxy mode (--upstream URL): every bulk request is forwarded for its context (upstreamAsk.ts),
// and the answer is merged into what the relay held for that context exactly as the browser client
// merges it (CONTRACT §4), so a partial or empty upstream answer, or none at all, never wipes a
// value. Concurrent requests for one context share one upstream call. This file wires the pieces:
// the upstream's health and breaker (upstreamMonitor.ts), --on-upstream-unauthorized's drops
// (upstreamDrops.ts), --redis (sharedAnswers.ts), the --snapshot (snapshotStandIn.ts), the re-ask
// rounds (reaskRounds.ts) and their news (reaskNews.ts).
import { setMaxListeners } from 'node:events'
import type { EvaluationContext } from '@openfeature/core'
import { setBounded } from '../lru'
import type { SharedContexts, SharedContextsOptions } from '../store/sharedContexts'
import { createAgeReader } from './ageReader'
import { contextKey, createContextCache, DEFAULT_MAX_CONTEXTS } from './contextCache'
import { createContextSaver } from './contextSaver'
import { createListeners, type FlagSourceEvent, type FlagSourceStatus, type ForwardedAnswer } from './flagSource'
import { unforwardableReason } from './headerNames'
import { closePersistence, createPersistence, intervalForSize } from './persistence'
import { notReady, pickHeaders } from './proxyAnswer'
import { createReaskNews } from './reaskNews'
import { createReaskRounds } from './reaskRounds'
import { sourceStatusOf, type RelaySource, type RelaySourceOptions, type RelayStatus } from './relay'
import { createRequestSlots } from './requestSlots'
import { createSharedAnswers } from './sharedAnswers'
import { createSilenceGate } from './silenceGate'
import { nothingToServe } from './snapshotFile'
import { createSnapshotStandIn } from './snapshotStandIn'
import { waitAtMost } from './startupWait'
import { createSteadyClock } from './steadyClock'
import { createUpstreamAsk, MAX_RATE_LIMIT_PAUSE_MS, type UpstreamOutcome } from './upstreamAsk'
import { BREAKER_MAX_MS, probeDue } from './upstreamBreaker'
import { createUpstreamDrops } from './upstreamDrops'
import { ofrepEndpoint, redactUrl } from './upstreamFetch'
import { createUpstreamMonitor } from './upstreamMonitor'
import { loadHeldContexts, loadProxySnapshot } from './upstreamStart'
import { upstreamStatus } from './upstreamStatus'

/** How long a request for a context with a held answer waits for the upstream by default: 1,000 ms. */
export const DEFAULT_HELD_ANSWER_AFTER_MS = 1000

/** Default bound on the upstream requests in flight at once in proxy mode: 256. */
export const DEFAULT_MAX_UPSTREAM_REQUESTS = 256

/**
 * Default bound on one round of re-asks in proxy mode: 60,000 ms. Each round asks the users seen
 * most recently first and, turn about, the others in turn from where the last round stopped.
 */
export const DEFAULT_REASK_ROUND_MS = 60_000

/** Default `--forward-header`: `Authorization`, so each caller's own credentials reach the upstream. */
export const DEFAULT_FORWARD_HEADERS: readonly string[] = ['authorization']

/** Options of {@link createUpstreamSource}. */
export interface UpstreamSourceOptions extends RelaySourceOptions {
  /** The upstream's OFREP base URL (the relay posts to `{url}/ofrep/v1/evaluate/flags`). */
  url: string
  /** Contexts held (least recently used out first). Default 10,000. */
  maxContexts?: number
  /** Heap bytes of the answers held in proxy mode (`heldBytes` in contextCache.ts: the parsed answers, not their JSON). Default 64 MiB. */
  maxContextBytes?: number
  /**
   * How long a request whose context has a held answer waits for the upstream before that answer
   * is sent (stale) while the upstream request goes on. Default {@link DEFAULT_HELD_ANSWER_AFTER_MS}
   * (capped by the upstream timeout). A context with nothing held waits the whole upstream timeout.
   */
  heldAnswerAfterMs?: number
  /**
   * Upstream requests in flight at once. A burst of contexts never seen (a cold start, a crawler)
   * against a slow upstream would otherwise open one connection each; the others wait their turn,
   * within the upstream timeout. Default {@link DEFAULT_MAX_UPSTREAM_REQUESTS}.
   */
  maxUpstreamRequests?: number
  /**
   * How long one round of re-asks (live updates, `POST /holdfast/v1/refresh`) goes on before it
   * stops; the next round goes on from there. Default {@link DEFAULT_REASK_ROUND_MS}.
   */
  reaskRoundMs?: number
  /** Request headers passed upstream and made part of the cache key (any case). Default {@link DEFAULT_FORWARD_HEADERS}. */
  forwardHeaders?: readonly string[]
  /**
   * `--redis`: shares every good per-context answer with the other relays of this upstream, and
   * takes theirs. Given the hook that takes one, returns the shared store's driver. Default: none.
   */
  share?: (take: SharedContextsOptions['take'], held?: SharedContextsOptions['held']) => SharedContexts
}


/** Creates the proxy source; nothing happens until `open()`. */
export function createUpstreamSource(options: UpstreamSourceOptions): RelaySource {
  const { log } = options
  const now = options.now ?? Date.now
  // For "how long since" (see steadyClock.ts): a clock set back makes nothing recent look ahead.
  const steady = createSteadyClock(now)
  // The status' ageSeconds (see ageReader.ts): a clock set back does not make what is held 0 s old.
  const statusAge = createAgeReader()
  const endpoint = ofrepEndpoint(options.url)
  const cache = createContextCache(options.maxContexts, options.maxContextBytes)
  const inFlight = new Map<string, Promise<UpstreamOutcome>>()
  // The contexts a user asked for while a round's request for them was out (see `ask`'s `reask`).
  const joined = new Set<string>()
  // Data-dir saves waiting for their answer's place in the store's order (see `ask`).
  const placings = new Set<Promise<void>>()
  // Until when the upstream asked (429 or 503 + Retry-After) not to be asked with these forwarded
  // credentials, and with which status: a rate limit is usually per key, so one tenant's 429 never
  // pauses another's; an overloaded upstream's 503 pauses each key that hears it, as a 429 does.
  const pausedUntil = new Map<string, { until: number; status: number }>()
  // Sets `key` in a map with one entry per context or credentials (anyone may send new ones):
  // kept at most `maxContexts` long, the oldest out.
  const remember = <V>(map: Map<string, V>, key: string, value: V) => setBounded(map, key, value, options.maxContexts ?? DEFAULT_MAX_CONTEXTS)
  const maxUpstream = Math.max(1, options.maxUpstreamRequests ?? DEFAULT_MAX_UPSTREAM_REQUESTS)
  const slots = createRequestSlots(maxUpstream)
  // The order users asked for their contexts (a counter, not a clock): a round asks the users seen
  // most recently first. Its own re-asks do not count: the held entries' order is the order they
  // were last answered in, which a round itself rewrites.
  const askedBy = new Map<string, number>()
  let requests = 0
  // The contexts whose failure saying the upstream is down ended a round (the latest few): asked
  // last among the users seen most recently. One the upstream fails alone (a rule that crashes
  // on its attributes) whose user keeps retrying was asked first by every round and ended it after
  // four asks, so the rounds reached the other active users only through the sweep. Forgotten
  // once it is answered.
  const cutBy = new Set<string>()
  const roundMs = options.reaskRoundMs ?? DEFAULT_REASK_ROUND_MS
  const news = createReaskNews()
  const drops = createUpstreamDrops({ cache, onUnauthorized: options.onUnauthorized, maxContexts: options.maxContexts, now, steady, log, shared: () => shared$, save: (contentChanged) => save(contentChanged) })
  // --redis: another relay's answer for a context, taken when it is newer than what is held here,
  // or its drop marker (see upstreamDrops.ts).
  const sharing = createSharedAnswers({
    share: options.share,
    cache,
    maxContexts: options.maxContexts,
    admit: drops.take,
    heard: () => {
      if (monitor.breaker().open) monitor.saw({ type: 'heard', at: now() })
    },
    taken: news.taken,
    save: (contentChanged) => save(contentChanged),
    now,
    steady,
    log,
  })
  const shared$ = sharing.store
  const standIn = createSnapshotStandIn(drops.clearedAt)

  // Every context is in one generation: under a stream of changes write at most twice a second,
  // and a large file less often (1 s per MB: see intervalForSize).
  const persistence = options.store && createPersistence({ store: options.store, now, minIntervalMs: (length) => intervalForSize(length, 500), log, onResult: (ok) => options.events?.saved(ok) })
  let probing: Promise<UpstreamOutcome> | undefined
  // Browser requests answered without asking while it was open (since start).
  let unasked = 0
  let closed = false
  // Closing abandons upstream requests in flight instead of waiting out their timeout.
  const closing = new AbortController()
  // Every upstream request in flight listens to it (up to maxUpstreamRequests): not a leak, so no
  // "possible EventTarget memory leak" warning in the operator's log past 10 of them.
  setMaxListeners(0, closing.signal)
  const listeners = createListeners<FlagSourceEvent>()
  const forwardHeaders = (options.forwardHeaders ?? DEFAULT_FORWARD_HEADERS).map((name) => name.toLowerCase())
  // A programmer's mistake, as in createFlagServer's options: never forwarded in silence.
  for (const name of forwardHeaders) {
    const why = unforwardableReason(name)
    if (why) throw new Error(`[holdfast-server] forwardHeaders: ${name} cannot be forwarded (${why})`)
  }
  const heldAnswerAfterMs = Math.min(options.heldAnswerAfterMs ?? DEFAULT_HELD_ANSWER_AFTER_MS, options.timeoutMs)
  // Users' requests wait here while the upstream is silent (a request unanswered as long as a held
  // answer waits, nothing back since): a hung upstream is not sent one connection per new user
  // before the breaker can open (see silenceGate.ts).
  const silence = createSilenceGate(heldAnswerAfterMs)

  const monitor = createUpstreamMonitor({
    endpoint,
    timeoutMs: options.timeoutMs,
    fetch: options.fetch,
    signal: closing.signal,
    cache,
    askedBy,
    holds: () => cache.size() > 0 || standIn.servesAll(),
    ask: (key, request) => shared(key, request.context, request.forwarded, 'canary'),
    closed: () => closed,
    now,
    steady,
    log,
    events: options.events,
    emit: listeners.emit,
  })

  const saveContexts = persistence && createContextSaver(persistence, cache, now, drops.cleared)
  const save = (contentChanged: boolean) => saveContexts?.(contentChanged)
  const ask = createUpstreamAsk({
    endpoint,
    signal: closing.signal,
    closed: () => closed,
    timeoutMs: options.timeoutMs,
    fetch: options.fetch,
    events: options.events,
    maxShrinkPercent: options.maxShrinkPercent,
    onUnauthorized: options.onUnauthorized,
    cache,
    joined,
    cutBy,
    slots,
    maxUpstream,
    silence,
    store: shared$,
    drops,
    news,
    sharing,
    monitor,
    pause: (credentials, pause) => remember(pausedUntil, credentials, pause),
    save,
    persisted: !!persistence,
    placings,
    now,
    steady,
    log,
  })

  const shared = (key: string, context: EvaluationContext, forwarded: Record<string, string>, reask: boolean | 'canary' = false): Promise<UpstreamOutcome> => {
    const running = inFlight.get(key)
    if (running) {
      if (!reask) joined.add(key)
      return running
    }
    // Rate limited or overloaded (429 or 503 + Retry-After): every request would otherwise still go
    // upstream, each context its own, keeping it down. Served from what is held until the pause ends.
    const credentials = contextKey({}, forwarded)
    const paused = pausedUntil.get(credentials)
    // (A pause ending further ahead than the longest one was set before the clock went back: over.)
    const left = paused === undefined ? 0 : paused.until - now()
    if (paused !== undefined && left > 0 && left <= MAX_RATE_LIMIT_PAUSE_MS) return Promise.resolve({ kind: 'failed', failure: 'http', message: `the upstream answered ${paused.status}: not asked again before ${new Date(paused.until).toISOString()} (Retry-After)`, paused: true })
    if (paused !== undefined) pausedUntil.delete(credentials)
    // The breaker is open: a user's request goes upstream only as the probe, one at a time when
    // it is due; the others are answered without asking. (A round of re-asks and a refresh keep
    // their own rules: a round ends at the first failure of this kind.)
    let asProbe = false
    const breaker = monitor.breaker()
    if (!reask && breaker.open) {
      if (probing || !probeDue(breaker, now())) {
        const error = monitor.downError()
        return Promise.resolve({ kind: 'failed', failure: error?.kind ?? 'http', message: `the upstream is down${error ? ` (${error.message})` : ''}: not asked again before ${new Date(breaker.probeAt!).toISOString()} (breaker open)`, unasked: true })
      }
      monitor.saw({ type: 'probe', at: now(), jitter: Math.random() })
      asProbe = true
    }
    const attempt = ask(key, context, forwarded, reask, !reask && !asProbe)
      .catch((error: unknown): UpstreamOutcome => monitor.fail(now(), 'invalid', `unexpected: ${(error as Error)?.message ?? String(error)}`))
      .finally(() => {
        inFlight.delete(key)
        joined.delete(key)
      })
    inFlight.set(key, attempt)
    if (asProbe) {
      probing = attempt
      void attempt.finally(() => {
        if (probing === attempt) probing = undefined
      })
    }
    return attempt
  }

  const evaluate = async (context: EvaluationContext, headers: Record<string, string | string[] | undefined>): Promise<ForwardedAnswer> => {
    const forwarded = pickHeaders(headers, forwardHeaders)
    const key = contextKey(context, forwarded)
    remember(askedBy, key, ++requests)
    // A context read back from the data dir (only its hash is saved) can be asked again by the
    // rounds once its user asks, whatever the upstream answers now: a tab whose refetch after a
    // restart met an upstream still down was not re-asked when it came back (nor by a refresh),
    // and kept the old values, stale, until it asked again by itself (its backoff: up to a minute).
    const known = cache.get(key)
    if (known && !known.request) cache.set(key, { ...known, request: { context, forwarded }, bytes: undefined })
    const attempt = shared(key, context, forwarded)
    // With an answer held, a slow upstream must not make the caller wait out the upstream timeout
    // (the browser's own timeout is about as long): after `heldAnswerAfterMs` the held answer goes
    // out, marked stale, and the upstream request carries on in the background to update it.
    // With nothing held, it waits the upstream timeout at most, its wait for a turn included: an
    // answer that comes later is held for the retry its 503 asks for. While the upstream's latest
    // attempt failed, no longer than a held answer waits: every new user of an outage would
    // otherwise wait about as long as a browser's own timeout for a 503.
    const before = cache.get(key)
    const waitMs = before || monitor.health().state === 'failing' ? heldAnswerAfterMs : options.timeoutMs
    let timer: ReturnType<typeof setTimeout> | undefined
    const outcome = await Promise.race([attempt, new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)))])
    clearTimeout(timer)
    // Not answered by the upstream: another relay of the fleet may have been, and shared it without
    // this one hearing (a notice Redis refused to publish, or lost). Looked up for the next request.
    // Not for credentials the upstream refuses: what it does to their values is the relay's policy (keep, clear).
    if (outcome === 'late' || (outcome.kind === 'failed' && outcome.failure !== 'unauthorized')) shared$?.missed?.(key)
    if (outcome === 'late' && before) return standIn.served(key, cache.get(key) ?? before, true, context, forwarded)
    if (outcome === 'late') return standIn.answer(key, context, forwarded) ?? notReady(`no answer from the upstream within ${waitMs} ms for this context (still asked: it is kept for the next request)`)
    if (outcome.kind === 'rejected') return { status: outcome.status, body: outcome.body }
    // Answered without an upstream request: counted, so an open breaker or a pause is never silent.
    if (outcome.kind === 'failed' && (outcome.unasked || outcome.paused || outcome.silent)) {
      if (outcome.unasked) unasked++
      options.events?.unasked(outcome.unasked ? 'breaker' : outcome.silent ? 'silent' : 'paused')
    }
    const held = cache.get(key)
    if (held) return standIn.served(key, held, outcome.kind === 'failed', context, forwarded, outcome.kind === 'failed' && outcome.failure === 'unauthorized')
    // While these credentials are paused (429/503 + Retry-After) nothing is asked: a retry sooner
    // than the pause's end would only meet this 503 again.
    const paused = outcome.kind === 'failed' ? pausedUntil.get(contextKey({}, forwarded)) : undefined
    // The same while the breaker is open: nothing is asked before its next probe.
    const probeLeft = outcome.kind === 'failed' && outcome.unasked ? Math.min(BREAKER_MAX_MS, (monitor.breaker().probeAt ?? 0) - now()) : 0
    const pauseLeft = Math.ceil(Math.max(paused === undefined ? 0 : paused.until - now(), probeLeft) / 1000)
    // The snapshot was made with its maker's credentials: it stands in for an upstream that is
    // down, not for one that refuses these credentials while it accepts others (a revoked or
    // made-up key got flag values where it would get 503 without a snapshot), nor once a 401/403
    // is to drop values (`clear`, `clear-after`: 503 until the upstream answers again).
    const refusedHere = outcome.kind === 'failed' && outcome.failure === 'unauthorized' && (outcome.refused === true || options.onUnauthorized.mode !== 'keep')
    if (outcome.kind === 'failed') return (refusedHere ? undefined : standIn.answer(key, context, forwarded)) ?? notReady(`no answer held for this context and the upstream failed: ${outcome.message}`, pauseLeft)
    return notReady('no answer held for this context')
  }

  const rounds = createReaskRounds({
    cache,
    askedBy,
    told: news.told,
    cutBy,
    inFlight,
    roundMs,
    onUnauthorized: options.onUnauthorized,
    unauthorizedSince: drops.unauthorizedSince,
    now,
    steady,
    closed: () => closed,
    tellOwedNews: news.tellOwed,
    ask: (key, context, forwarded) => shared(key, context, forwarded, true),
    save,
    dropped: drops.dropped,
    probe: monitor.probe,
    breakerOpen: () => monitor.breaker().open,
    health: monitor.health,
    record: monitor.record,
  })

  return {
    origin: 'upstream',
    async open() {
      if (options.store) for (const [key, at] of await loadHeldContexts(options.store, cache, now, log, redactUrl(options.url))) drops.restore(key, at)
      standIn.load(await loadProxySnapshot(options.snapshotPath, log, now, forwardHeaders))
      // --redis: the answers other relays got, read in the background (never delays serving).
      void shared$?.start()
      const first = monitor.probe()
      // With something to serve, start at once; with nothing, wait for the probe (boundedly) so that
      // a healthy upstream means ready on return.
      if (!monitor.ready()) await waitAtMost(first)
      // A torn --snapshot is only a refusal to start when nothing else has flags either. With --redis
      // the store may hold the fleet's answers, taken per context when asked (it cannot be listed
      // here): refused, a relay restarted during an upstream outage crash-looped beside them.
      const snapshotState = standIn.state()
      if (snapshotState?.usable === false && standIn.refusesStart() && !shared$ && cache.size() === 0 && monitor.health().state !== 'ok') {
        throw nothingToServe(snapshotState, `the data dir holds no answers and ${redactUrl(options.url)} did not answer`)
      }
    },
    current: () => undefined,
    subscribe: listeners.add,
    async refresh() {
      const result = await rounds.refreshAll()
      return result.outcome !== 'failed'
    },
    status(): FlagSourceStatus {
      return sourceStatusOf(monitor.health(), monitor.ready())
    },
    evaluate: (request) => evaluate(request.context as EvaluationContext, request.headers),
    freshness: () => undefined,
    relayStatus: (): RelayStatus =>
      upstreamStatus({
        ready: monitor.ready(),
        cache,
        snapshot: standIn.present(),
        health: monitor.health(),
        url: redactUrl(options.url),
        breaker: monitor.breaker(),
        unasked,
        probing: probing !== undefined,
        lastRound: rounds.lastRound(),
        round: rounds.round(),
        dataDir: persistence ? persistence.state() : undefined,
        snapshotState: standIn.state(),
        snapshotOver: standIn.over,
        redis: shared$?.status(),
        at: now(),
        ageOf: statusAge,
      }),
    refreshDetails: (refreshOptions) => rounds.refreshWithin(refreshOptions?.answerWithinMs),
    onTaken: news.onTaken,
    onReaskNews: news.onNews,
    reaskRecent: () => rounds.reaskRecent(),
    // Only a relay holding contexts it can ask (asked in this process: it knows them) re-asks for
    // another relay's streams; one with nothing of its own would only probe the upstream for nobody.
    ...(shared$?.streamsOpen && shared$.fleetStreamsOpen
      ? {
          fleetStreams: {
            announce: (ttlMs: number) => shared$.streamsOpen!(ttlMs),
            anyOpen: async () => cache.entries().some(([, held]) => held.request !== undefined) && (await shared$.fleetStreamsOpen!()),
          },
        }
      : {}),
    abandonWaits() {
      closed = true
      closing.abort()
      slots.abandon()
      silence.abandon()
    },
    async close() {
      closed = true
      monitor.stop()
      closing.abort()
      slots.abandon()
      silence.abandon()
      await Promise.allSettled([...inFlight.values()])
      await Promise.allSettled([...placings])
      await shared$?.stop()
      await closePersistence(persistence, log)
    },
  }
}
