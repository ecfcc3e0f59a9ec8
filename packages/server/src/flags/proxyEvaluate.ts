// Proxy mode's answer to one bulk request (RelaySource.evaluate): the context's upstream request
// (through upstreamGate.ts), waited for no longer than a held answer may wait; then the upstream's
// answer, what is held (stale), the --snapshot, or 503 with when to come back.
import type { EvaluationContext } from '@openfeature/core'
import { contextKey, type ContextCache } from './contextCache'
import type { ForwardedAnswer } from './flagSource'
import { notReady, pickHeaders } from './proxyAnswer'
import type { RelaySourceOptions } from './relay'
import type { SnapshotStandIn } from './snapshotStandIn'
import { BREAKER_MAX_MS } from './upstreamBreaker'
import type { UpstreamGate } from './upstreamGate'
import type { UpstreamMonitor } from './upstreamMonitor'

/** What {@link createProxyEvaluate} needs from the proxy source. */
export interface ProxyEvaluateOptions extends Pick<RelaySourceOptions, 'timeoutMs' | 'events' | 'onUnauthorized'> {
  /** The request headers forwarded upstream and made part of the cache key (lower case). */
  forwardHeaders: readonly string[]
  /** How long a request whose context has a held answer (or while the upstream fails) waits for the upstream (ms). */
  heldAnswerAfterMs: number
  /** The held contexts. */
  cache: ContextCache
  /** Told of each context a user asked for (the order the re-ask rounds follow). */
  asked: (key: string) => void
  gate: Pick<UpstreamGate, 'ask'>
  monitor: Pick<UpstreamMonitor, 'health' | 'breaker'>
  standIn: Pick<SnapshotStandIn, 'answer' | 'served'>
  /** Until when (epoch ms) the upstream asked each credentials (hash) to wait. */
  pausedUntil: ReadonlyMap<string, { until: number }>
  /** --redis: the store is asked for a newer answer than this relay's (see SharedContexts.missed). Default: none. */
  missed?: (key: string) => void
  /** The relay's clock (epoch ms). */
  now: () => number
}

/** The answering of one proxy source's requests. */
export interface ProxyEvaluate {
  /** Answers a bulk request for `context` with these request `headers`. */
  evaluate(context: EvaluationContext, headers: Record<string, string | string[] | undefined>): Promise<ForwardedAnswer>
  /** Browser requests answered without asking while the breaker was open (since start). */
  unasked(): number
}

/** Creates the answering of requests. */
export function createProxyEvaluate(options: ProxyEvaluateOptions): ProxyEvaluate {
  const { forwardHeaders, heldAnswerAfterMs, cache, gate, monitor, standIn, pausedUntil, now } = options
  // Browser requests answered without asking while it was open (since start).
  let unasked = 0
  const evaluate = async (context: EvaluationContext, headers: Record<string, string | string[] | undefined>): Promise<ForwardedAnswer> => {
    const forwarded = pickHeaders(headers, forwardHeaders)
    const key = contextKey(context, forwarded)
    options.asked(key)
    // A context read back from the data dir (only its hash is saved) can be asked again by the
    // rounds once its user asks, whatever the upstream answers now: a tab whose refetch after a
    // restart met an upstream still down was not re-asked when it came back (nor by a refresh),
    // and kept the old values, stale, until it asked again by itself (its backoff: up to a minute).
    const known = cache.get(key)
    if (known && !known.request) cache.set(key, { ...known, request: { context, forwarded }, bytes: undefined })
    const attempt = gate.ask(key, context, forwarded)
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
    if (outcome === 'late' || (outcome.kind === 'failed' && outcome.failure !== 'unauthorized')) options.missed?.(key)
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
  return { evaluate, unasked: () => unasked }
}
