// What the relay reports as it happens, for counters (Prometheus counters must be incremented at
// the event, not derived later). Gauges read `Relay.status()` when scraped instead.
import type { UpstreamFailureKind } from './upstreamFetch'

/** Hooks the relay calls; every one optional in spirit (the default does nothing). */
export interface RelayEvents {
  /**
   * An upstream attempt finished: `ok`, `not-modified` or the failure kind; `no-slot`: it could not
   * start within the upstream timeout (proxy mode, `maxUpstreamRequests` in flight).
   */
  attempt(outcome: UpstreamFailureKind | 'ok' | 'not-modified' | 'no-slot'): void
  /** Something from the upstream (or the flags file) was not applied, by kind. */
  refused(kind: UpstreamFailureKind): void
  /** A data-dir write finished. */
  saved(ok: boolean): void
  /**
   * Proxy mode: a user's request answered without an upstream request (held values, stale, or
   * 503): the breaker is open, the upstream asked these credentials to wait (429/503 + Retry-After),
   * or it answered none of the requests already out (`silent`: see silenceGate.ts).
   */
  unasked(reason: 'breaker' | 'paused' | 'silent'): void
}

/** Hooks that do nothing. */
export const noRelayEvents: RelayEvents = { attempt() {}, refused() {}, saved() {}, unasked() {} }
