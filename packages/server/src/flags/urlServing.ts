// What a --flags-url source serves and keeps: a document offered to the guarded slot (with its
// lineage), the upstream's health recorded, each applied version saved as a data-dir generation,
// and `--on-upstream-unauthorized`'s drop. The polls (urlPoll.ts) and the store (urlSharing.ts)
// both go through it.
import type { StoredDocument } from '../store/sharedStore'
import type { FlagDefinitionsVersion, FlagOrigin, FlagSourceEvent } from './flagSource'
import { checkLineage, extendLineage, readLineage, type LineageVerdict } from './lineage'
import type { Persistence } from './persistence'
import type { RefreshResult } from './refreshResult'
import type { DefinitionsSlot, OfferResult } from './servedDefinitions'
import { checkShrink } from './shrinkGuard'
import { waitUntil } from './steadyClock'
import { reduceHealth, unauthorizedLongEnough, type HealthEvent } from './upstreamHealth'
import type { UrlSourceOptions } from './urlSourceOptions'
import type { UrlSourceState } from './urlSourceState'

const RESAVE_AFTER_MS = 30_000

/** What {@link createUrlServing} works on: the source's options, its shared state, slot, data dir and listeners. */
export interface UrlServingDeps {
  options: UrlSourceOptions
  state: UrlSourceState
  slot: DefinitionsSlot
  persistence: Persistence | undefined
  emit: (event: FlagSourceEvent) => void
  /** The upstream's URL as the log says it (redacted). */
  where: string
  now: () => number
  /** The source's steady clock (steadyClock.ts), on which `clear-after` measures a run of 401/403. */
  steady: () => number
}

/** What a --flags-url source serves and keeps: see {@link createUrlServing}. */
export type UrlServing = ReturnType<typeof createUrlServing>

