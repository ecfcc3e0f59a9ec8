// Proxy mode's driver of what the relay knows of the upstream: its health (upstreamHealth.ts) and
// its breaker (upstreamBreaker.ts), both reducers, fed by every answer and failure; which failure
// is one context's own and which an outage's (failureClass.ts, canary.ts); the relay's own probe,
// and the re-probe while it has nothing to serve.
import type { ServerLogger } from '../logger'
import { createBackoffTimer } from '../backoffTimer'
import { createCanary, pickCanary, type CanaryRequest } from './canary'
import type { ContextCache } from './contextCache'
import { classifyFailure, noteAcceptance, opensBreaker, type Acceptances } from './failureClass'
import type { FlagSourceEvent } from './flagSource'
import type { RelaySourceOptions } from './relay'
import { readUpstreamAnswer } from './upstreamAnswer'
import { BREAKER_MAX_MS, CLOSED_BREAKER, reduceBreaker, type BreakerEvent, type BreakerState } from './upstreamBreaker'
import { upstreamFetch, type UpstreamFailureKind } from './upstreamFetch'
import { initialHealth, reduceHealth, type HealthEvent, type UpstreamHealth } from './upstreamHealth'

// The breaker's name for the relay's own probe (no context): not a context key (those are hashes).
const PROBE_KEY = '\u0000probe'

/** A failure as {@link UpstreamMonitor.fail} counts it: `refused` when the upstream refused this context's answer or these credentials. */
export interface CountedFailure {
  kind: 'failed'
  failure: UpstreamFailureKind
  message: string
  refused?: true
}

/** What {@link createUpstreamMonitor} needs from the proxy source. */
export interface UpstreamMonitorOptions {
  /** The upstream's OFREP bulk endpoint (the probe posts there). */
  endpoint: string
  timeoutMs: number
  fetch?: typeof fetch
  /** Abandons the probe when the source closes. */
  signal: AbortSignal
  /** The held contexts: a canary asks one of them, and a context with nothing held never had values here. */
  cache: ContextCache
  /** The order users asked for their contexts (a counter): a canary asks the most recent. */
  askedBy: ReadonlyMap<string, number>
  /** Whether there is something to serve without the upstream (held answers, a snapshot for every context). */
  holds: () => boolean
  /** Asks the upstream for `key` as a canary (shared with a user's request already out for it). */
  ask: (key: string, request: CanaryRequest) => Promise<unknown>
  closed: () => boolean
  /** The relay's clock (epoch ms) and its steady clock (see steadyClock.ts). */
  now: () => number
  steady: () => number
  log: ServerLogger
  events?: RelaySourceOptions['events']
  /** Tells the source's listeners of a failure. */
  emit: (event: FlagSourceEvent) => void
}

/** The driver of one proxy source's view of the upstream. */
export interface UpstreamMonitor {
  health(): UpstreamHealth
  breaker(): BreakerState
  /** The latest outage the breaker saw: why it is open. */
  downError(): { kind: UpstreamFailureKind; message: string } | undefined
  /** Feeds the breaker (a probe going out, another relay's answer heard). */
  saw(event: BreakerEvent): void
  /** Feeds the health. `blamed`: a success that is a 400 or a 401/403 (see upstreamBreaker.ts). */
  record(event: HealthEvent, blamed?: boolean): void
  /** The upstream blamed a request (400, …): a success, except while the breaker is open (only an attempt then). */
  blamed(at: number): void
  /** The upstream accepted `credentials` (any answer but a failure). */
  accepted(credentials: string): void
  /** The upstream answered `key` with values (a 200 applied, a 304) for `credentials`. */
  answered(key: string, credentials: string): void
  /**
   * Counts a failure at `at` (epoch ms). `key`: the context asked, for the breaker; none for the
   * relay's own faults. `credentials`: the forwarded credentials' hash.
   */
  fail(at: number, kind: UpstreamFailureKind, message: string, httpStatus?: number, credentials?: string, key?: string): CountedFailure
  /** Asks the upstream with the relay's own probe context. */
  probe(): Promise<void>
  /** Something to serve, or the upstream answering: /readyz's 200. */
  ready(): boolean
  /** Stops the re-probe. */
  stop(): void
}

