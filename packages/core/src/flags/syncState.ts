// Flag sync as a pure state machine: what happened (a cache read, a user switch, a request, an
// answer) goes in, the next state comes out, and the status is derived from the state in one
// function. No I/O, no timers, no clock (`now` comes with the input): the driver (sync.ts) does
// those and feeds the results back in.
//
// Every request carries a generation. An answer is applied only if it answers the latest request
// for the current context, so with a slow fetch that ignores aborts:
//
//   request A (gen 1) ─────────────────────────────── answer A₁ arrives: gen 1 ≠ 3, dropped
//   setContext(B): request B (gen 2) ── answer B
//   setContext(A): request A (gen 3) ───── answer A₃ applied
import { HoldfastError, toStatusError } from '../platform/errors'
import { safeContextHash } from '../platform/hash'
import { trustedTime, type CacheRecord } from '../protocol/readers'
import type { FetchResult } from '../protocol/fetchFlags'
import type { Bootstrap, EvaluationContext, Status } from '../types'
import { FLAG_NOT_FOUND, confirmAll, holdsValues, layerSnapshot, markStale, mergeResponse, type FlagMap } from './merge'

type StatusError = NonNullable<Status['error']>

/** The ETag of a clean snapshot: valid only for the context it was fetched for, and only for its keys. */
export interface EtagInfo {
  readonly value: string
  readonly contextHash: string
  /** When the snapshot was fetched (its source vouched for it). */
  readonly at: number
  /** The flag keys of the snapshot the ETag names: a 304 confirms only these. */
  readonly keys: ReadonlySet<string>
  /**
   * The relay said this snapshot is stale (`metadata.holdfast.stale`): a 304 confirming it keeps it
   * so, whatever failed in between. (Such an ETag is not persisted: after a reload the full answer
   * says it again.)
   */
  readonly stale?: HoldfastError
}

/** Everything flag sync knows. Immutable: each input makes a new state. */
export interface SyncState {
  readonly context: EvaluationContext
  /** Undefined when the context cannot be serialised (a BigInt, a cycle): nothing is requested for it. */
  readonly contextHash: string | undefined
  readonly flags: FlagMap
  /** The fallback snapshot's flags: what a user with nothing of their own is shown. */
  readonly fallback: FlagMap
  /** The held flags other than fallback are the current context's (false between a switch and its values). */
  readonly own: boolean
  /**
   * A success applied since this context became current: once one applied, the
   * fallback no longer stands in for it (CONTRACT §5), not even once a 401 cleared its values. A switch
   * forgets it: a user back later with nothing of his held or cached is shown what a first visit is
   * (before, the page remembered its latest answered context only, so a user back after a logout that
   * cleared the cache saw the defaults or the fallback depending on whether anyone was answered between).
   */
  readonly answered?: boolean
  /** What the latest finished attempt for this context did. */
  readonly outcome: 'none' | 'success' | 'failure' | 'fatal'
  /**
   * After a partial answer (one with failure entries), the keys it removed (FLAG_NOT_FOUND); undefined
   * after a clean one. A cache entry read after it fills in the rest (see the 'cache' input).
   */
  readonly removed?: ReadonlySet<string>
  /** The latest attempt's failure, or the relay's `UPSTREAM_STALE`. */
  readonly failure?: HoldfastError
  readonly bootstrapError?: StatusError
  readonly storageError?: StatusError
  readonly lastSuccessAt?: number
  readonly source: Status['source']
  readonly etag?: EtagInfo
  /**
   * When an answer last vouched for the values held, on the relay's clock (merge.ts `heldAt`); persisted
   * with them. NaN while the values held are this user's for other attributes: nothing to measure against.
   */
  readonly heldAt: number
  /** The cache entry of the current context has been read (or looked up in this page's memory). */
  readonly cacheRead: boolean
  /** The newest request's number: only its answer is applied. */
  readonly generation: number
}

/** What can happen to flag sync. */
export type SyncInput =
  | { type: 'cache'; contextHash: string; record: CacheRecord; now: number }
  | { type: 'cache-miss'; contextHash: string }
  | {
      type: 'switch'
      context: EvaluationContext
      contextHash: string | undefined
      cached?: CacheRecord
      now: number
      /** The page had no user (paused: a logout): nothing on screen is anyone's to stand in. */
      afterPause?: boolean
    }
  | { type: 'request' }
  | {
      type: 'answer'
      generation: number
      contextHash: string
      result: FetchResult
      now: number
      acceptEmpty?: boolean
      clearOnUnauthorized?: boolean
    }
  | { type: 'storage-failed'; message?: string }
  /** A server's `Retry-After` holds the first attempt for this context back: shown as if it had failed so. */
  | { type: 'held'; error: HoldfastError }

