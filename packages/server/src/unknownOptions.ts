// Option keys that nothing reads. The schemas at the options boundary are loose (a host may pass a
// spread config object, `{ ...appConfig, flags }`), so a misspelt key was taken without a word:
// `redis: { url, namesapce: 'staging' }` joined the unnamed fleet of its source, `liveUpdate:
// false` left live updates on, `apiKEy: 'x'` left the server open. Each is said once at start.
import type { DedupeWindowOptions } from './events/dedupeWindow'
import type { FlagHandlerOptions, FlagServerOptions } from './flagHandlerOptions'
import type { RelayOptions } from './flags/relayOptions'
import type { RequestLimits } from './ofrep/schemas'
import type { StreamHubOptions } from './ofrep/streamHubOptions'
import type { RedisRelayOptions } from './store/relayStore'
import type { ServerLogger } from './logger'

/**
 * The keys an options object takes: `true` for a value not looked into (a string, a record of
 * headers, definitions, an injected clock or store, whose own members are the implementer's),
 * or the keys of a nested options object, looked into when the value is a plain object.
 */
export type OptionKeys = { readonly [key: string]: true | OptionKeys }

type Primitive = string | number | boolean | bigint | symbol | null | undefined
/** The part of an option's type that is an object to look into: not a primitive, a function or an array. */
type ObjectPart<V> = Exclude<V, Primitive | ((...args: never[]) => unknown) | readonly unknown[]>

/**
 * Every key of `T`, no more (checked by `satisfies`): a new option that is not listed here fails
 * the typecheck. An option whose value may be an object must list that object's keys in turn, so a
 * nested options object listed as `true` (never looked into: `redis: true` left `redis.namesapce`
 * unsaid) fails it too, unless its name is among `Opaque`: an injected object or a record whose
 * members are the implementer's or the user's (a logger, a store, a clock, headers). `Opaque`
 * applies at every depth.
 */
export type KeysOf<T, Opaque extends PropertyKey = never> = {
  readonly [K in keyof Required<T>]-?: K extends Opaque ? true : [ObjectPart<Required<T>[K]>] extends [never] ? true : KeysOf<ObjectPart<Required<T>[K]>, Opaque>
}

/** Options whose value is an object not looked into: definitions, injected objects, header records. */
type NotLookedInto = 'flags' | 'source' | 'logger' | 'metrics' | 'routes' | 'upstreamHeaders' | 'eventsUpstreamHeaders' | 'eventsFileSystem' | 'eventsClock' | 'store' | 'clock'

const REDIS = { url: true, leaseTtlMs: true, commandTimeoutMs: true, backupTtlMs: true, namespace: true } satisfies KeysOf<RedisRelayOptions, NotLookedInto>
/** The keys of `createStreamHub`'s options (`liveUpdates` of the handler's). */
export const STREAM_HUB_OPTION_KEYS = {
  maxConnections: true,
  maxConnectionsPerClient: true,
  heartbeatMs: true,
  retryMs: true,
  recoveryWindowMs: true,
  inactivityDelaySec: true,
  random: true,
  now: true,
  requestUri: true,
} satisfies KeysOf<StreamHubOptions, NotLookedInto>
const LIMITS = { maxBodyBytes: true, maxAttributes: true, maxDepth: true, maxStringLength: true, maxTargetingKeyLength: true } satisfies KeysOf<RequestLimits, NotLookedInto>
const EVENTS_DEDUPE = { maxIds: true, windowMs: true, now: true } satisfies KeysOf<DedupeWindowOptions, NotLookedInto>
const EVENTS_FORWARDING = {
  batchSize: true,
  batchBytes: true,
  timeoutMs: true,
  backoffBaseMs: true,
  backoffMaxMs: true,
  maxRetryAfterMs: true,
  clock: true,
  random: true,
  fetch: true,
  onAttempt: true,
} satisfies KeysOf<NonNullable<FlagHandlerOptions['eventsForwarding']>, NotLookedInto>
const SHARED_STORE = { store: true, leaseTtlMs: true } satisfies KeysOf<NonNullable<RelayOptions['sharedStore']>, NotLookedInto>

/** The keys of `createFlagHandler`'s options. */
export const HANDLER_OPTION_KEYS: OptionKeys = {
  flags: true,
  source: true,
  apiKey: true,
  corsOrigin: true,
  demoControls: true,
  strictValidation: true,
  maxShrinkPercent: true,
  limits: LIMITS,
  maxEventLoopDelayMs: true,
  answerCacheBytes: true,
  logger: true,
  metrics: true,
  routes: true,
  liveUpdates: STREAM_HUB_OPTION_KEYS,
  middleware: true,
  // RelayOptions
  flagsUrl: true,
  upstream: true,
  dataDir: true,
  keepGenerations: true,
  snapshot: true,
  pollIntervalSeconds: true,
  adminKey: true,
  onUpstreamUnauthorized: true,
  forwardHeaders: true,
  upstreamHeaders: true,
  upstreamTimeoutMs: true,
  maxContexts: true,
  redis: REDIS,
  sharedStore: SHARED_STORE,
  maxContextBytes: true,
  heldAnswerAfterMs: true,
  maxUpstreamRequests: true,
  reaskRoundMs: true,
  refreshAnswerWithinMs: true,
  fetch: true,
  // EventsOptions
  eventsFile: true,
  eventsMaxBytes: true,
  eventsKeep: true,
  eventsDedupe: EVENTS_DEDUPE,
  eventsFileSystem: true,
  eventsUpstream: true,
  eventsSpoolDir: true,
  eventsDeadLetterMaxBytes: true,
  eventsUpstreamHeaders: true,
  eventsForwarding: EVENTS_FORWARDING,
  eventsWriteTimeoutMs: true,
  eventsClock: true,
} satisfies KeysOf<FlagHandlerOptions, NotLookedInto>

