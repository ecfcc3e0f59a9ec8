// A FlagClient for an app's own tests: memory only, no network, no timers, no storage. Values and
// status are set by the test and change synchronously, with the notifications the real client
// sends, so a component under test re-renders exactly as it would in the browser. Evaluation is
// the real client's memoised reader (TYPE_MISMATCH, FLAG_NOT_FOUND, null values, a default `stale`
// while the status is failing), not a second copy.
//
// Internal modules are imported, not copied: the details reader, the held-flag shape and its change
// test (what a listener sees), the store's `failing` (a status whose defaults are stale), and the
// stable JSON text.
import { expectedType, type Expected } from '../evaluate'
import { flat } from '../events/prepareEvent'
import { createDetailsReader } from '../flags/details'
import { sameDetails, type HeldFlag } from '../flags/merge'
import { failing as statusFailing } from '../flags/store'
import { stableStringify } from '../platform/hash'
import type { Bootstrap, Details, EvaluationContext, EventStats, FlagClient, FlagEntry, FlagMetadata, JsonValue, Status } from '../types'

/** What a test may say about one flag besides its value. Every field is optional. */
export interface TestFlagDetails {
  /** The variant `getDetails` reports for the flag. Default: none. */
  variant?: string
  /** The reason `getDetails` reports for the flag. Default: `'STATIC'`. */
  reason?: string
  /** The flat metadata `getDetails` reports for the flag. Default: none. */
  metadata?: FlagMetadata
  /** A per-flag error code from the server (e.g. `'PARSE_ERROR'`). Default: none. */
  errorCode?: string
  /** Where the value came from. Default: the client's `source` option (`'network'`). */
  source?: HeldFlag['source']
  /** Default: true while the status is `stale` or `error` (as after a failed attempt), else false. */
  stale?: boolean
}

/** Options of {@link createTestClient}. Every field is optional. */
export interface TestClientOptions {
  /**
   * The flags held, by key: each value as the server would send it (`null` means "the caller's
   * default"). Default: no flags, so every evaluation returns its default with `FLAG_NOT_FOUND`.
   */
  flags?: Record<string, JsonValue>
  /**
   * The status: a state (`'stale'`, `'error'`, …) or a partial `Status`. Default `'ready'`, source
   * `network`, storage `memory`. A `stale` or `error` state without an `error` gets a `NETWORK` one.
   */
  status?: Status['state'] | Partial<Status>
  /** The user. Default `{ targetingKey: 'test-user' }`. */
  context?: EvaluationContext
  /** The `source` of the flags. Default `'network'`. */
  source?: HeldFlag['source']
  /** Time for `updatedAt`, `lastSuccessAt` and events. Default `Date.now`. */
  now?: () => number
}

/** A `logEvent` call as the test client recorded it. */
export interface LoggedEvent {
  /** The name passed to `logEvent`. */
  name: string
  /** The `value` passed to `logEvent`, when one was. */
  value?: string | number
  /** The `metadata` passed to `logEvent`, when any was. */
  metadata?: FlagMetadata
  /** The user it was logged for. */
  targetingKey: string
}

/** An exposure as the test client recorded it: once per (user, flag, value, variant), like the real client. */
export interface LoggedExposure {
  /** The flag evaluated. */
  key: string
  /** The value the app was shown. */
  value: unknown
  /** The variant shown, when the flag has one. */
  variant?: string
  /** The user it was shown to. */
  targetingKey: string
}

/** What {@link TestClient.observe} hands a reader: the selection, the details behind it, and whether it counts as an exposure. */
export interface TestFlagObservation<T, R> {
  readonly result: R
  readonly details: Details<T>
  /** Always true here, whatever is shown: not the client's rule (hooks ask `isExposable`, which refuses defaults and anything while `paused`). */
  readonly exposable: boolean
}

/** One reader's view of one flag: `get()` is the same object until what the reader shows changes. */
export interface TestFlagObserver<T, R> {
  get(): TestFlagObservation<T, R>
  subscribe(listener: () => void): () => void
}