/** The state at `createClient`: fallback, then bootstrap, applied synchronously. */
export function initialState(input: {
  context: EvaluationContext
  contextHash: string | undefined
  fallback?: { bootstrap: Bootstrap } | 'invalid'
  bootstrap?: { bootstrap: Bootstrap; skipped: number } | 'invalid'
  now: number
}): SyncState {
  const { context, contextHash, now } = input
  let fallback: FlagMap = new Map()
  if (input.fallback && input.fallback !== 'invalid') fallback = layerSnapshot(new Map(), input.fallback.bootstrap.flags, 'fallback', undefined)
  // Every field present from the start, in one order: the states that follow (spreads of this one)
  // then share one hidden class, which keeps the evaluation path's reads of `own` monomorphic.
  let state: SyncState = {
    context,
    contextHash,
    flags: fallback,
    fallback,
    own: true,
    outcome: 'none',
    removed: undefined,
    failure: undefined,
    bootstrapError: undefined,
    storageError: undefined,
    lastSuccessAt: undefined,
    source: fallbackSource(fallback),
    etag: undefined,
    heldAt: 0,
    cacheRead: false,
    generation: 0,
  }
  if (contextHash === undefined) return invalidContext(state)
  const b = input.bootstrap
  if (b === 'invalid') {
    state = { ...state, bootstrapError: { code: 'BOOTSTRAP_INVALID', message: 'the bootstrap snapshot is malformed and was ignored' } }
  } else if (b && b.bootstrap.context.targetingKey !== context.targetingKey) {
    state = {
      ...state,
      bootstrapError: { code: 'BOOTSTRAP_CONTEXT_MISMATCH', message: 'the bootstrap was rendered for another targetingKey and was ignored' },
    }
  } else if (b) {
    // Dated by the server that rendered it, while the cache is dated by this device: on a device
    // whose clock runs behind (minutes, hours), the page's own fresh snapshot reads as "from the
    // future". Up to a day ahead it is believed, the newest thing the page has (read as the oldest,
    // yesterday's cache entry replaced it for a whole outage), and its `updatedAt` is the one the
    // server rendered (hydration matches); beyond that it is garbage, the oldest possible.
    const at = trustedTime(b.bootstrap.fetchedAt, now + 864e5)
    const flags = layerSnapshot(state.flags, b.bootstrap.flags, 'bootstrap', at)
    state = { ...state, flags, source: 'bootstrap' }
    // Rendered from a relay that said its values are stale: shown so until an answer says otherwise
    // (a 304 to its ETag confirms the same stale snapshot, and keeps it so).
    const stale = b.bootstrap.stale === true ? new HoldfastError('UPSTREAM_STALE', "the flag server's own source is failing (bootstrap)") : undefined
    if (stale) state = { ...state, flags: markStale(flags), failure: stale }
    const etag = b.bootstrap.etag
    // An answer for this very context, vouched for as of `at` (heldAt), as an answer is: its flags'
    // times alone were lowered by a cache entry of the same content saved earlier, or capped by this
    // device's clock by a 304 to its ETag (hours behind), and a stale answer fetched before the
    // bootstrap then replaced its values (a kill switch turned off again).
    if (safeContextHash(b.bootstrap.context) === contextHash)
      state = { ...state, heldAt: at, etag: etag === undefined ? undefined : { value: etag, contextHash, at, keys: new Set(b.bootstrap.flags.map((f) => f.key)), stale } }
  }
  return state
}

