// Proxy mode (--upstream URL): every bulk request is forwarded for its context, and the answer is
// merged into what the relay held for that context exactly as the browser client merges it
// (`mergeResponse` from @holdfast/core, CONTRACT §4), so a partial or empty upstream answer, or
// none at all, never wipes a value. Concurrent requests for one context share one upstream call.
import { setMaxListeners } from 'node:events'
import { mergeResponse, type FlagMap } from '@holdfast/core'
import type { EvaluationContext } from '@openfeature/core'
import { createBackoffTimer } from '../backoffTimer'
import { contextKey, createContextCache, DEFAULT_MAX_CONTEXTS, MAX_NOT_FOUND, fromContextRecord, toContextRecord, type HeldContext } from './contextCache'
import type { parseFlagDefinitions } from './flagDefinitions'
import { createListeners, type FlagSourceEvent, type FlagSourceStatus, type ForwardedAnswer } from './flagSource'
import { closePersistence, createPersistence, intervalForSize } from './persistence'
import { contextRecordSchema, DROP_MARKER_PREFIX, dropMarkerSchema, readRecord, type DropMarker } from './records'
import { createAgeReader } from './ageReader'
import { sourceStatusOf, type RelaySource, type RelaySourceOptions, type RelayStatus } from './relay'
import { checkShrink } from './shrinkGuard'
import { createRequestSlots } from './requestSlots'
import { createSilenceGate } from './silenceGate'
import { createCanary, pickCanary } from './canary'
import { createContextSaver } from './contextSaver'
import { createReaskRounds } from './reaskRounds'
import { judgeShared } from './sharedTake'
import { classifyFailure, noteAcceptance, opensBreaker, type Acceptances } from './failureClass'
import { createSteadyClock } from './steadyClock'
import { nothingToServe, type SnapshotLayer, type SnapshotState } from './snapshotFile'
import { answerFromHeld, answerFromSnapshot, changedKeys, notReady, ofrepError, pickHeaders, snapshotFetchedAt, snapshotServes } from './proxyAnswer'
import { readUpstreamAnswer } from './upstreamAnswer'
import { ofrepEndpoint, redactUrl, upstreamFetch, type UpstreamFailureKind, type UpstreamFetchResult } from './upstreamFetch'
import { BREAKER_MAX_MS, CLOSED_BREAKER, probeDue, reduceBreaker, type BreakerEvent, type BreakerState } from './upstreamBreaker'
import { loadHeldContexts, loadProxySnapshot } from './upstreamStart'
import { upstreamStatus } from './upstreamStatus'
import { initialHealth, reduceHealth, unauthorizedLongEnough, type HealthEvent, type UpstreamHealth } from './upstreamHealth'
import type { SharedContexts, SharedContextsOptions, SharedTicket } from '../store/sharedContexts'
import type { StoredDocument } from '../store/sharedStore'
import { waitAtMost } from './startupWait'
import { setBounded } from '../lru'
import { unforwardableReason } from './headerNames'

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

// With --redis, an answer whose content did not change is shared again at most this often (it
// carries the newer fetchedAt), so a busy relay does not write to Redis on every request.
const RESHARE_AFTER_MS = 30_000

type Outcome =
  // `recovered`: the answer before was served stale (see HeldContext.servedStale). `evicted`: a
  // round's context evicted while its request waited for a turn: not asked (see refreshAll in reaskRounds.ts).
  | { kind: 'fresh'; changed: string[]; recovered?: true; evicted?: true }
  // `paused`: not asked at all, the upstream asked these credentials to wait (429/503 + Retry-After).
  // `refused`: the upstream answered, and this context's answer (or these credentials) was refused:
  // counted without the upstream being down (see `fail`), and a re-ask round goes on.
  // `unasked`: not asked at all, the breaker is open (the upstream itself is down; see upstreamBreaker.ts).
  // `silent`: not asked at all, the upstream answered none of the requests out (see silenceGate.ts).
  | { kind: 'failed'; failure: UpstreamFailureKind; message: string; paused?: true; refused?: true; unasked?: true; silent?: true }
  | { kind: 'rejected'; status: number; body: unknown }

// An upstream 429's or 503's `Retry-After` is waited out for at most this long: "10 years" must
// not leave the relay serving stale values for that long, and one under a second is not worth a pause.
const MAX_RATE_LIMIT_PAUSE_MS = 60_000
const MIN_RATE_LIMIT_PAUSE_MS = 1000
// The breaker's name for the relay's own probe (no context): not a context key (those are hashes).
const PROBE_KEY = '\u0000probe'

