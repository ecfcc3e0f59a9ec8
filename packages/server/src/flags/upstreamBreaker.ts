// The breaker on the upstream's health in proxy mode, as a pure function of what happened (a
// reducer); upstreamMonitor.ts drives it. Without it, every browser request went upstream while the
// upstream answered 500: a fleet of browsers behind one relay hammered a flag service that was down
// or recovering, one request for one, which is what an operator puts a relay in front to absorb.

/** The first wait between two probes of an upstream that is down: 1,000 ms, doubling. */
export const BREAKER_MIN_MS = 1000
/**
 * The longest wait between two probes: 5,000 ms (jitter only shortens it). Short on purpose: the
 * re-ask rounds that would also find the upstream back run only while a stream is open, so this is
 * how long a relay with no browser streaming can keep serving stale values after the upstream has
 * healed; one probe per 5 s is still nothing to the upstream beside one request per browser request.
 */
export const BREAKER_MAX_MS = 5_000

/** The breaker: closed (every request may go upstream) or open (one probe at a time, on a backoff). */
export interface BreakerState {
  open: boolean
  /**
   * The distinct contexts (at most 2) whose upstream request failed as an outage fails since the
   * latest answer. Two open it: one context failing alone (a rule that crashes on its attributes)
   * while the others are answered never does, each answer starting the count again.
   */
  failedFor: readonly string[]
  /** Epoch ms when it opened. */
  openedAt?: number
  /** Epoch ms of the latest probe (none yet: `openedAt`). */
  probedAt?: number
  /** While open: the next probe goes at this time (epoch ms) at the earliest. */
  probeAt?: number
  /** The wait (before jitter) after the next probe. */
  delayMs: number
  /** Probes sent since it opened. */
  probes: number
  /** Epoch ms of the latest answer with values (or a 304), when one said when: see `unknown`. */
  answeredAt?: number
}

/**
 * How long after an answer with values the upstream's 5xx for a context never answered here
 * (`unknown`) counts as that context's own: 5,000 ms. See {@link reduceBreaker}.
 */
export const UNKNOWN_ALONE_MS = BREAKER_MAX_MS

/**
 * What happened upstream. `answered`: the upstream answered as a live server does (values, a 304;
 * `blamed`: a 400 or a 401/403, which blame the request, and change nothing; not a 404 nor an
 * answer refused here, which say neither up nor down). `down`: a request for `key` met an outage (no answer,
 * a timeout, 5xx, 408/429, HTML). `probe`: a probe went out while open. `heard`: another relay of
 * a `--redis` fleet shared an answer it got from the upstream. `jitter` is in [0, 1).
 */
export type BreakerEvent =
  | { type: 'answered'; blamed?: boolean; at?: number }
  | { type: 'down'; at: number; key: string; jitter: number; unknown?: boolean }
  | { type: 'probe'; at: number; jitter: number }
  | { type: 'heard'; at: number }

/** The breaker at start, and after any answer. */
export const CLOSED_BREAKER: BreakerState = { open: false, failedFor: [], delayMs: BREAKER_MIN_MS, probes: 0 }

// 80 % to 120 % of the step, never past the cap: relays (and a fleet of them) that opened together
// do not probe together.
const jittered = (delayMs: number, jitter: number) => Math.min(BREAKER_MAX_MS, Math.round(delayMs * (0.8 + 0.4 * jitter)))

/** The next breaker after `event`. */
export function reduceBreaker(state: BreakerState, event: BreakerEvent): BreakerState {
  // An answer that blames the request neither closes an open breaker nor starts the count again:
  // an API gateway answers those while the flag service behind it is down, and any client can send
  // one (a made-up key, a context missing an attribute). Each closed it before, and the users'
  // requests after went upstream until two failed, the probes never backing off past 1 s; and one
  // client sending one between every two users' requests kept it from ever opening (each of them
  // went upstream through the whole outage).
  if (event.type === 'answered' && event.blamed) return state
  if (event.type === 'answered') {
    const answeredAt = event.at ?? state.answeredAt
    if (!state.open && state.failedFor.length === 0 && answeredAt === state.answeredAt) return state
    return answeredAt === undefined ? CLOSED_BREAKER : { ...CLOSED_BREAKER, answeredAt }
  }
  if (event.type === 'probe') {
    if (!state.open) return state
    return { ...state, probedAt: event.at, probeAt: event.at + jittered(state.delayMs, event.jitter), delayMs: Math.min(state.delayMs * 2, BREAKER_MAX_MS), probes: state.probes + 1 }
  }
  if (event.type === 'heard') {
    // Another relay was answered: the next probe is due now, not up to BREAKER_MAX_MS on (its users were
    // served the very answer the fleet shared marked stale until then). Not sooner than the first
    // wait after the latest probe: a relay cut off alone from the upstream probes at most once a
    // second, not at every answer the fleet shares.
    if (!state.open) return state
    const probeAt = Math.max(event.at, (state.probedAt ?? state.openedAt ?? event.at) + BREAKER_MIN_MS)
    return probeAt < (state.probeAt ?? Infinity) ? { ...state, probeAt } : state
  }
  if (state.open) return state
  // `unknown`: the upstream answered 5xx (or HTML) for a context it never gave values here. Any
  // client can make up contexts a rule crashes on: two of them, sent together between the users'
  // requests, opened it while the upstream answered everyone else (new users then got 503, held
  // ones stale values). Within 5 s of an answer with values such a failure is that context's own
  // unless a context that had values failed too (an outage fails those first). With nobody
  // answered for 5 s it counts (a cold start in a 500 spell still opens it); silence always does.
  // (A clock set back since the answer: counted, as before.)
  const since = state.answeredAt === undefined ? -1 : event.at - state.answeredAt
  if (event.type === 'down' && event.unknown && since >= 0 && since < UNKNOWN_ALONE_MS && state.failedFor.length === 0) return state
  const failedFor = state.failedFor.includes(event.key) ? state.failedFor : [...state.failedFor, event.key].slice(-2)
  if (failedFor.length < 2) return { ...state, failedFor }
  return { open: true, failedFor, answeredAt: state.answeredAt, openedAt: event.at, probeAt: event.at + jittered(BREAKER_MIN_MS, event.jitter), delayMs: BREAKER_MIN_MS * 2, probes: 0 }
}

/**
 * Whether a request may go upstream now as the probe of an open breaker. A probe due further
 * ahead than the longest wait was set before the clock went back: due now.
 */
export function probeDue(state: BreakerState, now: number): boolean {
  const left = (state.probeAt ?? 0) - now
  return left <= 0 || left > BREAKER_MAX_MS
}