/** The reducer: the next state after `input`. Returns `state` itself when nothing changed. */
export function reduce(state: SyncState, input: SyncInput): SyncState {
  switch (input.type) {
    case 'cache': {
      if (input.contextHash !== state.contextHash) return state
      // An answer for this context applied while the entry was being read (a refresh() right after a
      // switch, a slow IndexedDB): it is what the server holds now. Layered over it, the entry brought
      // back the flags it had removed, as `source: 'cache'`, and no request came to take them away.
      // Unless it left no values: an empty answer taken while nothing was held yet, which the entry
      // read first would have had refused (§4: never "every kill switch is off").
      // A partial answer removed nothing it left out (§4), and the cache ranks next below the network
      // (§5): read first, the entry's other flags were kept, stale, a per-flag error's value too; read
      // after, they are filled in so (before, a kill switch only the entry had was the caller's default).
      const { record, now } = input
      const savedAt = trustedTime(record.savedAt, now)
      if (state.outcome === 'success' && holdsValues(state.flags)) {
        const { removed } = state
        if (!removed) return { ...state, cacheRead: true }
        // The answer's values win (network); a per-flag error with no value is a hole the entry fills, keeping the error.
        const under = new Map([...state.flags].filter(([, f]) => f.value !== undefined || !f.errorCode))
        const flags = new Map(state.flags)
        for (const [key, flag] of layerSnapshot(under, record.flags.filter((f) => !removed.has(f.key)), 'cache', savedAt))
          if (flag !== under.get(key)) flags.set(key, { ...flag, stale: true, errorCode: state.flags.get(key)?.errorCode })
        return { ...state, flags, cacheRead: true }
      }
      const exact = record.contextHash === state.contextHash
      // What stands in for other attributes of this user (heldAt NaN: a switch before start(), or
      // before this page had their entry in memory) gives way to this context's own entry entirely,
      // as on a switch that found it in memory: no flag of theirs outlives it as this context's.
      const flags = layerSnapshot(state.own && !(exact && isNaN(state.heldAt)) ? state.flags : state.fallback, record.flags, 'cache', savedAt)
      // A 304 confirms what is held for the keys of the snapshot its ETag names, so an ETag is kept
      // only while those flags still come from that snapshot: a bootstrap's, until the cache won
      // one of them; the cache's, unless a newer bootstrap won one of them.
      const fromCache = (keys: ReadonlySet<string>, cached: boolean) => [...keys].every((key) => (flags.get(key)?.source === 'cache') === cached)
      let etag = state.own && state.etag && fromCache(state.etag.keys, false) ? state.etag : undefined
      const keys = new Set(record.etagKeys ?? record.flags.map((f) => f.key))
      // A cached ETag is usable only for the very context (all attributes) it was fetched for, and
      // only if it is newer than what we hold (e.g. a bootstrap's).
      if (record.etag !== undefined && record.contextHash === state.contextHash && (!etag || etag.at <= savedAt) && fromCache(keys, true))
        etag = { value: record.etag, contextHash: state.contextHash, at: savedAt, keys }
      // Status.source names the data applied last: a cache entry that lost every flag to a newer
      // bootstrap applied nothing.
      const applied = !state.own || [...flags.values()].some((f) => f.source === 'cache')
      // An entry saved for other attributes of this user (one per targetingKey): its values stand in, and
      // their times say nothing of what this context's answers may replace (NaN: see SyncState.heldAt).
      // This context's own entry: its time counts (NaN, the other attributes' none, must not swallow it:
      // yesterday's stale relay answer then replaced it).
      const heldAt = exact ? Math.max(state.heldAt || 0, trustedTime(record.heldAt, now)) : NaN
      return { ...state, flags, own: true, source: applied ? 'cache' : state.source, cacheRead: true, etag, heldAt }
    }
    case 'cache-miss':
      return input.contextHash === state.contextHash && !state.cacheRead ? { ...state, cacheRead: true } : state
    case 'switch': {
      const base: SyncState = {
        ...state,
        context: input.context,
        contextHash: input.contextHash,
        generation: state.generation + 1,
        outcome: 'none',
        failure: undefined,
        bootstrapError: undefined,
        etag: undefined,
        heldAt: 0,
        cacheRead: false,
        own: false,
        answered: undefined,
        // The previous context's partial answer says nothing of this one's flags.
        removed: undefined,
      }
      if (input.contextHash === undefined) return invalidContext(base)
      // This page has seen the user before: show their values at once.
      if (input.cached) return reduce(base, { type: 'cache', contextHash: input.contextHash, record: input.cached, now: input.now })
      // The same user with other attributes: what is held is still theirs (as their cache entry, one
      // per targetingKey, would be), stale until an answer for the new attributes; a failed attempt
      // keeps it rather than turning every flag, a kill switch too, into the caller's default.
      // Their times are the other attributes' (NaN: see SyncState.heldAt): no newer than this context's answers.
      // Not when nothing is held for them (`none`: a 401 dropped their values): as for another user, a
      // first visit below (before, the defaults while the answer was out, then the fallback at a 401).
      if (state.own && state.source != 'none' && input.context.targetingKey === state.context.targetingKey) return { ...base, own: true, flags: markStale(state.flags), heldAt: NaN }
      // No flash of defaults: the previous values stay visible, marked stale, while the state says
      // `loading`; they are not this user's, so they go the moment an attempt for this user fails,
      // and meanwhile they say `fallback` (before: `network` or `cache`, as if fetched for this user).
      // Not after a logout (pause): the user who left is not the one arriving, and the page went
      // through "no user" (the OpenFeature provider served defaults): nothing of theirs comes back.
      // Then, or when the previous user was shown the fallback alone (values for any user), this user
      // starts as on a first visit: the fallback is theirs, exposed once their cache was read (before,
      // it counted as standing in: never exposed, and a reader that took it for theirs, as the status
      // said `fallback`, kept that observation for their answer of the same value, unlogged). So too
      // after a user shown nothing at all (`none`: the caller's defaults, his values dropped at a 401):
      // nothing of anyone's stands in (before, the new user was shown the defaults, not the fallback).
      if (input.afterPause || state.source == 'fallback' || state.source == 'none') return onFallback(base)
      return { ...base, flags: markStale(state.flags, 'fallback') }
    }
    case 'request':
      return { ...state, generation: state.generation + 1 }
    case 'answer':
      return answer(state, input)
    case 'held':
      return fail(state, input.error)
    case 'storage-failed':
      return { ...state, storageError: { code: 'STORAGE', message: input.message! } }
  }
}

