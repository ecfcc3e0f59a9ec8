// The write-back of the answers a relay holds into its shared store (a Redis restarted empty, or
// at the start: those read back from the data dir), and what it says of recorded versions ahead of
// the store's clock. createSharedContexts wires it to its share and its replica.
import { eachLimited } from '../eachLimited'
import type { ServerLogger } from '../logger'
import type { SharedContextsOptions } from './sharedContextsOptions'
import type { StoreResult } from './sharedStore'
import type { LocalDocument, Published } from './storeReplica'

/**
 * The place in the store's order of a late answer whose own is not known (read back from a data
 * dir that recorded none: written without --redis, or before the store took it): the oldest, so
 * that any drop or answer whose place is known wins over it in the store, whichever is written
 * first. Before, it took a new version: written back first into a Redis restarted empty, it came
 * after another relay's drop of the user, whose write-back was then refused as older, and that
 * relay and every relay started in the upstream outage after took it and served the revoked user.
 * 0, below every ticket: a store of one's own may count its tickets from 1 (a SQL sequence, INCR),
 * and at 1 an upstream answer asked for with its first ticket met the stale answer at the same
 * version, where a store only renews what it holds ('refreshed'): the stale answer stayed, its
 * writer counted the new one shared, and every other relay served the stale one.
 */
const OLDEST_PLACE = 0

/** Options of {@link createHeldWriteBack}. */
export interface HeldWriteBackOptions {
  /** createSharedContexts' `share`: one answer written through the replica (late: at `place`, or read first). */
  share(contextKey: string, doc: LocalDocument | (() => LocalDocument | undefined), version: Promise<StoreResult<number>> | undefined, late: boolean, asked: number | undefined, place: number | undefined): Promise<Published | undefined>
  /** The newest store version seen here for the context hashed as `contextKey`. */
  version(contextKey: string): number | undefined
  /** What {@link SharedContextsOptions.held} says now (undefined without it). */
  held: () => ReturnType<NonNullable<SharedContextsOptions['held']>> | undefined
  log?: ServerLogger
}

/** What {@link createHeldWriteBack} returns. */
export interface HeldWriteBack {
  /** Writes `entries` (held answers) back, eight at a time. */
  writeHeld(entries: ReturnType<NonNullable<SharedContextsOptions['held']>>): Promise<void>
  /** Writes every held answer back, or only those read back from the data dir (`onlyLate`). */
  writeBack(onlyLate?: boolean): Promise<void>
  /** Answers read back from the data dir whose recorded version was ahead of the store's clock, since the start. */
  aheadOfStore(): number
}

/** Creates the write-back of one relay's held answers; see the file comment. */
export function createHeldWriteBack({ share, version, held, log }: HeldWriteBackOptions): HeldWriteBack {
  // Answers read back from the data dir whose recorded version was refused as ahead of the store's
  // clock (see `writeBack`), since the start.
  let aheadOfStore = 0
  // Every held answer, a few at a time (thousands must not flood the connection): one that the
  // store holds already only renews its TTL; one it lost is written again; one it holds newer is
  // taken instead (the replica's rules), never written over. Each is read when its turn comes, not
  // when the list is made: before, an answer dropped for a 401 while the write-back was under way
  // (seconds, with thousands held) was written after its drop marker, over it, with a newer place
  // in the store's order, and every relay started in the outage after served the revoked user.
  type Held = ReturnType<NonNullable<SharedContextsOptions['held']>>
  // Also what the retries write of the answers read back from the data dir (see `retryOwed`).
  const writeHeld = async (entries: Held) => {
    let ahead = 0
    await eachLimited(entries, 8, async ([key, doc, late, asked, placed]) => {
      const outcome = await share(key, doc, undefined, late === true, undefined, late ? (asked ?? OLDEST_PLACE) : undefined)
      // Written at a new version, not the data dir's (one no ticket of this store handed out): kept
      // at that one, the answer outranked every drop and answer the fleet wrote after it here.
      const at = version(key)
      if (late && asked !== undefined && (outcome === 'written' || outcome === 'refreshed') && at !== undefined && at < asked) {
        ahead++
        placed?.(at)
      }
      return outcome
    })
    // Said once per write-back, with the count (before: not a word, and an operator never learnt
    // the data dir held versions from the future: another Redis's, or a hand edit).
    if (ahead === 0) return
    aheadOfStore += ahead
    log?.warn(`${ahead} answer(s) read back from the data dir had a recorded store version ahead of this store's clock (written against another Redis, or edited by hand): not used, written back at a new version`)
  }
  const writeBack = (onlyLate = false) => writeHeld((held() ?? []).filter(([, , late]) => late || !onlyLate))
  return { writeHeld, writeBack, aheadOfStore: () => aheadOfStore }
}
