// Proxy mode's forwarding of one request: a context's bulk request goes to the upstream (within
// the silence gate and the bound on requests in flight, at a place in the store's order with
// --redis), and its answer is merged into what the relay held for the context exactly as the
// browser client merges it (`mergeResponse` from @holdfast/core, CONTRACT §4): a partial or empty
// answer never wipes a value. The answer is held, saved, shared and told of; a failure is counted
// (upstreamMonitor.ts), and a 401/403 is the drops' (upstreamDrops.ts).
import { mergeResponse, type FlagMap } from '@holdfast/core'
import type { EvaluationContext } from '@openfeature/core'
import type { ServerLogger } from '../logger'
import type { SharedContexts } from '../store/sharedContexts'
import { contextKey, MAX_NOT_FOUND, type ContextCache, type HeldContext } from './contextCache'
import { changedKeys, ofrepError } from './proxyAnswer'
import type { ReaskNews } from './reaskNews'
import type { RelaySourceOptions } from './relay'
import type { RequestSlots } from './requestSlots'
import type { SharedAnswers } from './sharedAnswers'
import type { SilenceGate } from './silenceGate'
import { checkShrink } from './shrinkGuard'
import { readUpstreamAnswer } from './upstreamAnswer'
import type { UpstreamDrops } from './upstreamDrops'
import { upstreamFetch, type UpstreamFailureKind, type UpstreamFetchResult } from './upstreamFetch'
import type { UpstreamMonitor } from './upstreamMonitor'

/** What asking the upstream for one context came to. */
export type UpstreamOutcome =
  // `recovered`: the answer before was served stale (see HeldContext.servedStale). `evicted`: a
  // round's context evicted while its request waited for a turn: not asked (see refreshAll in reaskRounds.ts).
  | { kind: 'fresh'; changed: string[]; recovered?: true; evicted?: true }
  // `paused`: not asked at all, the upstream asked these credentials to wait (429/503 + Retry-After).
  // `refused`: the upstream answered, and this context's answer (or these credentials) was refused:
  // counted without the upstream being down (see `fail` in upstreamMonitor.ts), and a re-ask round goes on.
  // `unasked`: not asked at all, the breaker is open (the upstream itself is down; see upstreamBreaker.ts).
  // `silent`: not asked at all, the upstream answered none of the requests out (see silenceGate.ts).
  | { kind: 'failed'; failure: UpstreamFailureKind; message: string; paused?: true; refused?: true; unasked?: true; silent?: true }
  | { kind: 'rejected'; status: number; body: unknown }

/**
 * An upstream 429's or 503's `Retry-After` is waited out for at most this long (60,000 ms): "10
 * years" must not leave the relay serving stale values for that long.
 */
export const MAX_RATE_LIMIT_PAUSE_MS = 60_000
// And one under a second is not worth a pause.
const MIN_RATE_LIMIT_PAUSE_MS = 1000

/**
 * Asks the upstream for `key` (`context` with the `forwarded` headers). `reask`: a round's re-ask
 * (true), a canary's, or a user's request (false, the default). `gated`: a user's request that is
 * not the breaker's probe waits while the upstream is silent (default false).
 */
export type UpstreamAsk = (key: string, context: EvaluationContext, forwarded: Record<string, string>, reask?: boolean | 'canary', gated?: boolean) => Promise<UpstreamOutcome>

/** What {@link createUpstreamAsk} needs from the proxy source. */
export interface UpstreamAskOptions extends Pick<RelaySourceOptions, 'timeoutMs' | 'fetch' | 'events' | 'maxShrinkPercent' | 'onUnauthorized'> {
  /** The upstream's OFREP bulk endpoint. */
  endpoint: string
  /** Abandons the requests in flight when the source closes. */
  signal: AbortSignal
  closed: () => boolean
  /** The held contexts. */
  cache: ContextCache
  /** The contexts a user asked for while a round's request for them was out. */
  joined: ReadonlySet<string>
  /** The contexts whose failure ended a round: forgotten once answered. */
  cutBy: Set<string>
  /** The upstream requests in flight at once (at most `maxUpstream`). */
  slots: RequestSlots
  maxUpstream: number
  /** Users' requests wait here while the upstream is silent. */
  silence: SilenceGate
  /** --redis: the shared store's driver (a place in its order for each answer). Default: none. */
  store?: SharedContexts
  drops: UpstreamDrops
  news: ReaskNews
  sharing: Pick<SharedAnswers, 'share'>
  monitor: UpstreamMonitor
  /** The upstream asked (429/503 + Retry-After) not to be asked with `credentials` until `until` (epoch ms). */
  pause: (credentials: string, pause: { until: number; status: number }) => void
  /** Saves the held contexts (to the data dir) after a change of content. */
  save: (contentChanged: boolean) => void
  /** Whether there is a data dir (a save then waits for its answer's place in the store's order). */
  persisted: boolean
  /** The saves waiting for their answer's place: a close waits for them. */
  placings: Set<Promise<void>>
  /** The relay's clock (epoch ms) and its steady clock (see steadyClock.ts). */
  now: () => number
  steady: () => number
  log: ServerLogger
}

