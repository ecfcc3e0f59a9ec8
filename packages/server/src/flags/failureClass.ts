// Proxy mode: what one failed upstream request says of the upstream (down, or only that this
// context's answer or these credentials were refused), as `fail` in upstreamMonitor.ts counts it.
import type { UpstreamFailureKind } from './upstreamFetch'

/** Failures that say the upstream is down rather than that one context's answer is refused. */
export const UPSTREAM_DOWN: ReadonlySet<UpstreamFailureKind> = new Set(['network', 'timeout', 'http', 'invalid'])

/**
 * What opens the breaker: the same, less the `http` failures a live server answers for a request
 * (a 404, a redirect not followed): only 408, 429 and 5xx say it is down or overloaded.
 */
export const opensBreaker = (kind: UpstreamFailureKind, httpStatus: number | undefined) =>
  kind === 'http' ? httpStatus !== undefined && (httpStatus >= 500 || httpStatus === 408 || httpStatus === 429) : UPSTREAM_DOWN.has(kind)

/**
 * Answers the upstream gave for one context and the guard refused (emptied, shrunk, or past the
 * size or nesting bounds: what one user's targeting made, not a captive portal's page): the
 * upstream itself answers, so they are counted (refused, refusedBy) without making its state
 * `failing` or ending a re-ask round.
 */
export const REFUSED_ANSWER: ReadonlySet<UpstreamFailureKind> = new Set(['empty', 'shrink', 'too-large'])

/** How long other credentials accepted make a 401/403 (or a 429) one key's own: 60 s. */
const ONES_OWN_UNAUTHORIZED_MS = 60_000

/** Credentials (hash) the upstream accepted, and when, on the steady clock (see steadyClock.ts). */
export interface Acceptance {
  credentials: string
  at: number
}

/** The latest acceptance, and the latest of other credentials before it (see {@link noteAcceptance}). */
export interface Acceptances {
  last?: Acceptance
  before?: Acceptance
}

/** Notes that the upstream accepted `credentials` at `at` (the steady clock). */
export function noteAcceptance(seen: Acceptances, credentials: string, at: number): void {
  if (seen.last && seen.last.credentials !== credentials) seen.before = seen.last
  seen.last = { credentials, at }
}

/** How long ago (on `tick`) the upstream last accepted credentials other than these; -1 when never. */
function sinceOther(seen: Acceptances, credentials: string | undefined, tick: number): number {
  const other = seen.last?.credentials !== credentials ? seen.last : seen.before
  return other === undefined ? -1 : tick - other.at
}

/** A failed request as {@link classifyFailure} reads it. */
export interface FailedRequest {
  kind: UpstreamFailureKind
  httpStatus?: number | undefined
  /** The forwarded credentials (hash); none for the relay's own faults. */
  credentials?: string | undefined
  /** The credentials the upstream accepted last, and the latest others before them. */
  accepted: Acceptances
  breakerOpen: boolean
  /** The same for answers with values only (a 200 applied, a 304): see `ownOutage`. */
  values?: Acceptances
  /** Whether a request with other credentials than these met an outage's failure since the latest answer with values. */
  othersFailed?: boolean
  /** Now, on the steady clock. */
  tick: number
}

/** How long other credentials accepted make a 5xx one key's own: 5 s (the breaker's `UNKNOWN_ALONE_MS`). */
const ONES_OWN_5XX_MS = 5_000

/**
 * `refused`: the upstream answered, and refused this context's answer or these credentials (counted,
 * the upstream not down). `ownLimit`: a 429 that is these credentials' own rate limit. `ownOutage`:
 * a 5xx that is these credentials' own (their project broken at the vendor), also `refused`.
 */
export function classifyFailure(request: FailedRequest): { refused: boolean; ownLimit: boolean; ownOutage: boolean } {
  const { kind, httpStatus, credentials, accepted, tick } = request
  const lastAccepted = accepted.last
  // A 401/403 for one user's credentials while the upstream accepted other credentials within
  // the last minute: that user's token (expired, revoked), counted in `refused`; the upstream
  // itself answers, and the status says so instead of flipping to `unauthorized` with every
  // request of that user. A refusal of the credentials last accepted, or when none were for a
  // minute (a revoked relay key: everyone's fail), is `unauthorized`.
  // Measured on the steady clock: set back an hour, an acceptance a second ago is still recent.
  const since = lastAccepted === undefined ? -1 : tick - lastAccepted.at
  // While the breaker is open nobody is accepted because the upstream is down, not because the
  // relay's key is revoked: another key's 401/403 then is that key's own too. Before, a made-up
  // key sent as the probe a minute into a 5xx outage made the status `unauthorized` (anyone could
  // flip the operator's view of an outage); the credentials last accepted refused still are.
  const othersAccepted = credentials !== undefined && lastAccepted !== undefined && lastAccepted.credentials !== credentials && ((since >= 0 && since < ONES_OWN_UNAUTHORIZED_MS) || request.breakerOpen)
  const onesOwn = kind === 'unauthorized' && othersAccepted
  const refused = REFUSED_ANSWER.has(kind) || onesOwn
  // A 401/403 says the upstream is up, but blames the request (see upstreamBreaker.ts). An answer
  // that gives nothing to serve says neither up nor down: a 404 or a redirect not followed (what
  // an ingress answers while the upstream behind it is gone), or an answer refused here (zero
  // flags, shrunk, too large: what a flag service whose store is down may answer every user). As
  // a probe's answer either closed an open breaker, and every request went upstream again, each
  // for one more such answer.
  // A 429 for credentials while the upstream accepted others within the last minute is that
  // key's own rate limit (a tenant over its quota; its pause, with a Retry-After, is for it alone):
  // neither up nor down either. Before, two of its users in a row opened the breaker for every
  // key: the other tenants' new users got 503, and their held users stale values, from an
  // upstream that was serving them.
  // Whoever was accepted last: a busy tenant's own request was, just before its burst went over
  // its quota, and two of its 429s opened the breaker for every key all the same.
  const sinceAccepted = sinceOther(accepted, credentials, tick)
  const ownLimit = httpStatus === 429 && credentials !== undefined && sinceAccepted >= 0 && sinceAccepted < ONES_OWN_UNAUTHORIZED_MS
  // A 5xx for these credentials while the upstream answered others within the last 5 s, and no
  // request with other credentials has failed since the latest answer: these credentials' own (a
  // tenant whose project is broken at the vendor, an inner relay with nothing for that key), counted
  // in `refused` while the upstream answers everyone else. Before, two of its users in a row opened
  // the breaker for every key: the other tenants' new users got 503 and their held users stale
  // values, from an upstream that was serving them. An outage fails other keys too: the first
  // failure of a second key counts as down, and so does every one once nobody was answered for 5 s.
  // (Not for a relay with one key, where no other credentials are ever accepted: unchanged.)
  // "Answered" here means values (a 200 applied, a 304): a 400 a client provokes with a made-up key
  // (a gateway answers it while the service behind is down) kept every user's 500 "own" through an outage.
  const sinceValues = request.values ? sinceOther(request.values, credentials, tick) : -1
  const ownOutage =
    kind === 'http' && httpStatus !== undefined && httpStatus >= 500 && credentials !== undefined && !request.breakerOpen && !request.othersFailed && sinceValues >= 0 && sinceValues < ONES_OWN_5XX_MS
  return { refused: refused || ownOutage, ownLimit, ownOutage }
}
