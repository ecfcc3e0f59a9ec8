// What the relay (upstreamSource.ts, relayOptions.ts) hands createSharedContexts: the store, the
// hook that takes another relay's answer, and the answers held here to write back.
import type { ServerLogger } from '../logger'
import type { SharedStore, StoredDocument } from './sharedStore'
import type { LocalDocument } from './storeReplica'

/** Options of {@link createSharedContexts}. */
export interface SharedContextsOptions {
  /**
   * The store the answers and drops are shared through (`createRedisStore` for `--redis`, or a
   * memory store shared by relays in one process). Required. Opened by {@link SharedContexts.start},
   * closed by {@link SharedContexts.stop} unless `closeStore` is false.
   */
  store: SharedStore
  /** Most contexts read from the store at start (and remembered). Default 10,000. */
  maxContexts?: number
  /**
   * Takes another relay's answer for the context hashed as `contextKey` into this relay's cache, or
   * its drop (a drop marker, `dropMarkerSchema` in records.ts: see {@link SharedContexts.dropped});
   * returns whether it did. Called only for a version newer than any this relay has seen for it.
   */
  take(contextKey: string, doc: StoredDocument): boolean | Promise<boolean>
  /**
   * The answers this relay holds from the upstream (got in this process, or taken from the store),
   * by context hash. Written back when the store comes back, so a Redis that restarted empty holds
   * them again, for a relay that starts while the upstream is down. Those marked `late` (read back
   * from the data dir: no place in the store's order is known for them) are written back at start
   * too, and only where the store holds nothing this relay takes instead. A document may be a
   * function, asked when its turn comes to be written (thousands go a few at a time): what is held
   * for that context then, or nothing (dropped meanwhile). `asked`: the store version the answer
   * was asked for at (its ticket), when known: written again late, anything newer than that in the
   * store wins over it; a late one without it is written back at the oldest place (version 0,
   * below any ticket), so any drop or answer whose place is known wins over it. `placed`: told the version a late answer
   * was written back at when it is not `asked` (a place the store cannot have handed out: see
   * `StoreReplica.publishLate`), so what is held orders by the version the store holds it at.
   * Default: none.
   */
  held?(): Array<[string, LocalDocument | (() => LocalDocument | undefined), late?: boolean, asked?: number, placed?: (version: number) => void]>
  /** Whether {@link SharedContexts.stop} closes the store (false for a store shared in-process). Default true. */
  closeStore?: boolean
  /**
   * Where the store's troubles are said: an answer or drop it could not take (once, then once it
   * took them all), drops let go at the bound or left at a stop, a write-back that failed, recorded
   * versions ahead of its clock, documents that could not be taken. Default: none (nothing said).
   */
  log?: ServerLogger
}
