// Proxy mode's re-ask rounds: the relay holds per-context answers and learns of upstream changes
// only by asking. A round (live updates while a stream is open, `POST /holdfast/v1/refresh`) asks
// the held contexts again, 4 at a time, for at most `roundMs`: the users seen most recently first
// and, turn about, the sweep of the others from where the last round stopped. A refresh answers
// within its bound with how far the round got; a refresh meanwhile joins it (never a second round).
import { contextKey, type ContextCache, type HeldContext } from './contextCache'
import { REFUSED_ANSWER, UPSTREAM_DOWN } from './failureClass'
import type { RefreshResult } from './refreshResult'
import type { RelayStatus } from './relayStatus'
import type { UpstreamFailureKind } from './upstreamFetch'
import { unauthorizedLongEnough, type HealthEvent, type UnauthorizedPolicy, type UpstreamHealth } from './upstreamHealth'

const REFRESH_CONCURRENCY = 4

/** What a round reads of the answer to one of its asks (the proxy source's outcome of `ask`). */
export type ReaskOutcome =
  | { kind: 'fresh'; changed: string[]; evicted?: true }
  | { kind: 'failed'; failure: UpstreamFailureKind; message: string; paused?: true; refused?: true }
  | { kind: 'rejected' }

/** What {@link createReaskRounds} needs from the proxy source. */
export interface ReaskRoundsOptions {
  /** The held contexts: asked, and dropped here when their credentials were refused long enough. */
  cache: ContextCache
  /** The order users asked for their contexts (a counter): the users seen most recently first. */
  askedBy: ReadonlyMap<string, number>
  /** The flag keys told of since the sweep began (see reaskNews.ts): forgotten when it starts again, and at an upstream that is down. */
  told: Set<string>
  /** The contexts whose failure ended a round (the latest few): asked last among the recent; a round ending at one adds it. */
  cutBy: Set<string>
  /** The contexts whose upstream request is out now: not asked again meanwhile. */
  inFlight: { has(key: string): boolean }
  /** How long one round goes on (ms, the monotonic clock). */
  roundMs: number
  /** `--on-upstream-unauthorized`: whether a refused key's other contexts are dropped. */
  onUnauthorized: UnauthorizedPolicy
  /** Per credentials (hash), since when (the steady clock) the upstream refused them. */
  unauthorizedSince: ReadonlyMap<string, number>
  /** The relay's clock (epoch ms) and its steady clock (see steadyClock.ts). */
  now: () => number
  steady: () => number
  closed: () => boolean
  /** Tells the news a user's request owes (a second change), as a round begins. */
  tellOwedNews: () => void
  /** Asks the upstream for a held context as a re-ask (shared with a user's request already out for it). */
  ask: (key: string, context: NonNullable<HeldContext['request']>['context'], forwarded: Record<string, string>) => Promise<ReaskOutcome>
  /** Saves the held contexts (to the data dir) after a change of content. */
  save: (contentChanged: boolean) => void
  /** Told of each context whose values a round dropped for its refused credentials (`clear`, `clear-after`). */
  dropped?: (key: string) => void
  /**
   * `clear-after`: a context of credentials refused in this round, not asked, whose run of 401/403 is
   * not yet long enough: it joins the run, to go with the asked one when it is due (see `dueDrops`
   * in upstreamDrops.ts). Default: nothing.
   */
  refusedLater?: (key: string, credentials: string) => void
  /** Asks the upstream with the relay's own probe context (nothing held to ask). */
  probe: () => Promise<unknown>
  breakerOpen: () => boolean
  health: () => UpstreamHealth
  record: (event: HealthEvent) => void
}

/** The rounds of one proxy source. */
export interface ReaskRounds {
  /** Runs a round, or joins the one running. */
  refreshAll(): Promise<RefreshResult>
  /** {@link ReaskRounds.refreshAll}, answered by `answerWithinMs` with how far the round got (`running`) when it lasts longer. */
  refreshWithin(answerWithinMs: number | undefined): Promise<RefreshResult>
  /** While a round runs: has it ask the users seen most recently again. */
  reaskRecent(): void
  /** The round going on now, as far as it got. */
  round(): { at: number; contexts: number; asked: number; changed: Set<string> } | undefined
  /** The latest round that ended. */
  lastRound(): RelayStatus['reask']
}

