import { createHash } from 'node:crypto'
import type { ServerLogger } from '../logger'
import type { SharedStore, StoredDocument, StoreResult } from './sharedStore'
import { eachLimited } from '../eachLimited'
import { setBounded } from '../lru'

/** A document as this relay holds it, before the store gives it a version. */
export interface LocalDocument {
  /** The document's text, as served. */
  body: string
  /** Epoch ms when the upstream last vouched for it. */
  fetchedAt: number
  /** The upstream's ETag for it, when it sent one. */
  etag?: string
  /** Its lineage (see `StoredDocument.lineage`), written with it. Default: none. */
  lineage?: string
}

/** What became of a document offered to the store (see {@link StoreReplica.publish}). */
export type Published = 'written' | 'refreshed' | 'older' | 'fenced' | 'unavailable'

/** Options of {@link createStoreReplica}. */
export interface StoreReplicaOptions {
  /** The shared store documents are read from and written to. Required. */
  store: SharedStore
  /**
   * Takes a newer document that another relay wrote (or that was in the store at start) into
   * service. Return false to refuse it (invalid, shrunken: the relay's own rules); it is then not
   * counted as seen and is offered again if it is still the newest after the next notice.
   */
  accept: (key: string, doc: StoredDocument) => boolean | Promise<boolean>
  /** Which keys to read at start and after the store returns, at most `limit`. Default: `['definitions']`. */
  initialKeys?:
    | {
        /** Every key starting with this is read. */
        prefix: string
        /** At most this many of them. */
        limit: number
      }
    | string[]
  /** Most keys whose last seen version is remembered (least recently used go first). Default 10,000. */
  maxKeys?: number
  /**
   * With a list of `initialKeys`: how often their versions are checked (one cheap read each), in
   * case a notice was lost (a subscription that broke while commands still worked). Default 5000 ms;
   * 0 turns it off.
   */
  checkEveryMs?: number
  /**
   * Called once what the store holds was read again after it came back (a `connected` notice):
   * the moment to write back what the store may have lost (a Redis restarted empty). Default: none.
   */
  onReread?: () => void
  /** Where failures to take a document are reported. Default: none (not reported). */
  log?: ServerLogger
}

/** Keeps this relay and the shared store in step: see {@link createStoreReplica}. */
export interface StoreReplica {
  /** Reads what the store holds and listens for changes. Idempotent; resolves when the first read settled. */
  start(): Promise<void>
  /**
   * After a successful upstream answer (changed or not): writes `local` under `key` with a new
   * version when it differs from what the store holds, or renews the stored one's TTL (which also
   * puts it back into a Redis that was flushed or restarted empty). With `lease`, only while that
   * owner holds the lease (else `fenced`, and what the store holds is taken when newer). Never
   * rejects; never awaited by a request. `version`: a ticket taken earlier (when the upstream was
   * asked), used for a changed document instead of a new one, so that an answer asked for earlier
   * but shared later loses to one asked for later (and this relay takes that one instead).
   * `local` may be a function, asked only when it is this call's turn (after the writes queued
   * before it for `key`): what the relay holds by then; nothing is written when it gives nothing.
   */
  publish(key: string, local: LocalDocument, lease?: string, version?: Promise<StoreResult<number>>): Promise<Published>
  publish(key: string, local: () => LocalDocument | undefined, lease?: string, version?: Promise<StoreResult<number>>): Promise<Published | undefined>
  /**
   * {@link publish} for an answer that could not be shared when it came (the store was slow or
   * down), without its early ticket: reads the store first, and takes a version there that this
   * relay has not seen instead of writing over it (that one may have been asked for later, by a
   * relay whose notice was missed). Otherwise as `publish` (with `lease`, only while it is held).
   * `local` may be a function, asked only when it is this call's turn (after the reads and takes
   * queued before it): what the relay serves by then; nothing to write when it gives nothing.
   * `since`: the newest version this relay had seen when it asked for `local`. A version taken
   * after that (it may have been asked for later) wins: it is taken again, and nothing is written.
   * `place`: the version `local` had in the store's order, when known (an answer read back from the
   * data dir): written at that version, not a new one, so a version written after it (a drop, a
   * later answer) wins over it in the store whichever is written first. A `place` after a ticket
   * taken then (no ticket of this store handed it out) is not used: a new version is.
   */
  publishLate(key: string, local: LocalDocument | (() => LocalDocument | undefined), lease?: string, since?: number, place?: number): Promise<Published | undefined>
  /**
   * Looks at the version the store holds for `key` (one cheap read) and takes the document when it
   * is newer than any seen here: for a notice that never came (Redis refused to publish it, or it
   * was lost). Never rejects.
   */
  check(key: string): Promise<void>
  /** The newest version seen for `key` (written by this relay or taken from the store). */
  version(key: string): number | undefined
  /** Documents taken from the store so far (written by other relays). */
  taken(): number
  /**
   * What this relay already holds for `key` from before a restart (its data dir), with the version
   * it had in the store: only a newer version is taken from the store. Call before {@link start}.
   */
  seed(key: string, doc: StoredDocument): void
  /** Stops listening for the store's notices and the periodic checks; idempotent. */
  stop(): void
}