/** A `FlagClient` whose values and status the test sets, plus what the app logged. */
export interface TestClient extends FlagClient {
  /**
   * One reader's observer of one flag (what a React hook holds), as the real client's `observe`:
   * `select` picks what the reader shows (default the details), `equal` compares selections
   * (default `Object.is`); `get()` keeps returning the same observation until either changes.
   */
  observe<T, R = Details<T>>(key: string, defaultValue: T, select?: (details: Details<T>) => R, equal?: (a: R, b: R) => boolean): TestFlagObserver<T, R>
  /** Sets one flag (adding it if absent) and notifies at once. `null` means "the caller's default". */
  set(key: string, value: JsonValue, details?: TestFlagDetails): void
  /** Removes one flag, as a `FLAG_NOT_FOUND` from the server would; notifies at once. */
  remove(key: string): void
  /** Replaces every flag with these (flags not named are removed), as a new server answer would. */
  setFlags(flags: Record<string, JsonValue>): void
  /**
   * Changes the status (a state, or a partial `Status`) and notifies at once. `stale` and `error`
   * mark every flag stale, as a failed attempt does; `ready` marks them fresh again.
   */
  setStatus(status: Status['state'] | Partial<Status>): void
  /** Every `logEvent` call, oldest first. */
  readonly loggedEvents: readonly LoggedEvent[]
  /** Every exposure (evaluations and `logExposure`), oldest first, de-duplicated as the real client does. */
  readonly exposures: readonly LoggedExposure[]
}

const FAILED = { code: 'NETWORK', message: '[holdfast] test client: simulated failed attempt' }

/**
 * Creates a {@link TestClient}: an in-memory `FlagClient` for tests of components and code that
 * read flags. Pass it to `<FlagProvider client={…}>`; change values with `set`, `setFlags` and
 * `setStatus` (listeners run synchronously; wrap in React's `act`); assert on `loggedEvents` and
 * `exposures`. It never touches the network, storage or timers. Defaults: no flags, status
 * `ready` from `network`, user `{ targetingKey: 'test-user' }`.
 */
