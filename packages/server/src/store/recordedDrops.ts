// The drops the store took (this relay's, and other relays' taken from it), kept to be written back
// at their version when the store comes back empty, and the write-back itself: see `recorded`.
// createSharedContexts wires them to its replica and to its retry of what is owed.
import { eachLimited } from '../eachLimited'
import type { LocalDocument, StoreReplica } from './storeReplica'

/** Options of {@link createRecordedDrops}. */
export interface RecordedDropsOptions {
  /** The replica the drops are written through (read at each write: it is made after these). */
  replica: () => StoreReplica
  /** The prefix of a context's key in the store. */
  prefix: string
  /** A write the store could not take: said (once until all are shared again). */
  unavailable: () => void
  /** Has the retry of what is owed scheduled. */
  retry: () => void
}

/** What {@link createRecordedDrops} returns: the drops kept and their write-back. */
export interface RecordedDrops {
  /** The drops the store took, by context, with the version it holds each at. */
  recorded: Map<string, { marker: LocalDocument; version: number }>
  /** Those a write-back could not write: written again with the owed answers. */
  recordedOwed: Set<string>
  /** The drops listed for a write-back until their write settles, by context (how many times listed). */
  dropsBack: Map<string, number>
  /** Writes one context's recorded drop back at its version. */
  writeDropBack(contextKey: string): Promise<unknown>
  /** Writes every recorded drop back, eight at a time. */
  writeDropsBack(): Promise<unknown>
}

/** Creates the recorded drops of one relay's shared contexts; see the file comment. */
export function createRecordedDrops({ replica, prefix, unavailable, retry }: RecordedDropsOptions): RecordedDrops {
  // The drops the store took (this relay's, and other relays' taken from it), by context, with the
  // version the store holds each at, bounded as the drop queue is. Written back at that version
  // when the store comes back (a Redis restarted empty), with the answers held: before, only the
  // answers were, and a relay that missed a drop (cut off from Redis meanwhile) wrote back the
  // answer from before it into the empty store, where a relay started in the upstream outage took
  // it and served the revoked user (200). At its own version, a later answer still wins over it,
  // and the answer from before it loses to it whichever is written first.
  const recorded = new Map<string, { marker: LocalDocument; version: number }>()
  // Those a write-back could not write (the store refusing, or gone again): written again, at
  // their version, with the owed answers.
  const recordedOwed = new Set<string>()
  const writeDropBack = async (contextKey: string) => {
    const drop = recorded.get(contextKey)
    if (!drop) return recordedOwed.delete(contextKey)
    // Only while it is the newest this relay has seen for the context (an answer written or taken
    // after it is written back in its stead, or stands in the store already).
    const current = () => (recorded.get(contextKey) === drop && (replica().version(prefix + contextKey) ?? drop.version) <= drop.version ? drop.marker : undefined)
    const outcome = await replica().publish(prefix + contextKey, current, undefined, Promise.resolve({ ok: true as const, value: drop.version }))
    if (outcome !== 'unavailable') return recordedOwed.delete(contextKey)
    unavailable()
    recordedOwed.add(contextKey)
    retry()
  }
  // The drops listed for a write-back (a Redis restarted empty) until their write settles: not in
  // the store until it says so. Before, `redis.unshared` read 0 while thousands waited their turn
  // (eight at a time) or were out to a stalled Redis, and a relay started meanwhile without a data
  // dir could take the answers from before them.
  const dropsBack = new Map<string, number>()
  const writeDropsBack = () => {
    const keys = [...recorded.keys()]
    for (const key of keys) dropsBack.set(key, (dropsBack.get(key) ?? 0) + 1)
    return eachLimited(keys, 8, async (key) => {
      try {
        await writeDropBack(key)
      } finally {
        const left = (dropsBack.get(key) ?? 1) - 1
        if (left > 0) dropsBack.set(key, left)
        else dropsBack.delete(key)
      }
    })
  }
  return { recorded, recordedOwed, dropsBack, writeDropBack, writeDropsBack }
}