/**
 * The follower's half (take newer documents from the store: at start, on every `changed` notice,
 * and after the store comes back, since notices may have been missed) and the writer's half
 * (publish after each successful poll). A document goes into service only when its version is
 * newer than the newest one this relay has seen for that key, so a late or replayed notice can
 * never move a relay back to an older version.
 */
export function createStoreReplica(options: StoreReplicaOptions): StoreReplica {
  const { store, log } = options
  const maxKeys = options.maxKeys ?? 10_000
  // key → the newest document seen: its version, and a hash of its body to tell an unchanged poll
  // from a change (not the body: in proxy mode that would hold every answer twice).
  const seen = new Map<string, Seen>()
  const chains = new Map<string, Promise<unknown>>()
  let taken = 0
  let started: Promise<void> | undefined
  let unsubscribe: (() => void) | undefined
  let checker: ReturnType<typeof setInterval> | undefined
  // key → the version this relay refused, so the periodic check does not offer it again and again.
  const refused = new Map<string, number>()

  const remember = (key: string, doc: StoredDocument, hash = digest(doc.body)) => {
    setBounded(seen, key, { version: doc.version, fetchedAt: doc.fetchedAt, etag: doc.etag, hash }, maxKeys)
  }

  // Per key, one store operation at a time, so a slow read cannot land after a newer write.
  const serial = <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const next = (chains.get(key) ?? Promise.resolve()).then(work, work)
    const settled = next.catch(() => undefined)
    chains.set(key, settled)
    void settled.then(() => {
      if (chains.get(key) === settled) chains.delete(key)
    })
    return next
  }

  // At most one read waiting per key: a flood of notices (junk published on the channel, or a
  // burst of writes) costs a read or two, not one per notice.
  const waiting = new Map<string, Promise<void>>()
  const pull = (key: string): Promise<void> => {
    const queued = waiting.get(key)
    if (queued) return queued
    const next = serial(key, () => {
      waiting.delete(key)
      return pullNow(key)
    })
    waiting.set(key, next)
    return next
  }
  // Only the keys this relay reads at all: a notice for any other key is not worth a read.
  const wanted = (key: string) => {
    const initial = options.initialKeys ?? ['definitions']
    return Array.isArray(initial) ? initial.includes(key) : key.startsWith(initial.prefix)
  }

  // Takes what the store holds for `key` when it is newer than what this relay has seen; with
  // `again`, also when seen already (this relay has since put something older into service).
  const pullNow = async (key: string, again = false): Promise<void> => {
    const result = await store.get(key)
    if (!result.ok || !result.value) return
    const doc = result.value
    const held = seen.get(key)
    if (held && held.version >= doc.version && !again) return
    const hash = digest(doc.body)
    let accepted = false
    try {
      accepted = (!again && held?.hash === hash) || (await options.accept(key, doc))
    } catch (error) {
      log?.error(`taking ${key} from the store failed: ${(error as Error).message}`)
    }
    if (!accepted) {
      refused.set(key, doc.version)
      return
    }
    refused.delete(key)
    if (held?.hash !== hash) taken++
    remember(key, doc, hash)
  }

  const check = async (key: string) => {
    const result = await store.peek(key)
    if (!result.ok || result.value === undefined || result.value === refused.get(key)) return
    if (result.value > (seen.get(key)?.version ?? -Infinity)) await pull(key)
  }

  const pullAll = async () => {
    const initial = options.initialKeys ?? ['definitions']
    let keys: string[]
    if (Array.isArray(initial)) keys = initial
    else {
      const listed = await store.keys(initial.prefix, initial.limit)
      if (!listed.ok) return
      keys = listed.value
    }
    // A few at a time: thousands of contexts must not flood the connection (or its queue).
    await eachLimited(keys, 8, pull)
  }

  const publishNow = async (key: string, local: LocalDocument, lease?: string, version?: Promise<StoreResult<number>>): Promise<Published> => {
    const held = seen.get(key)
    let doc: StoredDocument
    const lineage = local.lineage ? { lineage: local.lineage } : {}
    if (held && held.hash === digest(local.body)) doc = { version: held.version, fetchedAt: held.fetchedAt, body: local.body, ...(held.etag === undefined ? {} : { etag: held.etag }), ...lineage }
    else {
      const early = version && (await version)
      const ticket = early?.ok ? early : await store.ticket()
      if (!ticket.ok) return 'unavailable' as const
      doc = { version: ticket.value, fetchedAt: local.fetchedAt, body: local.body, ...(local.etag ? { etag: local.etag } : {}), ...lineage }
    }
    const result = await store.put(key, doc, lease)
    if (!result.ok) return 'unavailable' as const
    if (result.value.outcome === 'fenced') {
      // Another relay leads now: what it published (if anything yet) is what counts.
      await pullNow(key)
      return 'fenced' as const
    }
    if (result.value.outcome !== 'older') {
      remember(key, doc)
      return result.value.outcome
    }
    // Another relay wrote a newer version meanwhile (this one was cut off, or had just lost
    // the lease): that one wins; take it.
    const newer = result.value.current
    // Taken again even when seen: an answer asked for earlier may have replaced it here since.
    await pullNow(key, version !== undefined)
    if ((seen.get(key)?.version ?? -Infinity) >= newer) return 'older' as const
    // …unless this relay refuses it (invalid, empty, gutted: written by hand or by a broken
    // peer). Then what this relay polls replaces it, or the junk would stay there for good.
    const ticket = await store.ticket()
    if (!ticket.ok) return 'unavailable' as const
    const replacement = { ...doc, version: ticket.value }
    const again = await store.put(key, replacement, lease)
    if (!again.ok) return 'unavailable' as const
    if (again.value.outcome === 'written') remember(key, replacement)
    return again.value.outcome
  }

  return {
    start() {
      started ??= (async () => {
        store.open()
        unsubscribe = store.subscribe((notice) => {
          if (notice.type === 'changed' && wanted(notice.key)) {
            const held = seen.get(notice.key)
            if (!held || held.version < notice.version) void pull(notice.key)
          } else if (notice.type === 'connected') void pullAll().then(() => options.onReread?.())
        })
        const every = options.checkEveryMs ?? 5000
        const fixed = options.initialKeys ?? ['definitions']
        if (every > 0 && Array.isArray(fixed)) {
          checker = setInterval(() => {
            for (const key of fixed) void check(key)
          }, every)
          checker.unref?.()
        }
        await pullAll()
      })()
      return started
    },
    publish: ((key: string, local: LocalDocument | (() => LocalDocument | undefined), lease?: string, version?: Promise<StoreResult<number>>) =>
      serial(key, async () => {
        const doc = typeof local === 'function' ? local() : local
        return doc && publishNow(key, doc, lease, version)
      })) as StoreReplica['publish'],
    publishLate: (key, local, lease, since, place) =>
      serial(key, async () => {
        const before = seen.get(key)?.version ?? -Infinity
        if (since !== undefined && before > since) {
          // Taken again even when seen: this relay may have put `local` into service over it.
          await pullNow(key, true)
          return 'older' as const
        }
        // A version this relay had not seen may be newer than what it holds (asked for later by
        // another relay, whose notice was missed): it is taken, and nothing is written over it.
        await pullNow(key)
        if ((seen.get(key)?.version ?? -Infinity) > before) return 'older' as const
        const doc = typeof local === 'function' ? local() : local
        if (!doc) return doc
        if (place === undefined) return publishNow(key, doc, lease)
        // `place` is read from a file (the data dir): one this store cannot have handed out yet
        // (after a ticket taken now: a data dir written against another Redis whose clock ran
        // ahead, or edited by hand) was written, but read as nothing by every relay (READ, PUT:
        // no ticket handed it out), while this one counted it shared. Such an answer takes a new
        // version instead, as any late answer without one.
        const ticket = await store.ticket()
        if (!ticket.ok) return 'unavailable' as const
        return publishNow(key, doc, lease, Promise.resolve(place <= ticket.value ? { ok: true as const, value: place } : ticket))
      }),
    check: (key) => check(key).catch(() => undefined),
    version: (key) => seen.get(key)?.version,
    taken: () => taken,
    seed: (key, doc) => remember(key, doc),
    stop() {
      unsubscribe?.()
      unsubscribe = undefined
      clearInterval(checker)
    },
  }
}

interface Seen {
  version: number
  fetchedAt: number
  etag?: string
  hash: string
}

function digest(body: string): string {
  return createHash('sha256').update(body).digest('base64')
}
