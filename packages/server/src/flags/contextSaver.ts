// Proxy mode's data dir: every held context in one generation (see persistence.ts), with the
// contexts an upstream 401/403 dropped, written after each change of content and otherwise now and
// then, so a restarted relay serves what it held and not what it dropped.
import { toContextRecord, type ContextCache, type HeldContext } from './contextCache'
import type { Persistence } from './persistence'
import type { RefusedInRun } from './records'
import { createSteadyClock } from './steadyClock'

// A saved generation after every content change, and otherwise at most this often (so the age a
// restarted relay reports is at most this much older than the truth, never younger).
const RESAVE_AFTER_MS = 30_000
// Contexts made into JSON at a time when the data dir is written (a few ms each slice).
const SAVE_SLICE = 500

/**
 * Creates the saver of `cache`'s contexts to `persistence`, and of `cleared()`, the contexts an
 * upstream 401/403 dropped with when (epoch ms; default none; see `clearedAt` in upstreamDrops.ts),
 * and of `refused()`, those refused in a `clear-after` run not yet due (default none; see `dueDrops`):
 * call it with whether the content changed (a change is always written; otherwise at most every
 * 30 s of `now`, epoch ms, a step back counting as no time).
 */
export function createContextSaver(persistence: Persistence, cache: Pick<ContextCache, 'entries'>, now: () => number, cleared: () => Array<[string, number]> = () => [], refused: () => RefusedInRun[] = () => []): (contentChanged: boolean) => void {
  // On the steady clock (see steadyClock.ts): set back an hour, the wall clock stopped the saves of
  // unchanged content for the hour, and a relay restarted then reported ages up to an hour too old.
  const steady = createSteadyClock(now)
  let lastSaveAt: number | undefined
  return (contentChanged) => {
    const at = steady()
    if (!contentChanged && lastSaveAt !== undefined && at - lastSaveAt < RESAVE_AFTER_MS) return
    lastSaveAt = at
    // The held answers as they are now, made into JSON a slice at a time between other work: in
    // one go, 10,000 contexts held the event loop ~120 ms (every request waited) each write.
    persistence.schedule(async () => {
      // Taken as the write starts (the newest state; a change meanwhile schedules the next write).
      const entries = cache.entries()
      const parts: string[] = []
      for (let i = 0; i < entries.length; i += SAVE_SLICE) {
        if (i > 0) await new Promise((resolve) => setImmediate(resolve))
        parts.push(entries.slice(i, i + SAVE_SLICE).map(([key, held]) => JSON.stringify(withStoreOrder(toContextRecord(key, held), held))).join(','))
      }
      // The contexts an upstream 401/403 dropped, and when: see `clearedAt` in upstreamDrops.ts.
      const drops = cleared().map(([key, at]) => ({ key, at }))
      const runs = refused()
      return `{"kind":"contexts","contexts":[${parts.join(',')}]${drops.length > 0 ? `,"cleared":${JSON.stringify(drops)}` : ''}${runs.length > 0 ? `,"refused":${JSON.stringify(runs)}` : ''}}`
    })
  }
}

// The data dir's record of an answer, with its place in the store's order (--redis): kept out of
// the body shared through the store, whose version says it there.
function withStoreOrder(record: ReturnType<typeof toContextRecord>, held: HeldContext) {
  if (held.storeVersion !== undefined) record.storeVersion = held.storeVersion
  else if (held.storeSince !== undefined) record.storeSince = held.storeSince
  return record
}
