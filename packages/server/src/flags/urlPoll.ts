// One poll of a --flags-url source: a GET with If-None-Match, its answer recorded and offered to
// the guarded slot (an acceptance of a shrink on another relay of the fleet applied too), then,
// with --redis, what it gave published for the other relays.
import type { SharedDefinitions } from '../store/sharedDefinitions'
import type { RefreshResult } from './refreshResult'
import type { DefinitionsSlot } from './servedDefinitions'
import { shrinkAcceptance } from './shrinkGuard'
import { upstreamFetch } from './upstreamFetch'
import { reportOfHealth } from './upstreamHealth'
import type { UrlServing } from './urlServing'
import type { UrlSourceOptions } from './urlSourceOptions'
import { lineageText, type UrlSourceState } from './urlSourceState'

// An upstream's 429/503 `Retry-After` holds the scheduled polls back for at most this long ("10
// years" must not stop them); an operator's refresh still goes out.
const MAX_POLL_PAUSE_MS = 60_000

/** What {@link createUrlPoll} works on: the source's options, shared state, slot, serving and store driver. */
export interface UrlPollDeps {
  options: UrlSourceOptions
  state: UrlSourceState
  slot: DefinitionsSlot
  serving: Pick<UrlServing, 'offer' | 'record' | 'save' | 'servingWhat' | 'toRefresh' | 'clearIfPolicy'>
  /** `--redis`: the shared store's driver, told of each poll. Default: none. */
  shared: SharedDefinitions | undefined
  /** Aborted at close: a poll in flight is abandoned instead of waiting out its timeout. */
  signal: AbortSignal
  /** The upstream's URL as the log says it (redacted). */
  where: string
  now: () => number
}

/** Returns the poll of a --flags-url source: one poll, then (with --redis) what it gave is published for the other relays. */
export function createUrlPoll({ options, state, slot, serving, shared, signal, where, now }: UrlPollDeps): () => Promise<RefreshResult> {
  const { log } = options
  const { offer, record, save, servingWhat, toRefresh, clearIfPolicy } = serving
  /** One poll, then (with --redis) what it gave is published for the other relays. */
  const pollAndShare = async (): Promise<RefreshResult> => {
    const asked = shared?.asking?.()
    state.askedSince = asked?.newest ?? asked?.seen
    const result = await poll()
    if (shared) {
      const served = slot.current()
      const ok = (result.outcome === 'applied' || result.outcome === 'unchanged') && served !== undefined && state.servedText !== undefined
      shared.polled(ok ? { ok: true, text: state.servedText!, fetchedAt: served!.fetchedAt, ...(state.etag === undefined ? {} : { etag: state.etag }), ...lineageText(state) } : { ok: false }, reportOfHealth(state.health), asked)
      if (ok) state.takenText = state.servedText
    }
    return result
  }

  const poll = async (): Promise<RefreshResult> => {
    const result = await upstreamFetch({ url: options.url, method: 'GET', headers: options.headers, etag: slot.current() ? state.etag : undefined, timeoutMs: options.timeoutMs, fetch: options.fetch, signal })
    const at = now()
    options.events?.attempt(result.kind === 'failed' ? result.failure : result.kind)
    if (result.kind !== 'failed') state.notBefore = 0
    if (result.kind === 'not-modified') {
      if (!slot.current()) {
        state.etag = undefined
        record({ type: 'failure', at, error: { kind: 'invalid', message: `${where} answered 304 while nothing is held` } })
        return toRefresh('failed', [])
      }
      slot.confirm(at, 'url')
      record({ type: 'success', at })
      save(false)
      return toRefresh('unchanged', [])
    }
    if (result.kind === 'failed') {
      const { failure: kind, message, httpStatus } = result
      const repeated = state.health.lastError?.message === message
      record({ type: 'failure', at, error: httpStatus === undefined ? { kind, message } : { kind, message, httpStatus } })
      if (!repeated) log.warn(`${message}; ${servingWhat()}`)
      if (kind === 'unauthorized') clearIfPolicy(at, message)
      if ((httpStatus === 429 || httpStatus === 503) && result.retryAfterMs !== undefined) state.notBefore = at + Math.min(result.retryAfterMs, MAX_POLL_PAUSE_MS)
      return toRefresh('failed', [])
    }
    const offered = await offer(result.text, 'url', at, result.etag)
    if (offered.applied) return toRefresh('applied', offered.changed)
    // An operator accepted this very shrink on another relay of the fleet (a refresh behind a load
    // balancer reaches any of them): applied here too, and published as a forced step.
    const acceptance = 'refusal' in offered && offered.refusal.reason === 'shrink' ? shrinkAcceptance(result.text) : undefined
    if (acceptance !== undefined && (await shared?.takeAcceptedShrink?.(acceptance))) {
      const forced = await offer(result.text, 'url', at, result.etag, false)
      if (forced.applied) {
        log.warn(`applying ${where} although it drops more than --max-shrink: an operator accepted it on another relay of the fleet (POST /holdfast/v1/refresh {"acceptShrink": true})`)
        return toRefresh('applied', forced.changed)
      }
    }
    return toRefresh(offered.unchanged ? 'unchanged' : 'refused', [])
  }

  return pollAndShare
}