/** The keys of `createFlagServer`'s options: the handler's and the listening ones. */
export const SERVER_OPTION_KEYS: OptionKeys = {
  ...HANDLER_OPTION_KEYS,
  ...({ port: true, host: true, maxConnections: true, headersTimeoutMs: true, requestTimeoutMs: true, keepAliveTimeoutMs: true, drainTimeoutMs: true } satisfies KeysOf<Omit<FlagServerOptions, keyof FlagHandlerOptions>, NotLookedInto>),
}

/** How many unknown option keys are named in the log at start, one line each; the rest are counted in one more line. */
export const MAX_UNKNOWN_LINES = 20

/** A key no option reads: its path (`redis.namesapce`) and the known one it is closest to, if any. */
export interface UnknownOption {
  path: string
  suggestion?: string
}

/** The keys of `options` (and of its nested options objects) that `known` does not list, in order. */
export function unknownOptions(options: object, known: OptionKeys, prefix = ''): UnknownOption[] {
  const found: UnknownOption[] = []
  for (const [key, value] of Object.entries(options)) {
    const path = prefix + key
    const expected = Object.prototype.hasOwnProperty.call(known, key) ? known[key] : undefined
    if (expected === undefined) {
      const near = closest(key, Object.keys(known))
      found.push({ path, suggestion: near === undefined ? elsewhere(key, known, prefix) : prefix + near })
    } else if (expected !== true && isPlainObject(value)) {
      found.push(...unknownOptions(value, expected, `${path}.`))
    }
  }
  return found
}

/**
 * Says the keys of `options` that `known` does not list on `log`, one line each (at most
 * {@link MAX_UNKNOWN_LINES}: a spread of a large config object, an app's whole settings, is one
 * more line saying how many, not thousands), and gives them back.
 */
export function sayUnknownOptions(options: object, known: OptionKeys, log: ServerLogger): UnknownOption[] {
  const unknown = unknownOptions(options, known)
  for (const option of unknown.slice(0, MAX_UNKNOWN_LINES)) log.warn(unknownOptionMessage(option))
  if (unknown.length > MAX_UNKNOWN_LINES) log.warn(`${unknown.length - MAX_UNKNOWN_LINES} more unknown option keys (ignored)`)
  return unknown
}

/** The one line an unknown option is said in. */
export function unknownOptionMessage({ path, suggestion }: UnknownOption): string {
  // A key from a spread object may be of any length: a 1 MB one was logged whole.
  const shown = path.length > SHOWN_PATH ? `${path.slice(0, SHOWN_PATH)}… (${path.length} characters)` : path
  return `unknown option ${shown} (${suggestion === undefined ? 'ignored' : `did you mean ${suggestion}?`})`
}

const SHOWN_PATH = 120

/** The known key nearest `key` (case, `_` and `-` aside), within a distance that still reads as a slip of the hand. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const slipped = normalized(key)
  for (const candidate of known) {
    const target = normalized(candidate)
    // The distance is at least the difference in length: a key far longer than any option is
    // compared with none (a 1 MB key against every option held the start 25 s and took 1.5 GB).
    if (Math.abs(slipped.length - target.length) > allowedDistance(candidate)) continue
    const distance = editDistance(slipped, target)
    if (distance < bestDistance && distance <= allowedDistance(candidate)) [best, bestDistance] = [candidate, distance]
  }
  return best
}

// `url` → `uri` is a slip; `port` → `host` is another option.
const allowedDistance = (key: string) => (key.length <= 4 ? 1 : key.length <= 8 ? 2 : 3)
const normalized = (key: string) => key.toLowerCase().replace(/[-_\s]/g, '')

/** A key given at the wrong level (`namespace` beside `redis`, not in it): where it is known. */
function elsewhere(key: string, known: OptionKeys, prefix: string): string | undefined {
  const slipped = normalized(key)
  for (const [name, nested] of Object.entries(known)) {
    if (nested === true) continue
    const match = Object.keys(nested).find((inner) => normalized(inner) === slipped)
    if (match !== undefined) return `${prefix}${name}.${match}`
  }
  return undefined
}

function isPlainObject(value: unknown): value is object {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours (`namesapce`) cost 1. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      rows[i]![j] = d
    }
  }
  return rows[a.length]![b.length]!
}

/**
 * Refuses a start that would leave the server open by a slip: a key within a slip of `apiKey`
 * (`apiKEy`, `api_key`, `apikey`) with a value, and no `apiKey`. An empty key already refuses to
 * start (fail closed, never open); a misspelt one must not do less. Every other unknown key is
 * only said, so a host that passes a spread config object still starts.
 */
export function refuseOpenByMistake(options: object, unknown: readonly UnknownOption[]): void {
  // `apiKey: false` says "open on purpose" (behind a gateway that checks keys itself).
  if ((options as { apiKey?: unknown }).apiKey !== undefined) return
  const slip = unknown.find((option) => option.suggestion === 'apiKey' && (options as Record<string, unknown>)[option.path] !== undefined)
  if (slip === undefined) return
  throw new Error(
    `[holdfast-server] invalid options: ${slip.path} is not an option (did you mean apiKey?); without apiKey every route is open to anyone. Give apiKey, or apiKey: false to run without a key on purpose`,
  )
}
