// Proxy mode (--upstream URL): every bulk request is forwarded for its context (upstreamAsk.ts),
// and the answer is merged into what the relay held for that context exactly as the browser client
// merges it (CONTRACT §4), so a partial or empty upstream answer, or none at all, never wipes a
// value. Concurrent requests for one context share one upstream call (upstreamGate.ts). This file
// wires the pieces: the answer to a request (proxyEvaluate.ts), the upstream's health and breaker
// (upstreamMonitor.ts), --on-upstream-unauthorized's drops (upstreamDrops.ts), --redis
// (sharedAnswers.ts), the --snapshot (snapshotStandIn.ts), the re-ask rounds (reaskRounds.ts) and
// their news (reaskNews.ts).
import { setMaxListeners } from 'node:events'
import type { EvaluationContext } from '@openfeature/core'
import { setBounded } from '../lru'
import type { SharedContexts } from '../store/sharedContexts'
import type { SharedContextsOptions } from '../store/sharedContextsOptions'
import { createAgeReader } from './ageReader'
import { createContextCache, DEFAULT_MAX_CONTEXTS } from './contextCache'
import { createContextSaver } from './contextSaver'
import { createListeners, type FlagSourceEvent, type FlagSourceStatus } from './flagSource'
import { unforwardableReason } from './headerNames'
import { closePersistence, createPersistence, intervalForSize } from './persistence'
import { createProxyEvaluate } from './proxyEvaluate'
import { createReaskNews } from './reaskNews'
import { createReaskRounds } from './reaskRounds'
import { sourceStatusOf, type RelaySource, type RelaySourceOptions } from './relay'
import type { RelayStatus } from './relayStatus'
import { createRequestSlots } from './requestSlots'
import { createSharedAnswers } from './sharedAnswers'
import { createSilenceGate } from './silenceGate'
import { nothingToServe } from './snapshotFile'
import { createSnapshotStandIn } from './snapshotStandIn'
import { waitAtMost } from './startupWait'
import { createSteadyClock } from './steadyClock'
import { createUpstreamAsk, type UpstreamOutcome } from './upstreamAsk'
import { createUpstreamDrops } from './upstreamDrops'
import { ofrepEndpoint, redactUrl } from './upstreamFetch'
import { createUpstreamGate } from './upstreamGate'
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
  // The contexts a user asked for while a round's request for them was out (see upstreamAsk.ts).
  const joined = new Set<string>()
  // Data-dir saves waiting for their answer's place in the store's order (see upstreamAsk.ts).
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
  const drops = createUpstreamDrops({ cache, onUnauthorized: options.onUnauthorized, maxContexts: options.maxContexts, now, steady, log, shared: () => shared$, save: (contentChanged) => save(contentChanged), shareAgain })
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
  function shareAgain(key: string) {
    const held = cache.peek(key)
    if (held?.storeVersion !== undefined) sharing.share(key, held, true, Promise.resolve({ ok: true as const, value: held.storeVersion }))
  }
  const standIn = createSnapshotStandIn(drops.clearedAt)

  // Every context is in one generation: under a stream of changes write at most twice a second,
  // and a large file less often (1 s per MB: see intervalForSize).
  const persistence = options.store && createPersistence({ store: options.store, now, minIntervalMs: (length) => intervalForSize(length, 500), log, onResult: (ok) => options.events?.saved(ok) })
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
    ask: (key, request) => gate.ask(key, request.context, request.forwarded, 'canary'),
    closed: () => closed,
    now,
    steady,
    log,
    events: options.events,
    emit: listeners.emit,
  })

  const saveContexts = persistence && createContextSaver(persistence, cache, now, drops.cleared, drops.refusedRuns)
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

  const gate = createUpstreamGate({ ask, monitor, inFlight, joined, pausedUntil, now })

  const answering = createProxyEvaluate({
    forwardHeaders,
    heldAnswerAfterMs,
    timeoutMs: options.timeoutMs,
    events: options.events,
    onUnauthorized: options.onUnauthorized,
    cache,
    asked: (key) => remember(askedBy, key, ++requests),
    gate,
    monitor,
    standIn,
    pausedUntil,
    missed: (key) => shared$?.missed?.(key),
    now,
  })

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
    ask: (key, context, forwarded) => gate.ask(key, context, forwarded, true),
    save,
    dropped: drops.dropped,
    refusedLater: drops.refusedLater,
    probe: monitor.probe,
    breakerOpen: () => monitor.breaker().open,
    health: monitor.health,
    record: monitor.record,
  })

  return {
    origin: 'upstream',
    async open() {
      if (options.store) {
        const held = await loadHeldContexts(options.store, cache, now, log, redactUrl(options.url), options.onUnauthorized.mode === 'keep')
        for (const [key, at] of held.cleared) drops.restore(key, at)
        for (const run of held.refused) drops.restoreRun(run)
        // Kept on purpose (the operator chose keep), and their runs forgotten at the next write: said,
        // as a drop is. Before, the list was let go in silence.
        const kept = options.onUnauthorized.mode === 'keep' ? held.refused.filter((run) => cache.peek(run.key)).length : 0
        if (kept > 0) log.warn(`the data dir lists ${kept === 1 ? 'a context' : `${kept} contexts`} the upstream refused (401/403) in a clear-after run before the restart: kept with ${kept === 1 ? 'its values, and its run ends' : 'their values, and their runs end'} here (--on-upstream-unauthorized keep)`)
      }
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
    evaluate: (request) => answering.evaluate(request.context as EvaluationContext, request.headers),
    freshness: () => undefined,
    relayStatus: (): RelayStatus =>
      upstreamStatus({
        ready: monitor.ready(),
        cache,
        snapshot: standIn.present(),
        health: monitor.health(),
        url: redactUrl(options.url),
        breaker: monitor.breaker(),
        unasked: answering.unasked(),
        probing: gate.probing(),
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
      drops.stop()
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