function answer(state: SyncState, input: Extract<SyncInput, { type: 'answer' }>): SyncState {
  // Not the latest request for the current context: an answer for a user (or a request) gone by.
  if (input.generation !== state.generation || input.contextHash !== state.contextHash) return state
  const { result, now } = input
  const mine = state.own ? state.flags : state.fallback
  switch (result.kind) {
    case 'aborted':
      return state
    case 'error':
      return fail(state, result.error, input.clearOnUnauthorized)
    case 'not-modified': {
      // Only the snapshot the request named. A 304 to a request that named no snapshot (a confused
      // proxy) confirms nothing: were it read as "the snapshot of no keys is current", it would wipe
      // every held value. Nor does one naming a snapshot no longer held: a newer cache entry that
      // landed while the request was out (its ETag with it) was passed off as the server's current
      // one, its older values as fresh. (The driver asks such a 304 again at once without
      // If-None-Match, sync.ts; this stays the reducer's own guard.)
      const etag = state.etag?.contextHash === state.contextHash && state.etag.value === result.etag ? state.etag : undefined
      if (!etag) return fail(state, new HoldfastError('INVALID_RESPONSE', 'a 304 confirmed no snapshot asked about'))
      const confirmed = confirmAll(mine, etag.keys, now)
      // A snapshot that leaves no flag (a bootstrap rendered while the server answered `{"flags": []}`,
      // or only per-flag errors such as FLAG_NOT_FOUND) confirmed while flags are held is that empty
      // answer again: refused as the 200 of no flags is, never "every kill switch is off".
      if (!confirmed.size && mine.size && !input.acceptEmpty) return fail(state, new HoldfastError('EMPTY_RESPONSE', 'a 304 confirmed no flags while flags are held'))
      // The snapshot named is one a relay said was stale: confirmed, and still stale.
      const upstreamStale = etag.stale
      return succeed(state, upstreamStale ? markStale(confirmed) : confirmed, etag, now, upstreamStale)
    }
    case 'ok': {
      // Placeholder values of the previous user are not this context's: merge against nothing.
      const merged = mergeResponse(mine, result.entries, { now, skipped: result.skipped, acceptEmpty: input.acceptEmpty, upstream: result.upstream, heldAt: state.heldAt })
      if (merged.rejected) return fail(state, new HoldfastError('EMPTY_RESPONSE', 'the server answered with no flags while flags are held'))
      const upstreamStale = result.upstream?.stale
        ? new HoldfastError(
            'UPSTREAM_STALE',
            `the flag server's own source is failing; its values are from ${result.upstream.fetchedAt ?? 'an unknown time'}${merged.older ? ', older than the values held (kept)' : ''}`,
          )
        : undefined
      // Values kept over an older answer are not that answer's snapshot: a 304 to its ETag must not confirm them.
      const etag: EtagInfo | undefined =
        merged.clean && !merged.older && result.etag !== undefined
          ? { value: result.etag, contextHash: input.contextHash, at: now, keys: new Set(result.entries.map((e) => e.key)), stale: upstreamStale }
          : undefined
      // Status.source names the data applied last: a stale answer older than every flag it named applied
      // nothing, and what is shown is still the cache's or the bootstrap's.
      const removed = merged.clean ? undefined : new Set(result.entries.filter((e) => e.errorCode == FLAG_NOT_FOUND).map((e) => e.key))
      return { ...succeed(state, merged.flags, etag, now, upstreamStale, merged.none), heldAt: merged.heldAt!, removed }
    }
  }
}

