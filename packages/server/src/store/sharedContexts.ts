import type { SharedTicket, StoreResult, StoreStatus } from './sharedStore'
import { createStoreReplica, type LocalDocument } from './storeReplica'
import { eachLimited } from '../eachLimited'
import { setBounded } from '../lru'
import { createBackoffTimer } from '../backoffTimer'
import { DROP_MARKER_PREFIX } from '../flags/records'
import { createDropKeeper } from './dropKeeper'
import { createDropQueue } from './dropQueue'
import { createHeldWriteBack } from './heldWriteBack'
import { createMissedLookups } from './missedLookups'
import { createRecordedDrops } from './recordedDrops'
import type { SharedContextsOptions } from './sharedContextsOptions'

/** The relay's side of a shared store in proxy mode: see {@link createSharedContexts}. */
export interface SharedContexts {
  /** Connects and reads the answers the store holds. Resolves once that read settled. */
  start(): Promise<void>
  /**
   * A place in the store's order, taken when an upstream request goes out and handed to
   * {@link answered} with its answer, so answers are ordered by when they were asked for. Never
   * rejects; a failed one is replaced by a ticket taken when the answer is shared.
   */
  ticket(): SharedTicket
  /** After a good upstream answer for a context: shares it (fire and forget; never blocks the request). */
  answered(contextKey: string, doc: { body: string; fetchedAt: number; etag?: string }, version?: SharedTicket): void
  /**
   * An upstream 401/403 dropped this context's values here (`--on-upstream-unauthorized clear`):
   * writes `marker` (a drop marker, `dropMarkerSchema` in records.ts) in its place, at the drop's
   * place in the store's order (`version`, a ticket taken at the drop), so no relay, restarted or
   * new, takes the answer from before the drop; one asked for after it is written over it. Fire and
   * forget; written again (read first: a newer answer there stands) while the store cannot take it,
   * until this context is answered here again. Optional.
   */
  dropped?(contextKey: string, marker: { body: string; fetchedAt: number }, version?: SharedTicket): void
  /**
   * Says, for `ttlMs`, that event streams are open on this relay (fire and forget). Behind a load
   * balancer a tab's stream may be on one relay and its bulk requests on another: only that other
   * relay knows the context (the store holds hashes), so it must re-ask while a stream is open
   * anywhere in the fleet, not only on itself. Optional.
   */
  streamsOpen?(ttlMs: number): void
  /** Whether some relay of the fleet said {@link streamsOpen} within its TTL; false when the store cannot say. Optional. */
  fleetStreamsOpen?(): Promise<boolean>
  /**
   * The upstream failed this context's request (or was not asked: the breaker, a pause): the store
   * is asked, in the background, whether it holds a newer answer for it than this relay (another
   * relay's, whose notice never came: Redis refused to publish it, or it was lost), and that one is
   * taken for the next request. At most once per context every 5 s, 8 at a time, 100 a second in all. Optional.
   */
  missed?(contextKey: string): void
  /** The newest store version seen here for the context hashed as `contextKey` (written or taken). */
  version(contextKey: string): number | undefined
  /**
   * The store's connection, answers taken from other relays (their drops not counted), answers
   * and drops not yet shared (being retried), and answers read back from the data dir whose
   * recorded version was ahead of the store's clock (written back at a new version instead).
   */
  status(): StoreStatus & { taken: number; unshared: number; aheadOfStore: number }
  /**
   * Stops the retries and the store's notices, first writing the drops still waiting for their
   * first write while the store is usable (for at most 2 s: a stalled store must not hold the
   * close), and says in the log how many drops were left unrecorded; then closes the store unless
   * `closeStore` is false. Answers still owed (being retried) are not written. Resolves once the
   * store is closed; never rejects.
   */
  stop(): Promise<void>
}

export type { SharedTicket } from './sharedStore'

