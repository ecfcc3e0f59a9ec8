// Proxy mode's gate in front of the upstream: concurrent requests for one context share one
// upstream call; credentials the upstream asked to wait (429/503 + Retry-After) are not asked
// before the pause ends; while the breaker is open a user's request goes upstream only as the probe.
import type { EvaluationContext } from '@openfeature/core'
import { contextKey } from './contextCache'
import { MAX_RATE_LIMIT_PAUSE_MS, type UpstreamAsk, type UpstreamOutcome } from './upstreamAsk'
import { probeDue } from './upstreamBreaker'
import type { UpstreamMonitor } from './upstreamMonitor'

/** What {@link createUpstreamGate} needs from the proxy source. */
export interface UpstreamGateOptions {
  /** Forwards one request (see upstreamAsk.ts). */
  ask: UpstreamAsk
  monitor: Pick<UpstreamMonitor, 'breaker' | 'downError' | 'saw' | 'fail'>
  /** The upstream request out for each context: joined, not sent again. */
  inFlight: Map<string, Promise<UpstreamOutcome>>
  /** The contexts a user asked for while a round's request for them was out. */
  joined: Set<string>
  /** Until when (epoch ms) the upstream asked each credentials (hash) to wait, and with which status. */
  pausedUntil: Map<string, { until: number; status: number }>
  /** The relay's clock (epoch ms). */
  now: () => number
}

/** The gate of one proxy source. */
export interface UpstreamGate {
  /** Asks for `key` through the gate. `reask`: a round's re-ask (true), a canary's, or a user's request (false, the default). */
  ask(key: string, context: EvaluationContext, forwarded: Record<string, string>, reask?: boolean | 'canary'): Promise<UpstreamOutcome>
  /** Whether the breaker's probe is out. */
  probing(): boolean
}

/** Creates the gate. */
export function createUpstreamGate(options: UpstreamGateOptions): UpstreamGate {
  const { monitor, inFlight, joined, pausedUntil, now } = options
  let probing: Promise<UpstreamOutcome> | undefined
  const ask = (key: string, context: EvaluationContext, forwarded: Record<string, string>, reask: boolean | 'canary' = false): Promise<UpstreamOutcome> => {
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
    const attempt = options.ask(key, context, forwarded, reask, !reask && !asProbe)
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
  return { ask, probing: () => probing !== undefined }
}