/** `none`: nothing of the answer was applied (Status.source names the data applied last). */
function succeed(state: SyncState, flags: FlagMap, etag: EtagInfo | undefined, now: number, failure?: HoldfastError, none?: boolean): SyncState {
  return {
    ...state,
    flags,
    own: true,
    answered: true,
    outcome: 'success',
    removed: undefined,
    failure,
    bootstrapError: undefined,
    storageError: undefined,
    lastSuccessAt: now,
    source: none ? state.source : 'network',
    etag,
  }
}

function fail(state: SyncState, error: HoldfastError, clearOnUnauthorized?: boolean): SyncState {
  const fatal = error.code === 'UNAUTHORIZED' || error.code === 'INVALID_CONTEXT'
  const next: SyncState = { ...state, outcome: fatal ? 'fatal' : 'failure', failure: error }
  // The first attempt for a new user failed and nothing is cached for them: the previous user's
  // values go now. This user's flags come from fallback, or the caller's defaults.
  // Credentials refused with `clearCacheOnUnauthorized`: this user's values go; after a success for
  // them, the caller's defaults stand in, not the fallback (before: the build-time snapshot came back).
  if (!state.own || (error.code === 'UNAUTHORIZED' && clearOnUnauthorized)) return onFallback(next, state.answered)
  return { ...next, flags: markStale(state.flags) }
}

function invalidContext(state: SyncState): SyncState {
  return onFallback({
    ...state,
    outcome: 'fatal',
    failure: new HoldfastError('INVALID_CONTEXT', 'the context cannot be serialised (a BigInt, a cycle?)'),
  })
}

/** Only the fallback snapshot held, as the current context's (nothing of its own yet; nothing at all once a success applied for it). */
function onFallback(state: SyncState, answered?: boolean): SyncState {
  const flags = answered ? new Map() : state.fallback
  return { ...state, flags, own: true, etag: undefined, heldAt: 0, source: fallbackSource(flags) }
}

function fallbackSource(fallback: FlagMap): Status['source'] {
  return fallback.size > 0 ? 'fallback' : 'none'
}

/**
 * The status of CONTRACT-level states, derived in one place from the state (and the storage in use).
 * `loading`: nothing of this user's yet and no attempt finished; `ready`: the latest attempt
 * succeeded (or none finished and values are held); `stale`: values held but the latest attempt
 * failed, or the relay said its values are stale; `error`: rejected credentials or context, or a
 * failed attempt with nothing of this user's. `paused`: no user on the page (pause()).
 */
export function deriveStatus(state: SyncState, storage: Status['storage'], started = true, paused?: boolean): Status {
  const values = state.own && holdsValues(state.flags)
  let s: Status['state']
  if (state.outcome === 'fatal') s = 'error'
  else if (state.outcome === 'failure') s = values ? 'stale' : 'error'
  else if (state.outcome === 'success') s = state.failure ? 'stale' : 'ready'
  else s = values ? (state.failure ? 'stale' : 'ready') : 'loading'
  const status: Status = { state: s, source: state.source, storage }
  if (state.lastSuccessAt !== undefined) status.lastSuccessAt = state.lastSuccessAt
  // A storage failure is the error while the page runs on memory (back on IndexedDB, it is over).
  // A bootstrap problem stays the error until the first success (a failed attempt is logged);
  // rejected credentials or context (`fatal`) say what the app must act on.
  const error = state.failure && (state.outcome === 'fatal' || !state.bootstrapError) ? toStatusError(state.failure) : (state.bootstrapError ?? (storage == 'memory' ? state.storageError : undefined))
  if (error) status.error = error
  if (started && state.cacheRead) status.cacheRead = true
  if (paused) status.paused = true
  return status
}