/** The offer, health, save and drop of a --flags-url source, on its shared state. */
export function createUrlServing({ options, state, slot, persistence, emit, where, now, steady }: UrlServingDeps) {
  const { log } = options

  const record = (event: HealthEvent) => {
    state.health = reduceHealth(state.health, event)
    if (event.type === 'failure') {
      options.events?.refused(event.error.kind)
      const { kind, message } = event.error
      emit(kind === 'invalid' || kind === 'too-large' || kind === 'empty' || kind === 'shrink' ? { type: 'refused', reason: message, invalid: kind === 'invalid' || kind === 'too-large' } : { type: 'error', error: message })
    }
  }

  // A new version is saved at once; a re-confirmation (only fetchedAt moves) at most every 30 s, so
  // a restarted relay's age is at most that much older than the truth, and the disk is not worn
  // by a write per poll.
  let lastSaveAt = 0
  const save = (changed: boolean) => {
    const served = slot.current()
    if (!persistence || !served) return
    if (!changed && now() - lastSaveAt < RESAVE_AFTER_MS) return
    lastSaveAt = now()
    const savedEtag = state.etag
    const savedStoreVersion = state.storeVersion
    const savedSince = state.storeVersion === undefined ? state.storeSince : undefined
    const savedLineage = state.lineage.length > 0 ? state.lineage : undefined
    persistence.schedule(() => JSON.stringify({ kind: 'definitions', text: state.servedText ?? JSON.stringify(served.definitions), version: served.version, fetchedAt: served.fetchedAt, etag: savedEtag, storeVersion: savedStoreVersion, storeSince: savedSince, lineage: savedLineage }))
  }

  // `lineage`: for a store copy the guard refused, what its lineage says (checkLineage).
  const offer = async (text: string, origin: FlagOrigin, at: number, newEtag: string | undefined, guard = true, stored?: StoredDocument): Promise<OfferResult & { lineage?: LineageVerdict }> => {
    const fromStore = stored?.version
    const storeLineage = stored && readLineage(stored.lineage)
    // A store copy the guard refuses is taken when its lineage shows every step from what is served
    // here within this relay's own --max-shrink (the fleet shrank in steps while it was away).
    const judged: { verdict?: LineageVerdict } = {}
    const vouch = stored && ((served: FlagDefinitionsVersion, next: FlagDefinitionsVersion) => (judged.verdict = checkLineage(storeLineage, served, options.maxShrinkPercent, { flagCount: next.flagCount, dropped: droppedKeys(served, next) })))
    const result = await slot.offer(text, origin, at, { guard, vouch })
    if (result.applied || result.unchanged) {
      state.refusedCopy = undefined
      // Taken from the store: its history comes with it. Applied here: one step more (or none
      // after nothing; an operator's override is marked so, see docs/redis.md).
      if (stored) state.lineage = storeLineage ?? []
      else if (result.applied) state.lineage = result.previous ? extendLineage(state.lineage, result.previous, droppedKeys(result.previous, result.version), !guard) : []
      // A new text from the upstream has no store version until it is published.
      if (fromStore !== undefined) state.storeVersion = fromStore
      else if (result.applied) [state.storeVersion, state.storeSince] = [undefined, state.askedSince]
      state.droppedVersion = undefined
      state.heldBack = undefined
      state.etag = newEtag
      state.lastRefused = undefined
      // A copy taken from the store says nothing of the upstream: the leader's report does (a
      // relay started in an outage would otherwise say "ok", fresh, until the leader's next poll).
      if (fromStore === undefined) record({ type: 'success', at })
      if (result.applied) {
        state.servedText = text
        log.info(`serving definitions ${result.version.version} from ${where} (${result.version.flagCount} flags; changed: ${result.changed.join(', ') || 'none'})`)
        emit({ type: 'update', version: result.version, previous: result.previous, changed: result.changed })
      }
      save(result.applied)
      return result
    }
    // (A store copy refused for shrinking is said by `take`, with the remedy.)
    if (state.lastRefused?.text !== text && !(stored && result.refusal.reason === 'shrink')) log.warn(`refused ${where}: ${result.refusal.message}; ${servingWhat()}`)
    state.lastRefused = { text, etag: newEtag, at, message: result.refusal.message }
    record({ type: 'failure', at, error: { kind: result.refusal.reason, message: result.refusal.message } })
    return judged.verdict ? { ...result, lineage: judged.verdict } : result
  }

  // What a failure's log line says is served: never "the previous flags" a relay never had.
  const servingWhat = () => (slot.current() ? 'still serving the previous flags' : 'nothing served yet (OFREP requests get 503)')

  const toRefresh = (outcome: RefreshResult['outcome'], changed: string[]): RefreshResult => {
    const result: RefreshResult = { outcome, version: slot.current()?.version ?? null, changed }
    if (outcome === 'failed' || outcome === 'refused') {
      const error = state.health.lastError
      if (error) result.error = { kind: error.kind, message: error.message }
    }
    return result
  }

  // `clear-after`: the drop is due SECONDS after the first 401/403, whenever the next poll comes (an
  // --poll-interval later, or an hour with no poll but refreshes): a timer looks again then.
  // The run is measured on the steady clock, as proxy mode's are: on the wall clock (the health's
  // `unauthorizedSince`), NTP setting it back an hour put the drop off by that hour, and the
  // revoked definitions were served (200) all the while. `since` names the run (a new one has another).
  let run: { since: number; steady: number } | undefined
  const runStart = (): number | undefined => {
    const since = state.health.state === 'unauthorized' ? state.health.unauthorizedSince : undefined
    if (since === undefined) return (run = undefined)
    if (run?.since !== since) run = { since, steady: steady() }
    return run.steady
  }
  let clearTimer: ReturnType<typeof setTimeout> | undefined
  const clearLater = (reason: string, started: number | undefined) => {
    const policy = options.onUnauthorized
    if (clearTimer !== undefined || policy.mode !== 'clear-after' || started === undefined) return
    clearTimer = setTimeout(() => {
      clearTimer = undefined
      // A success since ended the run of 401/403 (the health is read as it is now).
      clearIfPolicy(now(), reason)
    }, waitUntil(started + policy.seconds * 1000, steady()))
    clearTimer.unref?.()
  }

  /** `--on-upstream-unauthorized`: drops what is held when 401/403 has lasted as long as the policy says. */
  const clearIfPolicy = (at: number, reason: string) => {
    // Read first: the run begins at its first 401/403, held or not.
    const started = runStart()
    if (!slot.current()) return
    if (started === undefined || !unauthorizedLongEnough(options.onUnauthorized, started, steady())) return clearLater(reason, started)
    log.warn(`${where} keeps answering 401/403: dropping the flags held (--on-upstream-unauthorized ${options.onUnauthorized.mode})`)
    const version = slot.current()?.version
    state.droppedVersion = version
    state.storeVersion = undefined
    state.storeSince = undefined
    slot.clear()
    state.lineage = []
    state.etag = undefined
    state.servedText = undefined
    // Remembered in the data dir: a restart must not serve what the operator chose to drop.
    if (persistence) {
      lastSaveAt = at
      persistence.schedule(() => JSON.stringify({ kind: 'cleared', at, reason, ...(version === undefined ? {} : { version }) }))
    }
  }

  /** Stops a timed `clear-after` drop (the source closes). */
  const stop = () => {
    clearTimeout(clearTimer)
    clearTimer = undefined
  }

  return { offer, record, save, servingWhat, toRefresh, clearIfPolicy, stop }
}

/** How many of the flags of `previous` are not in `next` (as the shrink guard counts them): a step's `d` in the lineage. */
function droppedKeys(previous: FlagDefinitionsVersion, next: FlagDefinitionsVersion): number {
  const verdict = checkShrink(previous.evaluator.getFlags().keys(), next.evaluator.getFlags(), 100)
  return verdict.ok || verdict.reason === 'shrink' ? verdict.dropped : previous.flagCount
}