const PREFIX = 'context:'
const STREAMS_OPEN = 'streams-open'
/** {@link SharedContexts.stop}: how long the drops still waiting may take to be written. */
const STOP_DRAIN_MS = 2000

/**
 * Per-context answers shared through a store (proxy mode with `--redis`): every relay forwards
 * its own requests (only the relay that receives a request knows the context), shares each good
 * answer, and takes the others' answers as they are announced — so a context one relay has seen
 * can be answered by every relay when the upstream goes down. Keys are the relay's context hashes
 * (context + forwarded credentials), never a raw context or token.
 */
export function createSharedContexts(options: SharedContextsOptions): SharedContexts {
  const { store, log } = options
  const max = options.maxContexts ?? 10_000
  let taken = 0
  // Every held answer written back (see heldWriteBack.ts); also what the retries write of the
  // answers read back from the data dir (see `retryOwed`).
  const { writeHeld, writeBack, aheadOfStore } = createHeldWriteBack({
    share: (contextKey, doc, version, late, asked, place) => share(contextKey, doc, version, late, asked, place),
    version: (contextKey) => replica.version(PREFIX + contextKey),
    held: () => options.held?.(),
    log,
  })

  // Answers that could not be shared (Redis slow, refusing, or not yet connected): shared again
  // from what is held then, with backoff, until the store takes them. Without this, an answer
  // met by a Redis that stalled for a second without dropping the connection (no `connected`
  // notice, so no write-back) stayed out of the store until the context's next upstream answer,
  // and a relay started in an upstream outage could not serve it. Shared late, an answer has no
  // early ticket to order it: what the store holds that this relay has not seen is taken instead
  // of written over (it may have been asked for later, by a relay whose notice was missed here).
  const owed = new Set<string>()
  // The drops the store could not take (see `dropped`), by context, bounded as `owed` is. Forgotten
  // when the context is answered here again: that answer is newer than the drop.
  const owedDrops = new Map<string, LocalDocument>()
  // Writes are not sent to a store known to be down: each would only time out in turn. One that
  // answers but refused something (OOM, BUSY) says down for up to 30 s after it last refused (see
  // redisStatus.ts): asked only while up, it was not asked again in that time, and an answer it
  // could not take stayed out of it for 30-60 s after it could.
  const usable = () => store.status().state === 'up' || store.answering?.() === true
  let warned = false
  // `place`: a late answer's own version in the store's order (read back from the data dir with
  // it), written at that version: at a new one, the answer from before another relay's drop, read
  // back by a relay that missed the drop and written back into a Redis restarted empty before the
  // drop was, came after it in the store's order, and the drop written back after lost to it.
  const share = async (contextKey: string, doc: LocalDocument | (() => LocalDocument | undefined), version?: SharedTicket, late = false, asked?: number, place?: number) => {
    const read = typeof doc === 'function' ? doc : () => doc
    const outcome = await (late ? replica.publishLate(PREFIX + contextKey, read, undefined, asked, place) : replica.publish(PREFIX + contextKey, read, undefined, version))
    if (outcome !== 'unavailable') {
      owed.delete(contextKey)
      return outcome
    }
    if (!warned) log?.warn(`could not share an answer through the store (${store.status().lastError ?? 'unavailable'}); trying again`)
    warned = true
    owed.delete(contextKey)
    owed.add(contextKey)
    if (owed.size > max) owed.delete(owed.values().next().value!)
    retry.schedule()
    return outcome
  }
  // A drop marker, with the drop's ticket (written again late without one: `publishLate` reads the
  // store first, and a newer answer another relay wrote there stands).
  const shareDrop = async (contextKey: string, marker: LocalDocument, version?: SharedTicket) => {
    const outcome = await (version ? replica.publish(PREFIX + contextKey, marker, undefined, version) : replica.publishLate(PREFIX + contextKey, () => (owedDrops.get(contextKey) === marker ? marker : undefined)))
    if (outcome !== 'unavailable') {
      if (owedDrops.get(contextKey) === marker) owedDrops.delete(contextKey)
      // In the store now, at the version the replica just wrote (or found) it at: kept for a store
      // that comes back empty (see `recorded`).
      const at = replica.version(PREFIX + contextKey)
      if ((outcome === 'written' || outcome === 'refreshed') && at !== undefined) setBounded(recorded, contextKey, { marker, version: at }, max)
      return
    }
    if (!warned) log?.warn(`could not record a dropped context in the store (${store.status().lastError ?? 'unavailable'}); trying again`)
    warned = true
    keepDrop(owedDrops, contextKey, marker)
    retry.schedule()
  }
  // The drops the store took, kept to be written back at their version (see recordedDrops.ts).
  const { recorded, recordedOwed, dropsBack, writeDropBack, writeDropsBack } = createRecordedDrops({
    replica: () => replica,
    prefix: PREFIX,
    unavailable: () => {
      if (!warned) log?.warn(`could not record a dropped context in the store (${store.status().lastError ?? 'unavailable'}); trying again`)
      warned = true
    },
    retry: () => retry.schedule(),
  })
  // The drops the store has not taken yet, each context once, whichever state it is in: waiting
  // for a turn, out, owed (refused, retried), and written back while still this relay's word for
  // the context (answered or dropped here again since, it is counted as that, or shared).
  const dropsUnshared = () => {
    const keys = new Set([...queue.keys(), ...owedDrops.keys(), ...recordedOwed])
    for (const key of dropsBack.keys()) if (recorded.has(key)) keys.add(key)
    return keys.size
  }
  // A drop let go at the bound of those waiting: counted and said (see dropKeeper.ts).
  const { keepDrop, sayLetGo } = createDropKeeper(max, log)
  // The drops waiting for their first write, eight at a time (see dropQueue.ts).
  const queue = createDropQueue({ write: shareDrop, keep: keepDrop })
  // After 1 s, doubling to 30 s while the store keeps failing; from 1 s again once all are shared.
  const retry = createBackoffTimer(() => void retryOwed())
  const retryOwed = async () => {
    // A store known to be down would only time out each write in turn: wait for it (the
    // heartbeat says when it answers again; a reconnect writes everything back anyway).
    if (!usable()) return retry.schedule()
    // Answers dropped from the cache meanwhile are no longer owed. The others stay owed until the
    // store takes them (share() says): cleared first, the count read 0 while the writes were on
    // their way, or about to fail again.
    const due = (options.held?.() ?? []).filter(([key]) => owed.has(key))
    const dueKeys = new Set(due.map(([key]) => key))
    for (const key of owed) if (!dueKeys.has(key)) owed.delete(key)
    // By the version each was asked for at, where known: a version the store took after it (a drop
    // marker, another relay's later answer) wins. Before, written late with a new ticket, an answer
    // asked for before another relay's drop was written over the drop, and every relay took it.
    await eachLimited(due.filter(([, , late]) => !late), 8, ([key, doc, , asked]) => share(key, doc, undefined, true, asked))
    // Those read back from the data dir at their place, as the write-back writes them (the data
    // dir's, or the oldest where it knows none). Before, a write-back refused (a full Redis at the
    // start) was written again here at a new version: after another relay's drop the answer had
    // missed, whose write-back then lost to it, and that relay and every relay started in the
    // upstream outage after took the answer from before the drop and served the revoked user.
    await writeHeld(due.filter(([, , late]) => late))
    const drops = [...owedDrops]
    await eachLimited(drops, 8, ([key, marker]) => shareDrop(key, marker))
    const back = [...recordedOwed]
    await eachLimited(back, 8, writeDropBack)
    if (owed.size > 0 || owedDrops.size > 0 || recordedOwed.size > 0) return
    retry.reset()
    // Named apart: a drop is no answer (before, drops alone read "shared the 0 answer(s)").
    const what = [due.length > 0 && `the ${due.length} answer(s)`, drops.length + back.length > 0 && `the ${drops.length + back.length} dropped context(s)`].filter(Boolean).join(' and ')
    if (warned && what) log?.info(`shared ${what} the store could not take before`)
    warned = false
  }
  const replica = createStoreReplica({
    store,
    log,
    maxKeys: max,
    initialKeys: { prefix: PREFIX, limit: max },
    // The drops first (a few, usually), then the answers: each at its place in the store's order.
    onReread: () => void writeDropsBack().then(() => writeBack(false)).catch((error: unknown) => log?.error(`writing back to the store failed: ${(error as Error)?.message ?? String(error)}`)),
    async accept(key, doc) {
      if (!key.startsWith(PREFIX)) return false
      const took = await options.take(key.slice(PREFIX.length), doc)
      // Another relay's drop (a marker) is no answer taken: a revoked key's thousands of drops
      // counted as thousands of answers shared (`redis.taken`, holdfast_redis_documents_taken_total).
      const marker = doc.body.startsWith(DROP_MARKER_PREFIX)
      if (took && !marker) taken++
      // Another relay's drop is written back by this one too (that relay may be gone); an answer
      // taken after a drop ends it here.
      if (took && marker) setBounded(recorded, key.slice(PREFIX.length), { marker: { body: doc.body, fetchedAt: doc.fetchedAt }, version: doc.version }, max)
      else if (took) recorded.delete(key.slice(PREFIX.length))
      return took
    },
  })
  return {
    async start() {
      store.open()
      await store.connected(2000)
      await replica.start()
      // The store's first `connected` went out before the replica listened: the answers read back
      // from the data dir (newer than the store's, or ones it lost) are offered now.
      void writeBack(true).catch((error: unknown) => log?.error(`writing back to the store failed: ${(error as Error)?.message ?? String(error)}`))
    },
    ticket: () => store.ticket(),
    answered(contextKey, doc, version) {
      recorded.delete(contextKey)
      recordedOwed.delete(contextKey)
      owedDrops.delete(contextKey)
      queue.delete(contextKey)
      void share(contextKey, doc, version)
    },
    dropped(contextKey, marker, version) {
      recorded.delete(contextKey)
      recordedOwed.delete(contextKey)
      owedDrops.delete(contextKey)
      queue.add(contextKey, marker, version)
    },
    // Not asked of a store known to be down: each would only fail (and count as a failure).
    streamsOpen(ttlMs) {
      if (usable()) void store.raise?.(STREAMS_OPEN, ttlMs)
    },
    async fleetStreamsOpen() {
      if (!usable()) return false
      const result = await store.raised?.(STREAMS_OPEN)
      return result?.ok === true && result.value
    },
    // Looked up in the background, within the bounds of missedLookups.ts.
    missed: createMissedLookups({ max, usable, check: (contextKey) => replica.check(PREFIX + contextKey) }),
    version: (contextKey) => replica.version(PREFIX + contextKey),
    status: () => ({ ...store.status(), taken, unshared: owed.size + dropsUnshared(), aheadOfStore: aheadOfStore() }),
    async stop() {
      retry.stop()
      // The drops still waiting are written before the store closes, for at most STOP_DRAIN_MS (a
      // store that stalls must not hold the close); those left are said. Before, the queue was
      // cleared without a word: a re-ask round's drops of a revoked key, thousands written eight at
      // a time, were lost at a restart, and a relay started without a data dir in the outage after
      // took the answers from before them and served the revoked users.
      if (queue.pending() > 0 && usable()) await queue.drain(STOP_DRAIN_MS)
      sayLetGo()
      const left = queue.pending() + owedDrops.size
      if (left > 0) log?.warn(`stopping with ${left} dropped context(s) not recorded in the store (${store.status().lastError ?? 'not written yet'}): a relay started without a data dir may take their answers from before the drop`)
      queue.clear()
      replica.stop()
      if (options.closeStore !== false) await store.close()
    },
  }
}