/** Creates the re-ask rounds of a proxy source. Nothing runs until `refreshAll`. */
export function createReaskRounds(options: ReaskRoundsOptions): ReaskRounds {
  const { cache, askedBy, told, cutBy, inFlight, roundMs, onUnauthorized, unauthorizedSince, now, steady, closed, tellOwedNews, ask, save, probe, breakerOpen, health, record } = options
  // The contexts asked in the sweep under way (see refreshAll): a round bounded in time asks the
  // users seen most recently first, and turn about the others, from where the last round stopped.
  const swept = new Set<string>()
  let refreshing: Promise<RefreshResult> | undefined
  // The round `refreshing` runs, as far as it got: what a refresh answers when the round outlasts
  // its bound (`answerWithinMs`).
  let round: { at: number; contexts: number; asked: number; changed: Set<string> } | undefined
  // While a round runs: has it ask the users seen most recently again (see `reaskRecent()` below).
  let reaskRecent: (() => void) | undefined
  let lastRound: RelayStatus['reask']

  // The `count` contexts whose users asked most recently and can be asked now (held, their request
  // known, not out already), but not those whose failure ended a round (see `cutBy`).
  const mostRecent = (count: number): string[] => {
    const found: string[] = []
    const keys = [...askedBy.keys()]
    for (let i = keys.length - 1; i >= 0 && found.length < count; i--) {
      const key = keys[i]
      if (!cutBy.has(key) && !inFlight.has(key) && cache.peek(key)?.request) found.push(key)
    }
    return found
  }

  const refreshAll = (): Promise<RefreshResult> => {
    refreshing ??= (async (): Promise<RefreshResult> => {
      tellOwedNews()
      // A round asked every context held, least recently used first, and told nothing until it
      // ended: 10,000 contexts at 2 s an answer are 80 minutes, and a change made for the user of
      // an open tab reached it that late. Now a round lasts `roundMs` at most, and takes in turn
      // one from each of two lanes: the users seen most recently first (an open tab asked when it
      // loaded, and again on each notice), and the sweep: the others, those the rounds since the
      // sweep began have not asked yet, least recently seen first, so every context held is still
      // asked, idle or not (a tab with its stream open asks nothing until a notice comes). What a
      // round does not reach is asked when its user asks (every request goes upstream) or in the
      // next rounds. (Sorted in place: stable, the contexts no user asked for here keep their order.)
      const all = cache.entries()
      const asked = all.filter(([, held]) => held.request !== undefined)
      const unknown = all.length - asked.length
      asked.sort(([a], [b]) => (askedBy.get(b) ?? 0) - (askedBy.get(a) ?? 0))
      const keys = new Set(asked.map(([key]) => key))
      for (const key of swept) if (!keys.has(key)) swept.delete(key)
      let sweep = asked.filter(([key]) => !swept.has(key)).reverse()
      if (sweep.length === 0) {
        swept.clear()
        told.clear()
        sweep = [...asked].reverse()
      }
      const lanes = [[...asked.filter(([key]) => !cutBy.has(key)), ...asked.filter(([key]) => cutBy.has(key))], sweep]
      const taken = new Set<string>()
      let turn = 0
      // The users seen most recently, asked again in this round (see `reaskRecent`): at most one
      // request in four (one of the recent lane's two turns), and only while some context is still
      // to be asked once, so they slow the round by a quarter at most and never hold it open. Not
      // one asked in this round since the tick before (performance.now() when each was last
      // taken): not back to back when an interval is about an answer's time. Queued in turn, not
      // replaced at each tick: replaced, with ticks faster than its requests, the first two were
      // asked again by turns for ever and the third never.
      let again: string[] = []
      const takenAt = new Map<string, number>()
      let tickAt = performance.now()
      reaskRecent = () => {
        const since = tickAt
        tickAt = performance.now()
        for (const key of mostRecent(REFRESH_CONCURRENCY)) {
          if ((takenAt.get(key) ?? -Infinity) < since && !again.includes(key) && again.length < 2 * REFRESH_CONCURRENCY) again.push(key)
        }
      }
      const first = (lane: Array<[string, HeldContext]>) => {
        for (let item = lane.shift(); item; item = lane.shift()) {
          if (taken.has(item[0])) continue
          taken.add(item[0])
          swept.add(item[0])
          takenAt.set(item[0], performance.now())
          return item
        }
        return undefined
      }
      // The third element says the context is asked again in this round (not counted in `asked`).
      const next = (): [string, HeldContext, boolean?] | undefined => {
        if (closed() || performance.now() - begun >= roundMs) return undefined
        const slot = turn++
        const recentTurn = slot % 2 === 0
        if (slot % 4 === 0 && lanes[0].length + lanes[1].length > 0) {
          for (let key = again.shift(); key !== undefined; key = again.shift()) {
            const held = cache.peek(key)
            if (!held?.request || inFlight.has(key)) continue
            takenAt.set(key, performance.now())
            return [key, held, true]
          }
        }
        return recentTurn ? (first(lanes[0]) ?? first(lanes[1])) : (first(lanes[1]) ?? first(lanes[0]))
      }
      const started = now()
      // The bound is a duration, on the monotonic clock: a wall clock stepped back an hour (NTP
      // after a suspend) let a round run whole, and the users seen most recently were not asked
      // again until it ended (80 minutes for 10,000 contexts at 2 s an answer).
      const begun = performance.now()
      const changed = new Set<string>()
      const progress = (round = { at: started, contexts: asked.length, asked: 0, changed })
      let failure: { kind: string; message: string } | undefined
      // An answer for one context refused by the guard: the round goes on, and says `refused`.
      let refusal: { kind: string; message: string } | undefined
      let answersRefused = 0
      let answered = 0
      // Contexts whose request failed (no answer, a timeout, 5xx, HTML…) in this round.
      let failedCount = 0
      // Credentials the upstream refused (401/403) in this round: it would refuse each of their
      // contexts the same way. One SDK key every browser sends, revoked, made a round of 10,000
      // refused requests; now their other contexts are not asked (nor counted in `asked`), and
      // what the refusal does to values (`clear`, `clear-after`) is done to them as to the one asked.
      const refusedCredentials = new Set<string>()
      const worker = async () => {
        for (let item = next(); item; item = next()) {
          const [key, held, askedAgain] = item
          const credentials = contextKey({}, held.request!.forwarded)
          if (refusedCredentials.has(credentials)) {
            const since = unauthorizedSince.get(credentials)
            if (since !== undefined && cache.peek(key) && unauthorizedLongEnough(onUnauthorized, since, steady())) {
              cache.delete(key)
              options.dropped?.(key)
              save(true)
            }
            // Not due yet: it joins the run, and goes when the asked one does. Before, it was left
            // out of it, so only the contexts asked went SECONDS on; the others stayed held (and in
            // the data dir, served after a restart in an outage) until their users' next 401.
            else if (cache.peek(key)) options.refusedLater?.(key, credentials)
            continue
          }
          // Evicted since the round began (least recently used, newer users came): not asked, nor
          // put back. Before, it was asked and held again (pushing out a user seen since), and its
          // every flag counted as changed: a notice to every open tab for nothing.
          if (!cache.peek(key)) continue
          const outcome = await ask(key, held.request!.context, held.request!.forwarded)
          if (outcome.kind === 'failed' && outcome.failure === 'unauthorized') refusedCredentials.add(credentials)
          // Credentials the upstream asked to wait (429/503 + Retry-After) are not asked: skipped,
          // neither a failure of the round nor its end (the other keys' changes must still come).
          if (outcome.kind === 'failed' && outcome.paused) continue
          // Evicted while it waited for a turn (maxUpstreamRequests): not asked, so neither `asked`
          // nor `answered` (before, both counted it, and the status said the upstream was asked).
          if (outcome.kind === 'fresh' && outcome.evicted) continue
          if (!askedAgain) progress.asked++
          // The upstream answered for this context (values, a 304, a 400, or an answer refused here).
          if (!askedAgain && (outcome.kind !== 'failed' || outcome.refused)) answered++
          if (outcome.kind === 'fresh') for (const flag of outcome.changed) changed.add(flag)
          else if (outcome.kind === 'failed' && outcome.refused) {
            refusal = { kind: outcome.failure, message: outcome.message }
            if (REFUSED_ANSWER.has(outcome.failure)) answersRefused++
          }
          else if (outcome.kind === 'failed') {
            failure = { kind: outcome.failure, message: outcome.message }
            if (!askedAgain) failedCount++
            // The upstream itself is down (no answer, a timeout, 5xx/429, a captive portal's HTML):
            // every other context would fail the same way, each costing it a request (and, hanging,
            // a timeout). The round ends here; the next interval asks again. A 401/403 or a refused
            // answer concerns one context's key or values: the others are still asked.
            if (UPSTREAM_DOWN.has(outcome.failure)) {
              for (const lane of lanes) lane.length = 0
              again = []
              // What it finds once the upstream is back is news again.
              told.clear()
              cutBy.delete(key)
              cutBy.add(key)
              if (cutBy.size > REFRESH_CONCURRENCY) cutBy.delete(cutBy.values().next().value!)
            }
          }
        }
      }
      // Nothing asked yet in this process: at least find out whether the upstream answers.
      if (asked.length === 0) await probe()
      await Promise.all(Array.from({ length: Math.min(REFRESH_CONCURRENCY, asked.length) }, worker))
      // A round that asked every context, the upstream answering some, did its work: the contexts
      // it failed alone (a rule that crashes on one user's attributes) keep their values, stale,
      // and are named in `failed` and `error`. Before, such a round answered 502 `failed` each
      // time, and a deploy step running `curl -f …/refresh` failed for one user's context.
      // Alone means: fewer failed than answered, and the breaker did not open on them (two contexts
      // of three answering 503 is an upstream going down, not one user's rule).
      const failedAlone = failure !== undefined && failedCount < answered && progress.asked === asked.length && !breakerOpen()
      const result: RefreshResult = { outcome: failure && !failedAlone ? 'failed' : refusal ? 'refused' : changed.size > 0 ? 'applied' : 'unchanged', version: cache.version(), changed: [...changed].sort(), contexts: asked.length, asked: progress.asked, answered, startedAt: started, unknown }
      if (failedCount > 0) result.failed = failedCount
      if (asked.length === 0 && health().state !== 'ok') {
        result.outcome = 'failed'
        const { lastError } = health()
        if (lastError) failure = { kind: lastError.kind, message: lastError.message }
      }
      // The answer for every context asked (two or more) refused: one context's values are that
      // context's problem, but an upstream that gave nobody a usable answer is failing (a broken
      // deploy answering every user with junk must not read `ok` while `refused` climbs).
      const count = progress.asked
      if (!failure && refusal && count >= 2 && answersRefused === count) {
        record({ type: 'failure', at: now(), error: { kind: refusal.kind as UpstreamFailureKind, message: `every answer in the latest round was refused (${count} contexts): ${refusal.message}` } })
      }
      if (failure ?? refusal) result.error = failure ?? refusal
      lastRound = { at: started, contexts: asked.length, asked: count, answered, durationMs: Math.round(performance.now() - begun), outcome: result.outcome, unknown }
      return result
    })().finally(() => {
      refreshing = undefined
      round = undefined
      reaskRecent = undefined
    })
    return refreshing
  }

  // A round asks every context held, 4 at a time: 10,000 contexts at a healthy 2 s an answer is
  // about 80 minutes. An operator's refresh waited all that time (curl and every proxy between gave
  // up long before, and said nothing of what happened). Now it answers by `answerWithinMs` with how
  // far the round got, and the round goes on; a refresh meanwhile joins it (never a second round).
  const refreshWithin = async (answerWithinMs: number | undefined): Promise<RefreshResult> => {
    const running = refreshAll()
    if (answerWithinMs === undefined) return running
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), answerWithinMs)))
    try {
      const done = await Promise.race([running, late])
      if (done !== 'late') return done
    } finally {
      clearTimeout(timer)
    }
    const at = round ?? { at: now(), contexts: 0, asked: 0, changed: new Set<string>() }
    return { outcome: 'running', version: cache.version(), changed: [...at.changed].sort(), contexts: at.contexts, asked: at.asked, startedAt: at.at }
  }

  return { refreshAll, refreshWithin, reaskRecent: () => reaskRecent?.(), round: () => round, lastRound: () => lastRound }
}