export function createTestClient(options: TestClientOptions = {}): TestClient {
  const now = options.now ?? Date.now
  const defaultSource = options.source ?? 'network'
  let context: EvaluationContext = { ...(options.context ?? { targetingKey: 'test-user' }) }
  // Frozen like the real client's status and details: a component that changes them in place
  // throws in its tests as it would in production.
  let status: Status = Object.freeze({ state: 'ready', source: defaultSource, storage: 'memory', lastSuccessAt: now() })
  let flags = new Map<string, HeldFlag>()
  // Not a literal: EventStats may grow counters (e.g. retriedRequests), which start at 0 here too.
  const noEvents = { queued: 0, sent: 0, dropped: 0, retries: 0, retriedRequests: 0 }
  let stats: EventStats = noEvents
  const loggedEvents: LoggedEvent[] = []
  const exposures: LoggedExposure[] = []
  const exposed = new Set<string>()
  const listeners = new Set<() => void>()
  const flagListeners = new Map<string, Set<() => void>>()
  // The real client's memo: the same flag object and default give the same details object, so
  // useSyncExternalStore sees "unchanged" without comparing fields; a missing flag's too (a
  // snapshot new at every read makes React warn, and a hydrating render reads it twice).
  const reader = createDetailsReader(() => ({ flags, status, events: stats }))

  const failing = () => statusFailing(status)

  function held(key: string, value: JsonValue, details: TestFlagDetails = {}): HeldFlag {
    assertJson(value, key)
    const flag: { -readonly [K in keyof HeldFlag]: HeldFlag[K] } = {
      key,
      source: details.source ?? defaultSource,
      // A per-flag error keeps a value stale even after a good answer, as in the real client.
      stale: details.stale ?? (failing() || details.errorCode !== undefined),
      reason: details.reason ?? 'STATIC',
      updatedAt: now(),
    }
    // `null` is the wire's "use the caller's default": held without a value, as the client does.
    if (value !== null) flag.value = value
    if (details.variant !== undefined) flag.variant = details.variant
    if (details.metadata !== undefined) flag.metadata = { ...details.metadata }
    if (details.errorCode !== undefined) flag.errorCode = details.errorCode
    return flag
  }

  /** Applies new flags and status; tells each changed flag's listeners once, then everyone. */
  function commit(next: Map<string, HeldFlag>, nextStatus: Status = status) {
    const changed: string[] = []
    for (const key of new Set([...flags.keys(), ...next.keys()])) {
      const before = flags.get(key)
      const after = next.get(key)
      // An identical re-confirmation is no change: keep the old object (and its updatedAt).
      if (before && after && sameDetails(before, after)) next.set(key, before)
      else if (before !== after) changed.push(key)
    }
    const statusChanged = stableStringify(nextStatus) !== stableStringify(status)
    // A flag not held reads as the caller's default, stale while the status is failing (as in the real client).
    const wasFailing = failing()
    flags = next
    if (statusChanged) status = Object.freeze(nextStatus)
    if (failing() !== wasFailing) for (const key of flagListeners.keys()) if (!flags.has(key) && !changed.includes(key)) changed.push(key)
    if (changed.length === 0 && !statusChanged) return
    for (const key of changed) for (const listener of [...(flagListeners.get(key) ?? [])]) listener()
    for (const listener of [...listeners]) listener()
  }

  function details<T>(key: string, defaultValue: T, expected: Expected, exposure: boolean): Details<T> {
    const result = reader.read(key, defaultValue, expected)
    if (exposure) logExposure(result)
    return result
  }

  // The real client's rule: the caller's own default is not an exposure of anything (a missing
  // flag, or the client's own type mismatch; a value the server's TYPE_MISMATCH left held is shown
  // and is one), nor is any value while no user is on the page (`status: { paused: true }`, a logout).
  const isExposable = (details: Details<unknown>) =>
    details.source !== 'default' && (details.errorCode !== 'TYPE_MISMATCH' || details.value === flags.get(details.key)?.value) && !status.paused

  function logExposure(details: Details<unknown>) {
    if (!isExposable(details)) return
    const id = stableStringify([context.targetingKey, details.key, details.value ?? null, details.variant ?? null])
    if (exposed.has(id)) return
    exposed.add(id)
    const entry: LoggedExposure = { key: details.key, value: details.value, targetingKey: context.targetingKey }
    if (details.variant !== undefined) entry.variant = details.variant
    exposures.push(entry)
  }

  function setStats(next: EventStats) {
    stats = next
    for (const listener of [...listeners]) listener()
  }

  const initial = new Map<string, HeldFlag>()
  for (const [key, value] of Object.entries(readFlags(options.flags ?? {}))) initial.set(key, held(key, value))
  flags = initial
  if (options.status !== undefined) status = Object.freeze(toStatus(options.status, status, now))
  if (failing()) flags = new Map([...flags].map(([key, flag]) => [key, { ...flag, stale: true }]))

  const client: TestClient = {
    start: () => Promise.resolve(status),
    getGate: (key, defaultValue = false) => details(key, defaultValue, 'boolean', true).value,
    getConfig: <T extends object>(key: string, defaultValue: T = {} as T) => details(key, defaultValue, 'object', true).value,
    getValue: <T extends JsonValue>(key: string, defaultValue: T) => details(key, defaultValue, expectedType(defaultValue), true).value,
    getDetails: (key, defaultValue, evaluateOptions) =>
      details(key, defaultValue, expectedType(defaultValue), evaluateOptions?.exposure !== false),
    getStatus: () => status,
    refresh: () => Promise.resolve(status),
    setContext(next) {
      context = { ...next }
      // A login ends a logout, as the real client's does: `paused` goes, and with it the ban on exposures.
      if (status.paused) {
        const { paused: _, ...rest } = status
        status = Object.freeze(rest)
      }
      for (const listener of [...listeners]) listener()
      return Promise.resolve(status)
    },
    getContext: () => context,
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    observe<T, R = Details<T>>(key: string, defaultValue: T, select?: (details: Details<T>) => R, equal: (a: R, b: R) => boolean = Object.is) {
      const expected = expectedType(defaultValue)
      const pick = select ?? ((d: Details<T>) => d as unknown as R)
      let last: (TestFlagObservation<T, R> & { who: EvaluationContext }) | undefined
      return {
        get() {
          const found = details(key, defaultValue, expected, false)
          if (last && last.details === found && last.who === context) return last
          const result = pick(found)
          const same = last && equal(last.result, result) && Object.is(last.details.value, found.value) && last.details.variant === found.variant
          if (same && last!.who === context) return last!
          return (last = { result, details: found, exposable: true, who: context })
        },
        subscribe: (listener: () => void) => client.subscribeFlag(key, listener),
      }
    },
    subscribeFlag(key, listener) {
      let set = flagListeners.get(key)
      if (!set) flagListeners.set(key, (set = new Set()))
      set.add(listener)
      return () => void set.delete(listener)
    },
    logEvent(name, eventOptions) {
      // The real client's rules: a nameless event is ignored with a warning; metadata is copied
      // now, and a metadata value or the event's value that is not a string, finite number or
      // boolean is left out (the event's with a warning, as the real client's).
      if (typeof name !== 'string' || name === '') {
        console.warn('[holdfast] logEvent needs a non-empty event name')
        return
      }
      const event: LoggedEvent = { name, targetingKey: context.targetingKey }
      // Options from plain JS may be null, or throw when read or copied (a revoked Proxy): as the
      // real client, never into the app's code (before, a TypeError here failed the app's test).
      let options: { value?: unknown; metadata?: unknown }
      try {
        const { value, metadata } = eventOptions ?? {}
        options = { value, metadata }
      } catch {
        return console.warn(`[holdfast] logEvent("${name}") ignored: its options threw`)
      }
      if (options.value !== undefined) {
        const value = flat(options.value)
        if (value === undefined) console.warn(`[holdfast] event "${name}": value left out (not a string, finite number or boolean)`)
        else event.value = value as string | number
      }
      if (options.metadata !== undefined)
        try {
          event.metadata = copyMetadata(options.metadata as FlagMetadata)
        } catch {
          return console.warn(`[holdfast] dropped the event "${name}": it cannot be serialised as JSON`)
        }
      loggedEvents.push(event)
      setStats({ ...stats, queued: stats.queued + 1 })
    },
    logExposure,
    isExposable,
    flush() {
      if (stats.queued > 0) setStats({ ...stats, queued: 0, sent: stats.sent + stats.queued })
      return Promise.resolve()
    },
    getEventStats: () => stats,
    snapshot(): Bootstrap {
      const entries = [...flags.values()].map((flag) => {
        const entry: FlagEntry = { key: flag.key }
        for (const field of ['value', 'variant', 'reason', 'metadata', 'errorCode', 'updatedAt'] as const) {
          if (flag[field] !== undefined) (entry as unknown as Record<string, unknown>)[field] = flag[field]
        }
        return entry
      })
      return { context, flags: entries, fetchedAt: now() }
    },
    clearCache: () => Promise.resolve(),
    pause() {},
    close: () => Promise.resolve(),
    set(key, value, flagDetails) {
      const next = new Map(flags)
      next.set(key, held(key, value, flagDetails))
      commit(next)
    },
    remove(key) {
      const next = new Map(flags)
      next.delete(key)
      commit(next)
    },
    setFlags(values) {
      const next = new Map<string, HeldFlag>()
      for (const [key, value] of Object.entries(readFlags(values))) next.set(key, held(key, value))
      commit(next)
    },
    setStatus(change) {
      const nextStatus = toStatus(change, status, now)
      const stale = nextStatus.state === 'stale' || nextStatus.state === 'error'
      const next = new Map<string, HeldFlag>()
      for (const [key, flag] of flags) {
        const target = stale || flag.errorCode !== undefined
        next.set(key, nextStatus.state === 'loading' || flag.stale === target ? flag : { ...flag, stale: target })
      }
      commit(next, nextStatus)
    },
    get loggedEvents() {
      return loggedEvents
    },
    get exposures() {
      return exposures
    },
  }
  return client
}

