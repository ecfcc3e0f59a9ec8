// "This one context's rule crashes" and "the upstream is down" look the same from one context's
// 5xx: before, the rules of `fail` (upstreamMonitor.ts) took for one context's own an outage met by
// one active user while another context was answered last (`ok` for as long as it lasted, the
// breaker never open), and one met only by new users for its first 5 s. So when a failure is
// counted as one context's own (`alone` in `fail`), the upstream is asked once for another context
// it gave values: the one it answered last, else (that was the relay's own probe) the one whose
// user asked most recently, with its own forwarded credentials. Answered, the failure was that
// context's own; failing as an outage fails (5xx, HTML, no answer), it is an outage: `failing`, and
// the breaker opens on the two. At most one out at a time and one a second, never one per user's
// request. Not the relay's own probe context: a cache in front of a broken flag service answers
// that one, always the same. With no such context to ask (only the probe answered yet), the rules
// of `fail` decide alone.
// An attacker who makes up contexts gains nothing: the canary had values, and a made-up context
// failing alone stays its own while the canary is answered (before: for 5 s after an answer only).
// One who can make a context that had values crash later could open the breaker with two such
// contexts before, and can with one and the canary now: the same power. A canary that fails after
// another answer with values came in proves nothing: only the rules of `fail` apply then.
import type { HeldContext } from './contextCache'

/** At most one canary this often: 1,000 ms. */
export const CANARY_EVERY_MS = 1000

/** What a canary asks with: the context a user asked for, and the headers forwarded with it. */
export type CanaryRequest = NonNullable<HeldContext['request']>

/**
 * The context to ask instead of `failedKey`: the one answered last (`answeredKey`) when it is
 * another held with its request, else the most recent of the last 16 users' (`askedBy`, in the
 * order they asked) held with a request. None: undefined.
 */
export function pickCanary(failedKey: string, answeredKey: string | undefined, get: (key: string) => HeldContext | undefined, askedBy: ReadonlyMap<string, number>): [string, CanaryRequest] | undefined {
  const last = answeredKey !== undefined && answeredKey !== failedKey ? get(answeredKey) : undefined
  if (last?.request) return [answeredKey!, last.request]
  const keys = [...askedBy.keys()]
  for (let i = keys.length - 1; i >= Math.max(0, keys.length - 16); i--) {
    const request = keys[i] === failedKey ? undefined : get(keys[i])?.request
    if (request) return [keys[i], request]
  }
  return undefined
}

/** What {@link createCanary} needs from the proxy source. */
export interface CanaryOptions {
  /** Whether the source is closed (no canary goes out then). */
  closed: () => boolean
  /** The context to ask instead of the one that failed (see {@link pickCanary}). */
  pick: (failedKey: string) => [string, CanaryRequest] | undefined
  /** Asks the upstream for `key` as a re-ask (shared with a user's request already out for it). */
  ask: (key: string, request: CanaryRequest) => Promise<unknown>
  /** How many answers with values (or 304) came in so far: one meanwhile makes the canary prove nothing. */
  heard: () => number
  /** After the canary's answer: whether it failed as an outage fails (the breaker closed, `key` among its failures). */
  failed: (key: string) => boolean
  /** The canary failed too: `failedKey`'s failure is an outage's (the breaker opens on the two). */
  down: (failedKey: string) => void
}

/** The canary: call it with a failure counted as one context's own and the relay's clock (epoch ms). */
export interface Canary {
  (failedKey: string, at: number): Promise<void>
  /**
   * Whether `key` is the context a canary is asking, with nothing answered since it went out: its
   * failure is then not its own (it was asked to tell an outage; before, with only the relay's probe
   * answered since a restart, it was taken for its own too, and the breaker opened while the state
   * said `ok`).
   */
  asking(key: string | undefined): boolean
}

/** Creates the canary (see {@link Canary}). */
export function createCanary(options: CanaryOptions): Canary {
  // When the latest went out (the relay's clock; one set back since is no wait), the context it asks
  // while one is out, and `heard` as it went out.
  let canaryAt = -Infinity
  let out: string | undefined
  let since = 0
  const canary = async (failedKey: string, at: number) => {
    if (options.closed() || out !== undefined || (at - canaryAt < CANARY_EVERY_MS && at >= canaryAt)) return
    const target = options.pick(failedKey)
    if (!target) return
    const [canaryKey, request] = target
    out = canaryKey
    since = options.heard()
    canaryAt = at
    try {
      await options.ask(canaryKey, request)
      if (!options.closed() && options.heard() === since && options.failed(canaryKey)) options.down(failedKey)
    } finally {
      out = undefined
    }
  }
  return Object.assign(canary, { asking: (key: string | undefined) => key !== undefined && key === out && options.heard() === since })
}
