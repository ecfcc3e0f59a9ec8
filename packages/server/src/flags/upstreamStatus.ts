// Proxy mode's status (GET /holdfast/v1/status, /metrics, /readyz): derived in one place from what
// the source holds and has seen, at the moment it is asked, never kept in step by hand.
import { ageSeconds, type AgeReader } from './ageReader'
import type { ContextCache, HeldContext } from './contextCache'
import { upstreamStatusOf } from './relay'
import type { RelayStatus } from './relayStatus'
import type { SnapshotState } from './snapshotFile'
import { BREAKER_MAX_MS, type BreakerState } from './upstreamBreaker'
import type { UpstreamHealth } from './upstreamHealth'

/** What {@link upstreamStatus} reads: the source's state as it is now. No defaults: every field is given. */
export interface UpstreamStatusParts {
  ready: boolean
  cache: Pick<ContextCache, 'entries' | 'version' | 'size'>
  /** Whether a `--snapshot` is served when nothing is held. */
  snapshot: boolean
  health: UpstreamHealth
  /** The upstream's address, credentials taken out. */
  url: string
  breaker: BreakerState
  /** Requests answered without asking while the breaker was open (since start). */
  unasked: number
  probing: boolean
  lastRound: RelayStatus['reask']
  /** The round of re-asks going on now, if any. */
  round: { at: number; contexts: number; asked: number } | undefined
  dataDir: RelayStatus['dataDir']
  snapshotState: SnapshotState | undefined
  /**
   * When the `--snapshot` answer served in place of a context's held answer was taken (one read back
   * from the data dir, or with --redis taken from the store and not answered here since, that the
   * snapshot was made after: CONTRACT §9's newest layer), or undefined when the held answer is served.
   */
  snapshotOver: (key: string, held: HeldContext) => number | undefined
  redis: RelayStatus['redis']
  /** The relay's clock (epoch ms) when the status is asked. */
  at: number
  /** The source's age reader (ageReader.ts): a clock set back does not make the age 0. */
  ageOf: AgeReader
}

/** What a context is served from, and how old that is. */
type Served = { source: HeldContext['source'] | 'snapshot'; fetchedAt: number; upstreamStale?: boolean }

/** The relay status of a proxy-mode source: the newest answer served (held, or the --snapshot's in its place) names the source and the age. */
export function upstreamStatus(parts: UpstreamStatusParts): RelayStatus {
  const { cache, health, breaker, at } = parts
  // An answer dated ahead of the clock was held before the clock was set back: every answer given
  // since is newer, whatever its date says. So one dated ahead is newest only when no other is held.
  // Before, it stayed "newest" until the clock caught up (up to the step): the status named a time
  // ahead, and the served age grew from it while the upstream answered every request.
  // What each context is served as: a newer --snapshot's answer names the snapshot and its time.
  // Before, the status said `data-dir` and the saved answer's older time (the served-age gauge too)
  // while every user was served the snapshot.
  let newest: Served | undefined
  const newer = (held: Served, than: Served) => (held.fetchedAt > at) === (than.fetchedAt > at) ? held.fetchedAt > than.fetchedAt : than.fetchedAt > at
  for (const [key, held] of cache.entries()) {
    const over = parts.snapshotOver(key, held)
    const served: Served = over === undefined ? held : { source: 'snapshot', fetchedAt: over }
    if (!newest || newer(served, newest)) newest = served
  }
  const status: RelayStatus = {
    ready: parts.ready,
    mode: 'upstream',
    source: newest?.source ?? (parts.snapshot ? 'snapshot' : 'none'),
    version: cache.version(),
    fetchedAt: newest?.fetchedAt ?? null,
    // On the source's age reader, as the served-age gauge: a clock set back an hour in an outage
    // made the answer held look an hour ahead, and this said 0 for the hour.
    ageSeconds: ageSeconds(parts.ageOf, newest?.fetchedAt, at),
    stale: health.state !== 'ok' || (newest !== undefined && (newest.source !== 'upstream' || newest.upstreamStale === true)),
    upstream: upstreamStatusOf(health, parts.url),
    refused: health.refused,
    refusedBy: health.refusedBy,
    contexts: cache.size(),
  }
  status.upstream.breaker = { state: breaker.open ? 'open' : 'closed', probes: breaker.probes, unasked: parts.unasked }
  // A probe set further ahead than the longest wait was set before the clock went back: it is
  // due now (probeDue), and the status says so instead of a time hours ahead.
  const nextProbeAt = breaker.probeAt !== undefined && breaker.probeAt - at > BREAKER_MAX_MS ? at : breaker.probeAt
  if (breaker.open) Object.assign(status.upstream.breaker, { openedAt: breaker.openedAt, nextProbeAt, probing: parts.probing })
  if (parts.lastRound) status.reask = parts.lastRound
  // A round can take long (many contexts, a slow upstream): how far it got, while it runs.
  if (parts.round) status.reaskRunning = { at: parts.round.at, contexts: parts.round.contexts, asked: parts.round.asked }
  if (parts.dataDir) status.dataDir = parts.dataDir
  if (parts.snapshotState) status.snapshot = parts.snapshotState
  if (parts.redis) status.redis = parts.redis
  return status
}