function toStatus(change: Status['state'] | Partial<Status>, current: Status, now: () => number): Status {
  const next: Status = typeof change === 'string' ? { ...current, state: change } : { ...current, ...change }
  if (typeof change === 'string' || !('error' in change)) {
    if (next.state === 'stale' || next.state === 'error') next.error ??= FAILED
    else delete next.error
  }
  if (next.state === 'ready' && typeof change === 'string') next.lastSuccessAt = now()
  return next
}

function copyMetadata(metadata: FlagMetadata): FlagMetadata {
  const copy: FlagMetadata = {}
  for (const [key, value] of Object.entries(Object(metadata) as FlagMetadata)) {
    const kept = flat(value)
    if (kept !== undefined) copy[key] = kept
  }
  return copy
}

function readFlags(flags: Record<string, JsonValue>): Record<string, JsonValue> {
  if (typeof flags !== 'object' || flags === null || Array.isArray(flags)) {
    throw new TypeError('[holdfast] createTestClient: `flags` must be an object of flag values by key')
  }
  return flags
}

// A test that hands in `undefined`, a function or a Date has a bug the real wire could never carry.
function assertJson(value: unknown, key: string): void {
  const ok = (v: unknown): boolean =>
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v)) ||
    (Array.isArray(v) && v.every(ok)) ||
    (typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v)) && Object.values(v as object).every(ok))
  if (!ok(value)) throw new TypeError(`[holdfast] createTestClient: the value of "${key}" is not JSON (got ${String(value)})`)
}