// Not a flag key (keys are strings a flag service names; none is empty with a NUL): in `told`, a
// context served stale that is fresh again (see refreshAll in reaskRounds.ts).
const RECOVERED = '\u0000recovered'


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
  const inFlight = new Map<string, Promise<Outcome>>()
  // The contexts a user asked for while a round's request for them was out (see `ask`'s `reask`).
  const joined = new Set<string>()
  // Data-dir saves waiting for their answer's place in the store's order (see `ask`).
  const placings = new Set<Promise<void>>()
  // Until when the upstream asked (429 or 503 + Retry-After) not to be asked with these forwarded
  // credentials, and with which status: a rate limit is usually per key, so one tenant's 429 never
  // pauses another's; an overloaded upstream's 503 pauses each key that hears it, as a 429 does.
  const pausedUntil = new Map<string, { until: number; status: number }>()
  // Since when (the steady clock) each forwarded credentials got nothing but 401/403 (for `clear-after`): a key
  // revoked is counted on its own, whatever the upstream answers other keys meanwhile.
  const unauthorizedSince = new Map<string, number>()
  // Each run of 401/403 in `unauthorizedSince` numbered as it began (a counter, as `dropOrder`): a
  // success ends a run only when its request went out after the run began. A 200 for another
  // context of the key, sent before its first 401 and got after it, is the upstream's word from
  // before: it ended the run, the next 401 began another, and the revoked key's values were served
  // S seconds past that one (for as long as such answers came).
  let unauthorizedRuns = 0
  const unauthorizedRun = new Map<string, number>()
  // Sets `key` in a map with one entry per context or credentials (anyone may send new ones):
  // kept at most `maxContexts` long, the oldest out.
  const remember = <V>(map: Map<string, V>, key: string, value: V) => setBounded(map, key, value, options.maxContexts ?? DEFAULT_MAX_CONTEXTS)
  const maxUpstream = Math.max(1, options.maxUpstreamRequests ?? DEFAULT_MAX_UPSTREAM_REQUESTS)
  const slots = createRequestSlots(maxUpstream)
  // When (the steady clock) each context's answer was last shared: see RESHARE_AFTER_MS.
  const sharedAt = new Map<string, number>()
  const takenListeners = createListeners<undefined>()
  // The order users asked for their contexts (a counter, not a clock): a round asks the users seen
  // most recently first. Its own re-asks do not count: the held entries' order is the order they
  // were last answered in, which a round itself rewrites.
  const askedBy = new Map<string, number>()
  let requests = 0
  // A re-ask round that finds a change tells the streams at once (`onReaskNews`), not when it ends:
  // with many contexts and a slow upstream a round lasts minutes to hours. `answers` numbers every
  // upstream answer this process got (held.answered), so a change found in a context answered since
  // the latest news is news again, however many keys were already told in the sweep (`told`).
  const newsListeners = createListeners<undefined>()
  let answers = 0
  let newsAfter = 0
  // A second change found by a user's request, told when the next round begins (see tellNews).
  let owedNews = false
  // The flag keys told of (see `newsListeners`) since the sweep began, not only in this round: a
  // round cut at its bound forgot them, and the next one's first idle context still holding the
  // old value was news again, a notice (every open tab refetching) each round for the whole sweep.
  // Forgotten when the sweep starts again and when a round ends at an upstream that is down.
  const told = new Set<string>()
  // The contexts whose failure saying the upstream is down ended a round (the latest few): asked
  // last among the users seen most recently. One the upstream fails alone (a rule that crashes
  // on its attributes) whose user keeps retrying was asked first by every round and ended it after
  // four asks, so the rounds reached the other active users only through the sweep. Forgotten
  // once it is answered.
  const cutBy = new Set<string>()
  const roundMs = options.reaskRoundMs ?? DEFAULT_REASK_ROUND_MS
  // An answer in the store this relay cannot read is refused (never served), and said: before, a
  // fleet of two relay versions whose records differ stopped sharing answers without a word. At
  // most once a minute (on the steady clock), with the count since: another version shares every answer.
  let unreadable = 0
  let unreadableWarnedAt: number | undefined
  const unreadableShared = (version: number) => {
    unreadable++
    const at = steady()
    if (unreadableWarnedAt !== undefined && at - unreadableWarnedAt < 60_000) return
    log.warn(`cannot read ${unreadable === 1 ? 'an answer' : `${unreadable} answers`} in the store (the latest at version ${version}): written by another version of the relay, or by hand? Not served; this relay serves what it holds and asks the upstream`)
    unreadableWarnedAt = at
    unreadable = 0
  }
  // --redis: the contexts whose values were dropped for an upstream 401/403 (`clear`,
  // `clear-after`), each with a place in the store's order taken as it was dropped (a failed one:
  // none). Another relay's answer older than that was got before the refusal, and is not taken:
  // before, the next upstream failure for the context (a 500) had this relay look it up in the
  // store, take such an answer and serve the revoked credentials their values again, for as long
  // as the outage lasted. Forgotten when the upstream answers the context here again.
  const droppedAt = new Map<string, SharedTicket>()
  // The ticket being taken, shared by the drops meanwhile: a round drops every context of a
  // revoked SDK key at once (reaskRounds.ts: one ticket, not one per context; each context's
  // marker is still one write, see scripts/measure-drop-markers.ts).
  let dropTicket: SharedTicket | undefined
  // The order tickets were asked for here (a counter): the drop ticket's, and each context's latest
  // answer's. A context whose answer's ticket was asked for after the drop ticket (dropped, answered
  // again, dropped again, all while a slow Redis had not given that ticket) takes a ticket of its
  // own: before, its second drop shared the first one's, older than the answer between, so the store
  // kept that answer over the drop, and this relay took it back and served the revoked user (200).
  let tickets = 0
  let dropTicketOrder = 0
  const answerTicketOrder = new Map<string, number>()
  // Each context whose values an upstream 401/403 dropped (`clear`, `clear-after`), and when (epoch
  // ms), kept in the data dir: a --snapshot older than the drop does not stand in for it, also after
  // a restart, until the upstream answers it again. Before, a relay restarted in an outage served
  // the revoked credentials' user the snapshot's values (CONTRACT §9: the newest of data dir and
  // snapshot, and the drop is newer), as `--flags-url` never did (its data dir records a clear).
  const clearedAt = new Map<string, number>()
  // This relay's own drops in the order they came (a counter, not a clock), the latest per context:
  // an answer to a request that went out before its context's drop is the upstream's word from
  // before the 401/403 (a round drops every held context of a refused key without asking each,
  // reaskRounds.ts, while a user's request for one may be out). Before, its 200, got after the
  // drop, ended it: the revoked user's values were held and served again (200, 'pro', through the
  // outage after), and with --redis the drop still queued for the store was given up and the
  // answer written in its place, for the whole fleet.
  let drops = 0
  const dropOrder = new Map<string, number>()
  const dropped = (key: string) => {
    const at = now()
    remember(clearedAt, key, at)
    remember(dropOrder, key, ++drops)
    if (!shared$) return
    if (!dropTicket || (answerTicketOrder.get(key) ?? 0) > dropTicketOrder) {
      const ticket = shared$.ticket()
      dropTicket = ticket
      dropTicketOrder = ++tickets
      void ticket.finally(() => dropTicket === ticket && (dropTicket = undefined))
    }
    remember(droppedAt, key, dropTicket)
    // The drop goes into the store too, at its place in the store's order (a drop marker in the
    // context's place): before, the store kept the answer from before the drop, and a relay without
    // a data dir (restarted, or new to the fleet) took it at start and served the revoked
    // credentials their values (200) for as long as the upstream was down.
    const marker: DropMarker = { kind: 'dropped', key, at }
    shared$.dropped?.(key, { body: JSON.stringify(marker), fetchedAt: at }, dropTicket)
  }
  // Another relay's drop marker for a context (see `dropped`), at the store's `version`: nothing to
  // serve. What is held here from before it (by the store's order; for an answer read back from
  // the data dir without one, by the times) goes as it went there, unless this relay keeps values
  // through a 401/403 (`keep`); and, as after a drop here, a store answer older than it is not
  // taken, nor a --snapshot older than it served, until the upstream answers the context again.
  function takeDrop(key: string, version: number, marker: DropMarker): boolean {
    if (options.onUnauthorized.mode === 'keep') return true
    const held = cache.peek(key)
    if (held && (held.storeVersion !== undefined ? held.storeVersion > version : held.fetchedAt > marker.at)) return true
    if (held) {
      cache.delete(key)
      save(true)
      droppedForOthers()
    }
    remember(clearedAt, key, marker.at)
    remember(droppedAt, key, Promise.resolve({ ok: true as const, value: version }))
    return true
  }
  // Said as this relay's own drops are (its users now get 503, or an older snapshot no more): at
  // most once a minute on the steady clock, with the count since (a revoked key drops thousands).
  let droppedByOthers = 0
  let droppedByOthersSaidAt: number | undefined
  const droppedForOthers = () => {
    droppedByOthers++
    const at = steady()
    if (droppedByOthersSaidAt !== undefined && at - droppedByOthersSaidAt < 60_000) return
    log.warn(`another relay dropped ${droppedByOthers === 1 ? "a context's values" : `${droppedByOthers} contexts' values`} for an upstream 401/403 (its drop taken from the store): dropped here too (--on-upstream-unauthorized ${options.onUnauthorized.mode})`)
    droppedByOthersSaidAt = at
    droppedByOthers = 0
  }
  // --redis: another relay's answer for a context, taken when it is newer than what is held here,
  // or its drop marker (see `takeDrop`): a marker is read only as one, never as values.
  const shared$ = options.share?.((key, doc) => {
    if (doc.body.startsWith(DROP_MARKER_PREFIX)) {
      const marker = readRecord(dropMarkerSchema, doc.body)
      if (marker && marker.key === key) return takeDrop(key, doc.version, marker)
    }
    const mark = droppedAt.get(key)
    // A drop read back from the data dir (`clearedAt` without a place in the store's order): another
    // relay's answer fetched no later than it was got before the refusal. Before, a relay restarted
    // in an outage took the store's copy at once and served the revoked credentials their values.
    // Only the times tell here (no ticket survives a restart); one fetched after the drop is taken.
    const cleared = mark ? undefined : clearedAt.get(key)
    if (cleared !== undefined && doc.fetchedAt <= cleared) return false
    if (!mark) return takeShared(key, doc)
    // Answered here again meanwhile (the mark is gone): taken or not as any other.
    return mark.then((since) => (!droppedAt.has(key) || (since.ok && doc.version >= since.value) ? takeShared(key, doc) : false))
  }, () => cache.entries().map(([key, held]) => [key, () => {
    const current = cache.peek(key)
    return current && shareable(key, current)
  }, held.source === 'data-dir', held.storeVersion, (version: number) => {
    // The data dir's place for it was one the store cannot have handed out (written against
    // another Redis whose clock ran ahead, or by hand): the store holds it at `version` now.
    const current = cache.peek(key)
    if (current && current.source === 'data-dir' && current.storeVersion === held.storeVersion && current.storeVersion !== undefined && current.storeVersion > version) {
      current.storeVersion = version
      save(true)
    }
  }]))
  function takeShared(key: string, doc: StoredDocument): boolean {
    const saved = readRecord(contextRecordSchema, doc.body)
    if (!saved || saved.key !== key) {
      unreadableShared(doc.version)
      return false
    }
    // Another relay got this answer from the upstream: this one's breaker probes now (see upstreamBreaker.ts).
    if (breaker.open) breakerSaw({ type: 'heard', at: now() })
    const held = cache.get(key)
    const verdict = judgeShared(held, saved, doc.version, now)
    if (verdict.kind !== 'take') return verdict.kind === 'kept'
    const { same } = verdict
    const taken = fromContextRecord(saved, 'upstream')
    taken.storeVersion = doc.version
    taken.taken = true
    if (held?.request) taken.request = held.request
    cache.set(key, taken)
    remember(sharedAt, key, steady())
    save(true)
    // A context never held here is no change (each relay takes every answer the fleet shares, and
    // holds the fleet's contexts from its start on): a crawler of new users on another relay made
    // a notice every 250 ms to every tab here for as long as it crawled. A change of flags already
    // told of in this sweep goes out with the next round, as one found by a user's request here
    // (see tellNews): two devices of one user on two relays, a flag drawn anew at each evaluation,
    // each relay took the other's refetch as news, and the two relays notified each other's tabs
    // in a loop, a notice every few hundred ms on each.
    if (!same && held) {
      const found = changedKeys(held.flags, taken.flags)
      if (found.length === 0 || found.some((flag) => !told.has(flag))) {
        for (const flag of found) told.add(flag)
        takenListeners.emit(undefined)
      } else owedNews = true
    }
    return true
  }
  const shareable = (key: string, held: HeldContext) => ({ body: JSON.stringify(toContextRecord(key, held)), fetchedAt: held.fetchedAt, ...(held.etag === undefined ? {} : { etag: held.etag }) })
  const share = (key: string, held: HeldContext, changed: boolean, version?: SharedTicket) => {
    if (!shared$) return
    // On the steady clock: set back an hour, an unchanged answer was not shared again for the hour.
    const at = steady()
    const last = sharedAt.get(key)
    if (!changed && last !== undefined && at - last < RESHARE_AFTER_MS) return
    remember(sharedAt, key, at)
    shared$.answered(key, shareable(key, held), version)
  }
  // Every context is in one generation: under a stream of changes write at most twice a second,
  // and a large file less often (1 s per MB: see intervalForSize).
  const persistence = options.store && createPersistence({ store: options.store, now, minIntervalMs: (length) => intervalForSize(length, 500), log, onResult: (ok) => options.events?.saved(ok) })
  let health: UpstreamHealth = initialHealth(true)
  // The breaker (see upstreamBreaker.ts): while open, a user's request goes upstream only as the
  // probe (one at a time, when due); the others are answered from what is held, or 503.
  let breaker: BreakerState = CLOSED_BREAKER
  let probing: Promise<Outcome> | undefined
  // The latest outage it saw: why it is open. Not `health.lastError`, which a made-up key's 401 to
  // a probe replaces while the breaker stays open (and a 401 denies the snapshot under `clear`).
  let downError: { kind: UpstreamFailureKind; message: string } | undefined
  // Browser requests answered without asking while it was open (since start).
  let unasked = 0
  // The context (or PROBE_KEY) of the latest answer with values (or a 304): see `alone` in `fail`.
  // `heard` counts those answers, so that a canary knows whether anything was answered meanwhile.
  let answeredKey: string | undefined
  let heard = 0
  // The credentials (hash; '' for none) of the requests that met an outage's failure since the
  // latest answer with values, at most two (enough to tell another key's from these): see `ownOutage`.
  let failedSince: string[] = []
  const answeredBy = (key: string) => {
    answeredKey = key
    heard++
    failedSince = []
  }
  let snapshot: SnapshotLayer | undefined
  let snapshotCore: ReturnType<typeof parseFlagDefinitions> | undefined
  // `--snapshot`: whether it could be used at start (a torn one is reported, not served).
  let snapshotState: SnapshotState | undefined
  let refusesStart = true
  // When (the steady clock) the warning that no upstream request could start was last logged.
  let noSlotLoggedAt = -Infinity
  /** The credentials (hash) the upstream last accepted, and the latest others before them (the steady clock): see failureClass.ts. */
  const accepted: Acceptances = {}
  // The same for answers with values only (a 200 applied, a 304), for `ownOutage`: a 400 is no
  // sign the flag service is up (a gateway answers it while the service behind is down), and any
  // client can provoke one with a made-up key.
  const values: Acceptances = {}
  let closed = false
  // The re-probe while not ready (see `reprobeSoon`): after 1 s, doubling to 30 s.
  const reprobe = createBackoffTimer(() => {
    if (!closed && !ready()) void probe()
  })
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

  const breakerSaw = (event: BreakerEvent) => {
    const before = breaker
    breaker = reduceBreaker(breaker, event)
    if (!before.open && breaker.open) {
      log.warn(`upstream: down for two contexts in a row (${downError?.message ?? 'no answer'}); breaker open: answering what is held (stale) or 503, one probe at a time (the first in ${(Math.max(0, breaker.probeAt! - now()) / 1000).toFixed(1)} s, then doubling to ${BREAKER_MAX_MS / 1000} s)`)
    } else if (before.open && !breaker.open) {
      log.info(`upstream: answered again; breaker closed after ${Math.max(0, Math.round((now() - before.openedAt!) / 1000))} s and ${before.probes} probe(s)`)
    }
  }

  // `blamed`: a success that is a 400 or a 401/403 (see upstreamBreaker.ts).
  const record = (event: HealthEvent, blamed = false) => {
    health = reduceHealth(health, event)
    if (event.type === 'success') breakerSaw({ type: 'answered', blamed, at: event.at })
    if (event.type === 'success') reprobe.reset()
    else reprobeSoon()
    if (event.type !== 'success') {
      options.events?.refused(event.error.kind)
      listeners.emit(event.type === 'refused' ? { type: 'refused', reason: event.error.message } : { type: 'error', error: event.error.message })
    }
  }

  const saveContexts = persistence && createContextSaver(persistence, cache, now, () => [...clearedAt])
  const save = (contentChanged: boolean) => saveContexts?.(contentChanged)

  // Tells the streams of a change found in a held context (`onReaskNews`), whoever asked: a round,
  // or a user's own request. Before, only a round's finding was news: a change first found by a
  // user's request replaced what was held, the rounds after it compared against that and found
  // nothing, and the user's other devices (streams open, asking nothing) never heard of it.
  // A context never held before is no change (a crawler of new users makes no notice). A context
  // served stale that is fresh again is news too, once a sweep (`RECOVERED`): the tabs told `stale`
  // hear nothing else, their values being the same.
  // `reask`: asked by a round (true), by a canary (see `canary`: its second change waits for the
  // next round, as a user's request's does), or for a user (false).
  const tellNews = (held: HeldContext | undefined, outcome: Outcome, reask: boolean | 'canary'): Outcome => {
    if (!held || outcome.kind !== 'fresh') return outcome
    const found = outcome.recovered ? [...outcome.changed, RECOVERED] : outcome.changed
    const first = found.some((flag) => !told.has(flag))
    if (found.length > 0 && (first || (held.answered ?? 0) > newsAfter)) {
      // News: a flag not told of in this sweep, or a context that changed again after it was
      // answered since the latest news (a second change). The same change found again in an idle
      // context is not: the tabs that listen refetched at the first notice, and a notice per
      // context found would have every tab refetch for the whole sweep.
      for (const flag of found) told.add(flag)
      newsAfter = answers
      // A second change found by a user's request goes out with the next round, not at once: the
      // refetches a notice brings are users' requests too, and a flag the upstream draws anew at
      // each evaluation (a nonce, a timestamp) made two devices of one user, their refetches 300 ms
      // apart, each find a change in the other's answer: a notice to every open tab twice a
      // second, for good. Now at most one a round, as a round's own finding always was.
      // (A canary's too: one a second while a crashing user retries, and a nonce flag in the
      // canary's context was a notice to every tab each second.)
      if (!first && reask !== true) owedNews = true
      else newsListeners.emit(undefined)
    }
    return outcome
  }

  // `gated`: a user's request that is not the breaker's probe waits while the upstream is silent.
  const ask = async (key: string, context: EvaluationContext, forwarded: Record<string, string>, reask: boolean | 'canary' = false, gated = false): Promise<Outcome> => {
    // (Checked first so that a request with nothing to wait for takes no extra turn of the event loop.)
    if (gated && silence.silent() && !(await silence.wait(options.timeoutMs, () => breaker.open))) {
      if (closed) return { kind: 'failed', failure: 'network', message: 'abandoned (the server is closing)' }
      return { kind: 'failed', failure: 'timeout', message: `not asked: the upstream has answered none of the requests out for ${options.timeoutMs} ms or more`, silent: true }
    }
    // The silence ended in the breaker opening (the requests out timed out): asked only as its probe.
    if (gated && breaker.open) return { kind: 'failed', failure: downError?.kind ?? 'timeout', message: `the upstream is down${downError ? ` (${downError.message})` : ''}: not asked (breaker open)`, unasked: true }
    if (!(await slots.acquire(options.timeoutMs))) {
      if (closed) return { kind: 'failed', failure: 'network', message: 'abandoned (the server is closing)' }
      // The relay's own queue, not the upstream: its state stays what its answers say.
      const message = `no upstream request could start within ${options.timeoutMs} ms: ${maxUpstream} in flight already (maxUpstreamRequests)`
      options.events?.attempt('no-slot')
      // Once a minute of the steady clock: set back an hour, the warning was silent for the hour.
      const tick = steady()
      if (tick - noSlotLoggedAt >= 60_000) {
        log.warn(`${message}; answering 503 to the contexts with nothing held`)
        noSlotLoggedAt = tick
      }
      return { kind: 'failed', failure: 'timeout', message }
    }
    // A round's look is no use: the context keeps its place among those held, least recently used first.
    const held = reask ? cache.peek(key) : cache.get(key)
    // A round's request for a context evicted while it waited for a turn: not asked (see refreshAll in reaskRounds.ts).
    if (reask && !held && !joined.has(key)) {
      slots.release()
      return { kind: 'fresh', changed: [], evicted: true }
    }
    // --redis: the answer's place in the store's order is taken as the request goes out, not when
    // its answer is shared. Two relays asking across an upstream change: the one that asked first
    // and was answered last (a slow upstream) must not write its older answer over the newer one
    // (before, the whole fleet then served the older one, and kept it through an outage).
    const version = shared$?.ticket()
    if (version) remember(answerTicketOrder, key, ++tickets)
    const dropsBefore = drops
    const runsBefore = unauthorizedRuns
    // Where this answer stands in the store's order, for the data dir (see `take`): the ticket's
    // version once it comes, or, without one (the store down), the newest version seen now.
    const since = shared$?.version(key)
    let placing: Promise<void> | undefined
    const placed = (next: HeldContext) => {
      if (!version) return next
      // A 304's answer is the one it confirms, copied, place and all: without a ticket (cut off
      // from the store) the confirmation kept that answer's version, and after a restart the
      // fleet's copy asked for after that answer, but before the confirmation, beat it by the
      // store's order (the upstream had gone back from it).
      delete next.storeVersion
      delete next.storeSince
      if (since !== undefined) next.storeSince = since
      placing = version.then((ticket) => {
        if (ticket.ok) next.storeVersion = ticket.value
      }, () => {})
      return next
    }
    // Saved once its place is known (the ticket settles within the store's command timeout; a
    // close waits for it, so the last answers go into the final write).
    // Without a data dir there is no save to wait for: before, the wait was added to `placings`
    // all the same, and a close during a Redis that does not answer waited out its command timeout.
    const savePlaced = (contentChanged: boolean) => {
      if (!placing || !persistence) return save(contentChanged)
      const saving = placing.then(() => save(contentChanged))
      placings.add(saving)
      void saving.finally(() => placings.delete(saving))
    }
    let result: UpstreamFetchResult | undefined
    const landed = silence.begin()
    try {
      // Only an ETag for content held in this process's memory; after a restart ask for a full answer.
      result = await upstreamFetch({
        url: endpoint,
        method: 'POST',
        body: JSON.stringify({ context }),
        headers: forwarded,
        etag: held?.source === 'upstream' ? held.etag : undefined,
        // The whole timeout, whatever the wait for a turn was: a request started with 100 ms left
        // would fail at a healthy upstream. The caller waits no longer for it (see evaluate).
        timeoutMs: options.timeoutMs,
        fetch: options.fetch,
        signal: closing.signal,
      })
    } finally {
      slots.release()
      landed(!(result?.kind === 'failed' && result.failure === 'timeout'))
    }
    // A 413/431 for a context held here: the upstream answered this very request (this context, these
    // credentials) before, so the cap refusing it now is the upstream's (a gateway redeployed with a
    // smaller one), not the request's fault. A failure, then: its held values go out stale and the
    // status says `failing`. Read as the request's 400 (below), every held user got INVALID_CONTEXT
    // in place of their values, and the status said `ok`.
    if (held && result.kind === 'failed' && result.failure === 'rejected' && (result.httpStatus === 413 || result.httpStatus === 431)) {
      result = { kind: 'failed', failure: 'http', message: `${result.message} for a context it answered before`, httpStatus: result.httpStatus }
    }
    const at = now()
    // A round's answer, no user having asked meanwhile, refreshes the context in its place: made the
    // most recently used, an idle context the round answered pushed out (maxContexts) a user seen
    // after it, whose requests then found nothing held through an outage (503).
    const keepPlace = !!reask && !joined.has(key)
    options.events?.attempt(result.kind === 'failed' ? result.failure : result.kind)
    // Dropped here while this request was out (see `dropOrder`): its values or 304 are from before
    // the drop. Not held, not shared, and no acceptance of these credentials: answered as after the
    // drop (503 with nothing else held), until a request sent after it is answered.
    if ((dropOrder.get(key) ?? 0) > dropsBefore && result.kind !== 'failed') {
      return { kind: 'failed', failure: 'unauthorized', message: `the upstream refused this context's credentials (401/403) while this request was out: its answer, from before, is not served (--on-upstream-unauthorized ${options.onUnauthorized.mode})`, refused: true }
    }
    const credentials = contextKey({}, forwarded)
    if ((result.kind !== 'failed' || result.failure === 'rejected') && (unauthorizedRun.get(credentials) ?? 0) <= runsBefore) {
      unauthorizedSince.delete(credentials)
      unauthorizedRun.delete(credentials)
    }
    if (result.kind !== 'failed' || result.failure === 'rejected') {
      noteAcceptance(accepted, credentials, steady())
    }
    // A drop ends only with values for the context (a 200 applied, a 304 for what is held): a 400
    // (a bad request, which any client can send) ended it in memory without a save, and the revoked
    // user was served an older --snapshot's values in the outage after (200), or after a restart
    // once another context's save had written the drops without it.
    // With --redis the answer is then shared even when its values are those held before (see
    // `share`): written at its ticket, it replaces the drop in the store if it was asked for after
    // it, and is taken back here by the drop if it was asked for before (the store's 'older').
    // Before, an answer asked for before another relay's drop and got after it, with the values
    // this relay held, was not shared (unchanged, shared recently), so nothing compared it with the
    // drop: this relay alone served the revoked user through the outage after (200, 'pro').
    let endsDrop = false
    const answeredAgain = () => {
      endsDrop = droppedAt.has(key)
      droppedAt.delete(key)
      clearedAt.delete(key)
    }
    if (result.kind === 'not-modified') {
      if (!held) return fail(at, 'invalid', 'a 304 without an answer held for this context', undefined, undefined, key)
      // The 304 confirms the same answer, `metadata.holdfast` included: from a relay upstream that
      // said it was stale, that is its own old fetchedAt, not now.
      // Its size counted again (`bytes` unset): an answer taken from another relay (--redis) was
      // counted without the request now kept beside it, up to 64 KiB a context past the bound.
      // Evicted while a round's request was out, and no user asking for it now: not put back.
      if (reask && !cache.peek(key) && !joined.has(key)) return { kind: 'fresh', changed: [] }
      const confirmed: HeldContext = placed({ ...held, fetchedAt: held.upstreamStale ? held.fetchedAt : at, source: 'upstream', request: { context, forwarded }, bytes: undefined, answered: ++answers })
      delete confirmed.servedStale
      delete confirmed.clockAhead
      delete confirmed.taken
      answeredAgain()
      cache.set(key, confirmed, keepPlace)
      cutBy.delete(key)
      answeredBy(key)
      noteAcceptance(values, credentials, steady())
      record({ type: 'success', at })
      savePlaced(false)
      share(key, confirmed, endsDrop, version)
      return tellNews(held, held.servedStale && !held.upstreamStale ? { kind: 'fresh', changed: [], recovered: true } : { kind: 'fresh', changed: [] }, reask)
    }
    if (result.kind === 'failed') {
      if (result.failure === 'rejected') {
        // The upstream is up and blames the request (400 INVALID_CONTEXT, …): pass it on as is.
        // While the breaker is open (which this does not close) it is no success either: it made
        // the status `ok` and `stale: false`, `lastSuccessAt` now, while every user was answered
        // stale without asking (and `ready` with nothing held, every new user getting 503) until
        // the next probe. (The relay's own probe, with nothing to serve, still makes it ready and
        // `ok`: a load balancer must send the users whose requests can find values and close it.)
        if (breaker.open) health = { ...health, lastAttemptAt: at }
        else record({ type: 'success', at }, true)
        // Too large for the upstream (413 body, 431 headers; a context never answered): answered as the relay answers a body
        // over its own cap, 400 INVALID_CONTEXT, which OFREP clients do not retry by themselves (a 413
        // passed on is "other 4xx", retried with backoff, each retry upstream again).
        if (result.httpStatus === 413 || result.httpStatus === 431) return { kind: 'rejected', status: 400, body: { errorCode: 'INVALID_CONTEXT', errorDetails: `${result.message}: the request is too large for the upstream` } }
        return { kind: 'rejected', status: result.httpStatus ?? 400, body: ofrepError(result.text, result.message) }
      }
      const outcome = fail(at, result.failure, result.message, result.httpStatus, credentials, key)
      // "Come back in N s" (a rate limit, or an overloaded upstream): asking sooner only keeps it down.
      if ((result.httpStatus === 429 || result.httpStatus === 503) && result.retryAfterMs !== undefined && result.retryAfterMs >= MIN_RATE_LIMIT_PAUSE_MS) {
        remember(pausedUntil, credentials, { until: at + Math.min(result.retryAfterMs, MAX_RATE_LIMIT_PAUSE_MS), status: result.httpStatus })
      }
      // Only credentials with values held here are counted (nothing else is there to drop), and each
      // 401 makes them the newest remembered: made-up keys, each refused once, pushed a revoked key
      // out of this bounded map, and its count started again with its next 401, so with enough of
      // them between two of its requests its values were never dropped.
      // On the steady clock: set back an hour, a revoked key's values were served for that hour.
      const tick = steady()
      if (result.failure === 'unauthorized' && held) {
        // Both made the newest remembered at each 401, so they go out of their bounds together.
        const since = unauthorizedSince.get(credentials)
        remember(unauthorizedRun, credentials, (since === undefined ? undefined : unauthorizedRun.get(credentials)) ?? ++unauthorizedRuns)
        remember(unauthorizedSince, credentials, since ?? tick)
      }
      if (result.failure === 'unauthorized' && held && unauthorizedLongEnough(options.onUnauthorized, unauthorizedSince.get(credentials)!, tick)) {
        log.warn(`the upstream answered ${result.httpStatus} for a context: dropping its values (--on-upstream-unauthorized ${options.onUnauthorized.mode})`)
        cache.delete(key)
        dropped(key)
        save(true)
      }
      return outcome
    }
    const read = readUpstreamAnswer(result.text, result.contentType)
    if (!read.ok) return fail(at, read.tooLarge ? 'too-large' : 'invalid', read.message, undefined, undefined, key)
    const { answer } = read
    const previous: FlagMap = held?.flags ?? new Map()
    const merged = mergeResponse(previous, answer.entries, { now: at, skipped: answer.skipped })
    if (merged.rejected || merged.flags.size === 0) return fail(at, 'empty', 'the upstream answered zero flags', undefined, undefined, key)
    // Also for an answer with per-flag errors: it keeps the flags it omits, but its FLAG_NOT_FOUND
    // entries remove theirs, and nine "not found" of ten is a gutted answer, not ten edits.
    if (previous.size > 0) {
      const verdict = checkShrink(previous.keys(), new Set(merged.flags.keys()), options.maxShrinkPercent)
      if (!verdict.ok) return fail(at, verdict.reason, verdict.message, undefined, undefined, key)
    }
    const changed = changedKeys(previous, merged.flags)
    if (reask && !cache.peek(key) && !joined.has(key)) return { kind: 'fresh', changed: [] }
    // A relay upstream that says it is stale vouches only as far as its own fetchedAt: keep that
    // older, true age. A fresh answer is current now, whatever its server's load time.
    // One that is stale but names no readable time vouches for no more than what was held.
    const upstreamAt = answer.upstreamHoldfast?.stale ? answer.upstreamHoldfast.fetchedAt ?? (held?.source === 'upstream' ? held.fetchedAt : undefined) : undefined
    const next: HeldContext = placed({
      flags: merged.flags,
      fetchedAt: upstreamAt !== undefined ? Math.min(at, upstreamAt) : at,
      source: 'upstream',
      request: { context, forwarded },
      answered: ++answers,
    })
    if (answer.upstreamHoldfast?.stale) next.upstreamStale = true
    // Removed since the last clean answer, and not back: passed on while the answer served is partial.
    if (!merged.clean) {
      const removed = new Set(held?.notFound)
      for (const entry of answer.entries) if (entry.errorCode === 'FLAG_NOT_FOUND') removed.delete(entry.key), removed.add(entry.key)
      const notFound = [...removed].filter((flag) => !merged.flags.has(flag)).slice(-MAX_NOT_FOUND)
      if (notFound.length > 0) next.notFound = notFound
    }
    if (result.etag !== undefined) next.etag = result.etag
    if (answer.metadata) next.metadata = answer.metadata
    answeredAgain()
    cache.set(key, next, keepPlace)
    cutBy.delete(key)
    answeredBy(key)
    noteAcceptance(values, credentials, steady())
    record({ type: 'success', at })
    savePlaced(changed.length > 0 || !held)
    share(key, next, changed.length > 0 || !held || endsDrop, version)
    return tellNews(held, held?.servedStale && !next.upstreamStale ? { kind: 'fresh', changed, recovered: true } : { kind: 'fresh', changed }, reask)
  }

  // `key`: the context asked (or PROBE_KEY), for the breaker; none for the relay's own faults.
  const fail = (at: number, kind: UpstreamFailureKind, message: string, httpStatus?: number, credentials?: string, key?: string): Outcome => {
    const previous = health.lastError
    // Measured on the steady clock: set back an hour, an acceptance a second ago is still recent.
    const othersFailed = failedSince.some((failed) => failed !== (credentials ?? ''))
    const { refused, ownLimit, ownOutage } = classifyFailure({ kind, httpStatus, credentials, accepted, values, breakerOpen: breaker.open, othersFailed, tick: steady() })
    const down = key !== undefined && !refused && !ownLimit && opensBreaker(kind, httpStatus)
    if ((down || ownOutage) && !failedSince.includes(credentials ?? '')) failedSince = [...failedSince, credentials ?? ''].slice(-2)
    // One context the upstream fails alone, as the breaker counts it: the upstream answered it (a
    // 5xx, HTML; not silence or a dropped connection, which say nothing of one context), the latest
    // answer with values was another context's, and nothing but this context failed since.
    // Counted (refused, refusedBy, lastError) while the state stays what the upstream's answers to
    // everyone else say: before, a rule that crashes on one user's attributes made the status
    // `failing` (and `stale`) at each of that user's requests, and an alert on it fired for one
    // user. A second context failing (an outage) opens the breaker and makes it `failing` at once;
    // one user alone, whose own context was answered last, is `failing` as before. Taken for one
    // context's own, it is checked with the canary (see canary.ts): an outage met by one user alone
    // is found so.
    const answered = kind === 'http' || kind === 'invalid'
    // The canary's own context failing is not alone: see `asking` in canary.ts.
    const canaryFailed = canary.asking(key)
    const alone = down && answered && key !== PROBE_KEY && !canaryFailed && answeredKey !== undefined && answeredKey !== key && !breaker.open && breaker.failedFor.every((failed) => failed === key)
    // Counted as that context's own only once the canary is answered: see canary.ts.
    if (alone) void canary(key!, at)
    if (down) {
      downError = { kind, message }
      // A context with nothing held never had values here: its 5xx may be its own (see upstreamBreaker.ts).
      breakerSaw({ type: 'down', at, key, jitter: Math.random(), unknown: answered && key !== PROBE_KEY && !cache.get(key) })
    }
    record({ type: refused || alone ? 'refused' : 'failure', at, error: httpStatus === undefined ? { kind, message } : { kind, message, httpStatus } })
    if (previous?.message !== message) log.warn(`upstream: ${message}; serving what is held`)
    return refused ? { kind: 'failed', failure: kind, message, refused: true } : { kind: 'failed', failure: kind, message }
  }

  // Whether a failure counted as one context's own is an outage's: see canary.ts.
  const canary = createCanary({
    closed: () => closed,
    pick: (failedKey) => pickCanary(failedKey, answeredKey, (key) => cache.get(key), askedBy),
    ask: (key, request) => shared(key, request.context, request.forwarded, 'canary'),
    heard: () => heard,
    failed: (key) => !breaker.open && breaker.failedFor.includes(key),
    down: (failedKey) => breakerSaw({ type: 'down', at: now(), key: failedKey, jitter: Math.random() }),
  })

  const shared = (key: string, context: EvaluationContext, forwarded: Record<string, string>, reask: boolean | 'canary' = false): Promise<Outcome> => {
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
    if (!reask && breaker.open) {
      if (probing || !probeDue(breaker, now())) {
        const error = downError
        return Promise.resolve({ kind: 'failed', failure: error?.kind ?? 'http', message: `the upstream is down${error ? ` (${error.message})` : ''}: not asked again before ${new Date(breaker.probeAt!).toISOString()} (breaker open)`, unasked: true })
      }
      breakerSaw({ type: 'probe', at: now(), jitter: Math.random() })
      asProbe = true
    }
    const attempt = ask(key, context, forwarded, reask, !reask && !asProbe)
      .catch((error: unknown): Outcome => fail(now(), 'invalid', `unexpected: ${(error as Error)?.message ?? String(error)}`))
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

  const heldAnswer = (held: HeldContext, stale: boolean) => {
    const answer = answerFromHeld(held, stale)
    // In memory only, on the entry itself: the next upstream answer replaces it (see `recovered`).
    if ((answer.body as { metadata: { holdfast: { stale: boolean } } }).metadata.holdfast.stale) held.servedStale = true
    return answer
  }
  // When the --snapshot's answer for this context was taken, when it has one (definitions: every
  // context; a Bootstrap: its own user, known once they asked) that may be served: none to a context
  // an upstream 401/403 dropped no earlier than that (see `clearedAt`).
  const snapshotTakenFor = (key: string, request: HeldContext['request']): number | undefined => {
    if (!snapshot) return undefined
    const serves = snapshot.kind === 'bootstrap' ? request !== undefined && snapshotServes(snapshot, snapshotCore, request.context, request.forwarded) : snapshotCore?.ok === true
    if (!serves) return undefined
    const takenAt = snapshotFetchedAt(snapshot)
    const cleared = clearedAt.get(key)
    return cleared !== undefined && cleared >= takenAt ? undefined : takenAt
  }
  const snapshotAnswer = (key: string, context: EvaluationContext, forwarded: Record<string, string>) =>
    snapshotTakenFor(key, { context, forwarded }) === undefined ? undefined : answerFromSnapshot(snapshot!, snapshotCore, context, forwarded)
  // CONTRACT §9: at a start the newest valid of data dir and snapshot is served. A held answer that
  // may predate this start, not answered here since (read back from the data dir, or with --redis
  // another relay's taken from the store), loses to a --snapshot made after it (a build deployed
  // over an old volume): before, the older data-dir answer was served for the whole outage, and a
  // relay started in an outage served the newer snapshot until it had read the store, then the
  // store's older answer (a user saw 7, then the 1 of before the build). On a tie, or a saved answer
  // dated ahead of this clock (its time orders nothing), the held answer wins, as the data dir does
  // with --flags-url (urlLayers.ts). `snapshotOver` says when that snapshot was taken, for the answer
  // and for the status (which named the data dir and its older time while every user got the snapshot).
  const snapshotOver = (key: string, held: HeldContext, request = held.request): number | undefined => {
    if ((held.source !== 'data-dir' && !held.taken) || held.clockAhead) return undefined
    const takenAt = snapshotTakenFor(key, request)
    return takenAt !== undefined && takenAt > held.fetchedAt ? takenAt : undefined
  }
  // Not for credentials the upstream refuses: the snapshot stands in for an upstream that is down,
  // not for one that refuses them (see `refusedHere` in `evaluate`).
  const servedAnswer = (key: string, held: HeldContext, stale: boolean, context: EvaluationContext, forwarded: Record<string, string>, refused = false) => {
    if (!refused && snapshotOver(key, held, { context, forwarded }) !== undefined) {
      // The upstream's next answer is news for the tabs told this, as for a stale held answer.
      held.servedStale = true
      return answerFromSnapshot(snapshot!, snapshotCore, context, forwarded)!
    }
    return heldAnswer(held, stale)
  }

  const probe = async () => {
    // Tells the status (and /readyz, when nothing is held) whether the upstream answers at all. It
    // carries no forwarded credentials, so a 400/401/403 still means "up and answering".
    const result = await upstreamFetch({ url: endpoint, method: 'POST', body: JSON.stringify({ context: { targetingKey: 'holdfast-relay-probe' } }), timeoutMs: options.timeoutMs, fetch: options.fetch, signal: closing.signal })
    const at = now()
    const up = result.kind !== 'failed' || result.failure === 'rejected' || result.failure === 'unauthorized'
    if (up && (result.kind !== 'ok' || readUpstreamAnswer(result.text, result.contentType).ok)) {
      if (result.kind !== 'failed') answeredBy(PROBE_KEY)
      record({ type: 'success', at }, result.kind === 'failed')
    }
    else if (result.kind === 'failed') fail(at, result.failure, result.message, result.httpStatus, undefined, PROBE_KEY)
    else fail(at, 'invalid', 'the probe answer is not an OFREP bulk answer', undefined, undefined, PROBE_KEY)
  }

  // A Bootstrap snapshot is one user's values, served to that user alone (see `evaluate`): it does
  // not make the relay ready. Before, /readyz said 200 while every other new user got 503, and a
  // load balancer routing by it sent them all to this relay. Definitions serve every context.
  const ready = () => cache.size() > 0 || (snapshot !== undefined && snapshot.kind !== 'bootstrap') || health.state === 'ok'

  // Nothing to serve and the upstream failing: not ready. Behind a load balancer that routes by
  // /readyz no request comes to find out that the upstream is back, so the relay asks by itself
  // (1 s, doubling to 30 s) until it answers. (Not while it is `unauthorized`: the probe carries
  // no credentials, and a 401 to it would read as "up".)
  function reprobeSoon() {
    if (!closed && !ready() && health.state === 'failing') reprobe.schedule()
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
    const waitMs = before || health.state === 'failing' ? heldAnswerAfterMs : options.timeoutMs
    let timer: ReturnType<typeof setTimeout> | undefined
    const outcome = await Promise.race([attempt, new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)))])
    clearTimeout(timer)
    // Not answered by the upstream: another relay of the fleet may have been, and shared it without
    // this one hearing (a notice Redis refused to publish, or lost). Looked up for the next request.
    // Not for credentials the upstream refuses: what it does to their values is the relay's policy (keep, clear).
    if (outcome === 'late' || (outcome.kind === 'failed' && outcome.failure !== 'unauthorized')) shared$?.missed?.(key)
    if (outcome === 'late' && before) return servedAnswer(key, cache.get(key) ?? before, true, context, forwarded)
    if (outcome === 'late') return snapshotAnswer(key, context, forwarded) ?? notReady(`no answer from the upstream within ${waitMs} ms for this context (still asked: it is kept for the next request)`)
    if (outcome.kind === 'rejected') return { status: outcome.status, body: outcome.body }
    // Answered without an upstream request: counted, so an open breaker or a pause is never silent.
    if (outcome.kind === 'failed' && (outcome.unasked || outcome.paused || outcome.silent)) {
      if (outcome.unasked) unasked++
      options.events?.unasked(outcome.unasked ? 'breaker' : outcome.silent ? 'silent' : 'paused')
    }
    const held = cache.get(key)
    if (held) return servedAnswer(key, held, outcome.kind === 'failed', context, forwarded, outcome.kind === 'failed' && outcome.failure === 'unauthorized')
    // While these credentials are paused (429/503 + Retry-After) nothing is asked: a retry sooner
    // than the pause's end would only meet this 503 again.
    const paused = outcome.kind === 'failed' ? pausedUntil.get(contextKey({}, forwarded)) : undefined
    // The same while the breaker is open: nothing is asked before its next probe.
    const probeLeft = outcome.kind === 'failed' && outcome.unasked ? Math.min(BREAKER_MAX_MS, (breaker.probeAt ?? 0) - now()) : 0
    const pauseLeft = Math.ceil(Math.max(paused === undefined ? 0 : paused.until - now(), probeLeft) / 1000)
    // The snapshot was made with its maker's credentials: it stands in for an upstream that is
    // down, not for one that refuses these credentials while it accepts others (a revoked or
    // made-up key got flag values where it would get 503 without a snapshot), nor once a 401/403
    // is to drop values (`clear`, `clear-after`: 503 until the upstream answers again).
    const refusedHere = outcome.kind === 'failed' && outcome.failure === 'unauthorized' && (outcome.refused === true || options.onUnauthorized.mode !== 'keep')
    if (outcome.kind === 'failed') return (refusedHere ? undefined : snapshotAnswer(key, context, forwarded)) ?? notReady(`no answer held for this context and the upstream failed: ${outcome.message}`, pauseLeft)
    return notReady('no answer held for this context')
  }

  const rounds = createReaskRounds({
    cache,
    askedBy,
    told,
    cutBy,
    inFlight,
    roundMs,
    onUnauthorized: options.onUnauthorized,
    unauthorizedSince,
    now,
    steady,
    closed: () => closed,
    tellOwedNews: () => {
      if (owedNews) {
        owedNews = false
        newsListeners.emit(undefined)
      }
    },
    ask: (key, context, forwarded) => shared(key, context, forwarded, true),
    save,
    dropped,
    probe,
    breakerOpen: () => breaker.open,
    health: () => health,
    record,
  })

  return {
    origin: 'upstream',
    async open() {
      if (options.store) for (const [key, at] of await loadHeldContexts(options.store, cache, now, log, redactUrl(options.url))) remember(clearedAt, key, at)
      const read = await loadProxySnapshot(options.snapshotPath, log, now, forwardHeaders)
      snapshot = read.layer
      snapshotCore = read.core
      snapshotState = read.state
      refusesStart = read.refusesStart
      // --redis: the answers other relays got, read in the background (never delays serving).
      void shared$?.start()
      const first = probe()
      // With something to serve, start at once; with nothing, wait for the probe (boundedly) so that
      // a healthy upstream means ready on return.
      if (!ready()) await waitAtMost(first)
      // A torn --snapshot is only a refusal to start when nothing else has flags either. With --redis
      // the store may hold the fleet's answers, taken per context when asked (it cannot be listed
      // here): refused, a relay restarted during an upstream outage crash-looped beside them.
      if (snapshotState?.usable === false && refusesStart && !shared$ && cache.size() === 0 && health.state !== 'ok') {
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
      return sourceStatusOf(health, ready())
    },
    evaluate: (request) => evaluate(request.context as EvaluationContext, request.headers),
    freshness: () => undefined,
    relayStatus: (): RelayStatus =>
      upstreamStatus({
        ready: ready(),
        cache,
        snapshot: snapshot !== undefined,
        health,
        url: redactUrl(options.url),
        breaker,
        unasked,
        probing: probing !== undefined,
        lastRound: rounds.lastRound(),
        round: rounds.round(),
        dataDir: persistence ? persistence.state() : undefined,
        snapshotState,
        snapshotOver,
        redis: shared$?.status(),
        at: now(),
        ageOf: statusAge,
      }),
    refreshDetails: (refreshOptions) => rounds.refreshWithin(refreshOptions?.answerWithinMs),
    onTaken: (listener) => takenListeners.add(listener),
    onReaskNews: (listener) => newsListeners.add(listener),
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
      reprobe.stop()
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