/** Creates the forwarding of one request of a proxy source. */
export function createUpstreamAsk(options: UpstreamAskOptions): UpstreamAsk {
  const { cache, joined, cutBy, slots, maxUpstream, silence, store, drops, news, sharing, monitor, pause, save, persisted, placings, closed, now, steady, log } = options
  // When (the steady clock) the warning that no upstream request could start was last logged.
  let noSlotLoggedAt = -Infinity
  return async (key, context, forwarded, reask = false, gated = false) => {
    // (Checked first so that a request with nothing to wait for takes no extra turn of the event loop.)
    if (gated && silence.silent() && !(await silence.wait(options.timeoutMs, () => monitor.breaker().open))) {
      if (closed()) return { kind: 'failed', failure: 'network', message: 'abandoned (the server is closing)' }
      return { kind: 'failed', failure: 'timeout', message: `not asked: the upstream has answered none of the requests out for ${options.timeoutMs} ms or more`, silent: true }
    }
    // The silence ended in the breaker opening (the requests out timed out): asked only as its probe.
    const downError = monitor.downError()
    if (gated && monitor.breaker().open) return { kind: 'failed', failure: downError?.kind ?? 'timeout', message: `the upstream is down${downError ? ` (${downError.message})` : ''}: not asked (breaker open)`, unasked: true }
    if (!(await slots.acquire(options.timeoutMs))) {
      if (closed()) return { kind: 'failed', failure: 'network', message: 'abandoned (the server is closing)' }
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
    const version = store?.ticket()
    const mark = drops.sent(key, version !== undefined)
    // Where this answer stands in the store's order, for the data dir (see judgeShared in sharedTake.ts): the ticket's
    // version once it comes, or, without one (the store down), the newest version seen now.
    const since = store?.version(key)
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
      if (!placing || !persisted) return save(contentChanged)
      const saving = placing.then(() => save(contentChanged))
      placings.add(saving)
      void saving.finally(() => placings.delete(saving))
    }
    let result: UpstreamFetchResult | undefined
    const landed = silence.begin()
    try {
      // Only an ETag for content held in this process's memory; after a restart ask for a full answer.
      result = await upstreamFetch({
        url: options.endpoint,
        method: 'POST',
        body: JSON.stringify({ context }),
        headers: forwarded,
        etag: held?.source === 'upstream' ? held.etag : undefined,
        // The whole timeout, whatever the wait for a turn was: a request started with 100 ms left
        // would fail at a healthy upstream. The caller waits no longer for it (see proxyEvaluate.ts).
        timeoutMs: options.timeoutMs,
        fetch: options.fetch,
        signal: options.signal,
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
    // Dropped here while this request was out (see `dropOrder` in upstreamDrops.ts): its values or
    // 304 are from before the drop. Not held, not shared, and no acceptance of these credentials:
    // answered as after the drop (503 with nothing else held), until a request sent after it is answered.
    if (drops.droppedSince(key, mark) && result.kind !== 'failed') {
      return { kind: 'failed', failure: 'unauthorized', message: `the upstream refused this context's credentials (401/403) while this request was out: its answer, from before, is not served (--on-upstream-unauthorized ${options.onUnauthorized.mode})`, refused: true }
    }
    const credentials = contextKey({}, forwarded)
    if (result.kind !== 'failed' || result.failure === 'rejected') {
      drops.accepted(credentials, mark)
      monitor.accepted(credentials)
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
      endsDrop = drops.answeredAgain(key)
    }
    if (result.kind === 'not-modified') {
      if (!held) return monitor.fail(at, 'invalid', 'a 304 without an answer held for this context', undefined, undefined, key)
      // The 304 confirms the same answer, `metadata.holdfast` included: from a relay upstream that
      // said it was stale, that is its own old fetchedAt, not now.
      // Its size counted again (`bytes` unset): an answer taken from another relay (--redis) was
      // counted without the request now kept beside it, up to 64 KiB a context past the bound.
      // Evicted while a round's request was out, and no user asking for it now: not put back.
      if (reask && !cache.peek(key) && !joined.has(key)) return { kind: 'fresh', changed: [] }
      const confirmed: HeldContext = placed({ ...held, fetchedAt: held.upstreamStale ? held.fetchedAt : at, source: 'upstream', request: { context, forwarded }, bytes: undefined, answered: news.answered() })
      delete confirmed.servedStale
      delete confirmed.clockAhead
      delete confirmed.taken
      answeredAgain()
      cache.set(key, confirmed, keepPlace)
      cutBy.delete(key)
      monitor.answered(key, credentials)
      monitor.record({ type: 'success', at })
      savePlaced(false)
      sharing.share(key, confirmed, endsDrop, version)
      return news.tell(held, held.servedStale && !held.upstreamStale ? { kind: 'fresh', changed: [], recovered: true } : { kind: 'fresh', changed: [] }, reask)
    }
    if (result.kind === 'failed') {
      if (result.failure === 'rejected') {
        // The upstream is up and blames the request (400 INVALID_CONTEXT, …): pass it on as is
        // (see `blamed` in upstreamMonitor.ts).
        monitor.blamed(at)
        // Too large for the upstream (413 body, 431 headers; a context never answered): answered as the relay answers a body
        // over its own cap, 400 INVALID_CONTEXT, which OFREP clients do not retry by themselves (a 413
        // passed on is "other 4xx", retried with backoff, each retry upstream again).
        if (result.httpStatus === 413 || result.httpStatus === 431) return { kind: 'rejected', status: 400, body: { errorCode: 'INVALID_CONTEXT', errorDetails: `${result.message}: the request is too large for the upstream` } }
        return { kind: 'rejected', status: result.httpStatus ?? 400, body: ofrepError(result.text, result.message) }
      }
      const outcome = monitor.fail(at, result.failure, result.message, result.httpStatus, credentials, key)
      // "Come back in N s" (a rate limit, or an overloaded upstream): asking sooner only keeps it down.
      if ((result.httpStatus === 429 || result.httpStatus === 503) && result.retryAfterMs !== undefined && result.retryAfterMs >= MIN_RATE_LIMIT_PAUSE_MS) {
        pause(credentials, { until: at + Math.min(result.retryAfterMs, MAX_RATE_LIMIT_PAUSE_MS), status: result.httpStatus })
      }
      // Counted, and its values dropped once the policy says so (see upstreamDrops.ts). With --redis,
      // at a place in the store's order taken as the refusal came back, not as the request went out:
      // another relay's request sent meanwhile may have been heard by the upstream first, before the
      // key was revoked, and placed after this one's its 200 stood over the drop, and every relay
      // kept the revoked user's values (200 in an outage) for good.
      if (result.failure === 'unauthorized' && held) drops.refused(key, credentials, result.httpStatus, version && store?.ticket())
      return outcome
    }
    const read = readUpstreamAnswer(result.text, result.contentType)
    if (!read.ok) return monitor.fail(at, read.tooLarge ? 'too-large' : 'invalid', read.message, undefined, undefined, key)
    const { answer } = read
    const previous: FlagMap = held?.flags ?? new Map()
    const merged = mergeResponse(previous, answer.entries, { now: at, skipped: answer.skipped })
    if (merged.rejected || merged.flags.size === 0) return monitor.fail(at, 'empty', 'the upstream answered zero flags', undefined, undefined, key)
    // Also for an answer with per-flag errors: it keeps the flags it omits, but its FLAG_NOT_FOUND
    // entries remove theirs, and nine "not found" of ten is a gutted answer, not ten edits.
    if (previous.size > 0) {
      const verdict = checkShrink(previous.keys(), new Set(merged.flags.keys()), options.maxShrinkPercent)
      if (!verdict.ok) return monitor.fail(at, verdict.reason, verdict.message, undefined, undefined, key)
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
      answered: news.answered(),
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
    monitor.answered(key, credentials)
    monitor.record({ type: 'success', at })
    savePlaced(changed.length > 0 || !held)
    sharing.share(key, next, changed.length > 0 || !held || endsDrop, version)
    return news.tell(held, held?.servedStale && !next.upstreamStale ? { kind: 'fresh', changed, recovered: true } : { kind: 'fresh', changed }, reask)
  }
}