/** Creates the driver; nothing runs until the first probe or answer. */
export function createUpstreamMonitor(options: UpstreamMonitorOptions): UpstreamMonitor {
  const { cache, closed, now, steady, log } = options
  let health: UpstreamHealth = initialHealth(true)
  // The breaker (see upstreamBreaker.ts): while open, a user's request goes upstream only as the
  // probe (one at a time, when due); the others are answered from what is held, or 503.
  let breaker: BreakerState = CLOSED_BREAKER
  // The latest outage it saw: why it is open. Not `health.lastError`, which a made-up key's 401 to
  // a probe replaces while the breaker stays open (and a 401 denies the snapshot under `clear`).
  let downError: { kind: UpstreamFailureKind; message: string } | undefined
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
  /** The credentials (hash) the upstream last accepted, and the latest others before them (the steady clock): see failureClass.ts. */
  const accepted: Acceptances = {}
  // The same for answers with values only (a 200 applied, a 304), for `ownOutage`: a 400 is no
  // sign the flag service is up (a gateway answers it while the service behind is down), and any
  // client can provoke one with a made-up key.
  const values: Acceptances = {}
  // The re-probe while not ready (see `reprobeSoon`): after 1 s, doubling to 30 s.
  const reprobe = createBackoffTimer(() => {
    if (!closed() && !ready()) void probe()
  })

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
      options.emit(event.type === 'refused' ? { type: 'refused', reason: event.error.message } : { type: 'error', error: event.error.message })
    }
  }

  // `key`: the context asked (or PROBE_KEY), for the breaker; none for the relay's own faults.
  const fail = (at: number, kind: UpstreamFailureKind, message: string, httpStatus?: number, credentials?: string, key?: string): CountedFailure => {
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
    closed,
    pick: (failedKey) => pickCanary(failedKey, answeredKey, (key) => cache.get(key), options.askedBy),
    ask: options.ask,
    heard: () => heard,
    failed: (key) => !breaker.open && breaker.failedFor.includes(key),
    down: (failedKey) => breakerSaw({ type: 'down', at: now(), key: failedKey, jitter: Math.random() }),
  })

  const probe = async () => {
    // Tells the status (and /readyz, when nothing is held) whether the upstream answers at all. It
    // carries no forwarded credentials, so a 400/401/403 still means "up and answering".
    const result = await upstreamFetch({ url: options.endpoint, method: 'POST', body: JSON.stringify({ context: { targetingKey: 'holdfast-relay-probe' } }), timeoutMs: options.timeoutMs, fetch: options.fetch, signal: options.signal })
    const at = now()
    const up = result.kind !== 'failed' || result.failure === 'rejected' || result.failure === 'unauthorized'
    if (up && (result.kind !== 'ok' || readUpstreamAnswer(result.text, result.contentType).ok)) {
      if (result.kind !== 'failed') answeredBy(PROBE_KEY)
      record({ type: 'success', at }, result.kind === 'failed')
    }
    else if (result.kind === 'failed') fail(at, result.failure, result.message, result.httpStatus, undefined, PROBE_KEY)
    else fail(at, 'invalid', 'the probe answer is not an OFREP bulk answer', undefined, undefined, PROBE_KEY)
  }

  // A Bootstrap snapshot is one user's values, served to that user alone (see proxyEvaluate.ts): it does
  // not make the relay ready. Before, /readyz said 200 while every other new user got 503, and a
  // load balancer routing by it sent them all to this relay. Definitions serve every context.
  const ready = () => options.holds() || health.state === 'ok'

  // Nothing to serve and the upstream failing: not ready. Behind a load balancer that routes by
  // /readyz no request comes to find out that the upstream is back, so the relay asks by itself
  // (1 s, doubling to 30 s) until it answers. (Not while it is `unauthorized`: the probe carries
  // no credentials, and a 401 to it would read as "up".)
  function reprobeSoon() {
    if (!closed() && !ready() && health.state === 'failing') reprobe.schedule()
  }

  return {
    health: () => health,
    breaker: () => breaker,
    downError: () => downError,
    saw: breakerSaw,
    record,
    blamed(at) {
      // While the breaker is open (which this does not close) it is no success either: it made
      // the status `ok` and `stale: false`, `lastSuccessAt` now, while every user was answered
      // stale without asking (and `ready` with nothing held, every new user getting 503) until
      // the next probe. (The relay's own probe, with nothing to serve, still makes it ready and
      // `ok`: a load balancer must send the users whose requests can find values and close it.)
      if (breaker.open) health = { ...health, lastAttemptAt: at }
      else record({ type: 'success', at }, true)
    },
    accepted: (credentials) => noteAcceptance(accepted, credentials, steady()),
    answered(key, credentials) {
      answeredBy(key)
      noteAcceptance(values, credentials, steady())
    },
    fail,
    probe,
    ready,
    stop: () => reprobe.stop(),
  }
}
