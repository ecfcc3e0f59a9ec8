// Proxy mode (`--upstream`): while event streams are open (on this relay, or with `--redis` on any
// relay of the fleet), the held contexts are asked again every interval, and what a round (or
// another relay, through the store) found changed becomes a notice on the streams: spread over the
// recovery window when it ends a failing spell. The hub's `watchUpstream` (stream.ts) is this.
import type { FleetStreams, StreamHub } from './streamHub'

/** An update within this long of a failed read of the origin counts as the end of an outage. */
export const OUTAGE_MEMORY_MS = 60_000

/**
 * Answers another relay found changed come one context at a time (a round of thousands): those
 * taken within this long make one notice, not one per context.
 */
export const TAKEN_GATHER_MS = 250

/** What {@link watchUpstream} reads of its hub, at the moment it reads it. */
export interface WatchedHub {
  /** The hub's `notify`. */
  notify: StreamHub['notify']
  /** Streams open on this relay now. */
  open(): number
  /** Whether the hub was closed. */
  closed(): boolean
  /** The hub's clock of "an outage within the last minute" (ms, monotonic). */
  now(): number
}

/** {@link StreamHub.watchUpstream} on `hub` (see there); returns the stop function. */
export function watchUpstream(
  hub: WatchedHub,
  refresh: () => Promise<{ outcome: string; changed: string[]; answered?: number }>,
  everyMs: number,
  onTaken?: (listener: () => void) => () => void,
  fleet?: FleetStreams,
  onNews?: (listener: () => void) => () => void,
  again?: () => void,
): () => void {
  let failing = false
  // When a round last failed, as `follow` remembers an error: the change that ends the spell
  // may come a moment after this relay's own round found the upstream back (with --redis, as
  // an answer another relay got, taken from the store), and is spread all the same.
  let failedAt = -Infinity
  const spread = () => {
    const ends = failing || hub.now() - failedAt < OUTAGE_MEMORY_MS
    failedAt = -Infinity
    return ends
  }
  const failed = () => {
    failing = true
    failedAt = hub.now()
  }
  let running = false
  // Behind a load balancer a tab's stream and its bulk requests may be on different relays:
  // the change another relay found reaches this one only as an answer taken from the store,
  // after which this relay's own round finds nothing changed. Announced here, or never.
  let gather: ReturnType<typeof setTimeout> | undefined
  const gathered = () => {
    if (hub.closed() || hub.open() === 0) return
    gather ??= setTimeout(() => {
      gather = undefined
      hub.notify({ type: 'refetchEvaluation', lastModified: Math.floor(Date.now() / 1000) }, spread())
    }, TAKEN_GATHER_MS)
    gather.unref?.()
  }
  const untake = onTaken?.(gathered)
  // A round of 10,000 contexts at 2 s an answer lasts about 80 minutes: a change it finds in its
  // first answers went out as a notice only at its end.
  const unnews = onNews?.(gathered)
  const interval = Math.max(50, everyMs)
  // Said every interval, kept for three and a second more: a tick or two that Redis misses
  // does not stop the other relays' rounds, and they stop within that once the last stream closes.
  const signalTtl = 3 * interval + 1000
  const timer = setInterval(() => {
    if (hub.closed()) return
    const own = hub.open() > 0
    // Said even while a round runs: a round of thousands of contexts outlasts the signal, and
    // the other relays would stop asking theirs until it ended.
    if (own) fleet?.announce(signalTtl)
    // A round over thousands of contexts outlasts many ticks, and asks each once: a change made
    // for an open tab's user just after the round asked them waited for the round to end.
    if (running) again?.()
    if (running || (!own && !fleet)) return
    running = true
    ;(own ? Promise.resolve(true) : fleet!.anyOpen().catch(() => false))
      .then((open) => (open && !hub.closed() ? refresh() : undefined))
      .then((result) => {
        if (!result) return
        // Also from a round that ended failed (at an upstream that died halfway): the contexts
        // it did get are held now, so the next round sees no change in them to announce.
        if (result.changed.length > 0 && !onNews) hub.notify({ type: 'refetchEvaluation', lastModified: Math.floor(Date.now() / 1000) }, spread())
        // A round that ended at one context's failure while the upstream answered others in it
        // (a rule that crashes on one user's attributes) is no outage: counted as one, every
        // change found within a minute after such a round was spread over the recovery window
        // (0-10 s late, 5 s on average), for as long as the rounds kept meeting that context.
        if (result.outcome === 'failed' && !(result.answered! > 0)) failed()
        else failing = false
      })
      .catch(failed)
      .finally(() => (running = false))
  }, interval)
  timer.unref?.()
  const stop = () => {
    clearInterval(timer)
    clearTimeout(gather)
    untake?.()
    unnews?.()
  }
  return stop
}
