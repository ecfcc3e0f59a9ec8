// Storage wrapped so it cannot throw: a failed read is a miss, a failed write is logged, and the
// first failure of IndexedDB (private mode, quota, a blocked open, a full disk) moves the client
// to memory and says so through `onFallback`. IndexedDB is tried again right after, then at most
// once a minute (see `recover`): a stall passes, and the page goes back to it with what it wrote meanwhile.
import { createStore as createIdbStore, promisifyRequest as done, type UseStore } from 'idb-keyval'
import type { FlagStorage, Logger } from '../types'
import { EVENT_PREFIX } from '../events/eventKey'

/** A `FlagStorage` on a plain `Map` (a new one by default): values live as long as the page. */
export function createMemoryStorage(map = new Map<string, unknown>()): FlagStorage {
  return {
    get: async (key) => map.get(key),
    set: async (key, value) => void map.set(key, value),
    del: async (key) => void map.delete(key),
    keys: async () => [...map.keys()],
  }
}

/**
 * A `FlagStorage` on IndexedDB through idb-keyval: database `name`, one object store. The database
 * is opened on first use, not here, so creating a client touches nothing. The connection is let go
 * when another script deletes or upgrades the database (idb-keyval's own store would keep it, and
 * that script would wait, `blocked`, for as long as the page lives), and by `close()` once no
 * operation is out; a use after `close()` opens it again and lets it go when done.
 */
export function createIndexedDbStorage(name: string): FlagStorage & { close(): void } {
  let store: UseStore | undefined
  /** Closes the connection last opened (once it is open) and forgets it. */
  let drop: (() => void) | undefined
  // After close(), an operation (a logout's clearCache(), a send that was on its way) opens the
  // connection again: it is let go once no operation is out, or the closed client kept it.
  let busy = 0
  let closed: unknown
  // Each operation is one transaction, as idb-keyval's get/set/getMany… make it; written here on its
  // store so the bundle carries one copy of them, without idb-keyval's default-database fallback
  // (a second store, `keyval-store`, that this client never uses). `getAllKeys` is in every browser
  // since 2017 (idb-keyval's cursor fallback was for older ones).
  const on = <T>(mode: IDBTransactionMode, run: (s: IDBObjectStore) => T | PromiseLike<T>) => {
    if (!store) {
      const made = (store = createIdbStore(name, 'keyval'))
      made('readonly', ({ transaction: { db } }) => (drop = db.onversionchange = () => (db.close(), store === made && (store = undefined)))).catch(() => {})
    }
    busy++
    return store(mode, run).finally(() => --busy || (closed && drop?.()))
  }
  const read = <T>(run: (s: IDBObjectStore) => Promise<T>) => on('readonly', run)
  // Until the transaction completes, and what `run` waits for (`update`'s put) too: its failure fails the write.
  const write = (run: (s: IDBObjectStore) => unknown) => on('readwrite', (s) => Promise.all([run(s), done(s.transaction)])) as Promise<unknown> as Promise<void>
  const getMany = (list: string[]) => read((s) => Promise.all(list.map((key) => done(s.get(key)))))
  const setMany = (entries: [string, unknown][]) => write((s) => (entries.forEach(([key, value]) => s.put(value, key)), s.transaction.commit?.()))
  const delMany = (list: string[]) => write((s) => (list.forEach((key) => s.delete(key)), s.transaction.commit?.()))
  return {
    get: (key) => read((s) => done(s.get(key))),
    set: (key, value) => setMany([[key, value]]),
    del: (key) => delMany([key]),
    keys: () => read((s) => done(s.getAllKeys() as IDBRequest<string[]>)),
    getMany,
    setMany,
    delMany,
    // One transaction: another tab's write cannot land between the read and the write or delete
    // (cache.ts). (Made in a reaction to the get's success: the transaction is still active then.)
    update: (key, fn) => write((s) => done(s.get(key)).then((value) => ((value = fn(value)) === null ? s.delete(key) : value && s.put(value, key)))),
    // A connection with a versionchange listener is never collected while open (IndexedDB spec):
    // left open by a closed client, each client a page made (a provider remounted per user, a
    // client per test) kept one, with all it reaches. Closed once no operation is out (one whose
    // transaction is not made yet would fail on a closed connection); one asked for later opens
    // a new connection, closed again when it is done.
    close: () => (closed = 1) && !busy && drop?.(),
  }
}

/** Storage that never rejects. `kind` tells whether values persist beyond the page. */
export interface SafeStorage {
  readonly kind: () => 'indexeddb' | 'memory'
  get(key: string): Promise<unknown>
  getMany(keys: string[]): Promise<unknown[]>
  set(key: string, value: unknown): Promise<boolean>
  setMany(entries: [string, unknown][]): Promise<boolean>
  /** `FlagStorage.update`: `fn` gets what is stored; a truthy result is written, `null` deletes it, in one transaction where the backend can. */
  update(key: string, fn: (value: unknown) => unknown): Promise<unknown>
  del(keys: string[]): Promise<void>
  keys(): Promise<string[]>
  /**
   * Lets go of the IndexedDB connection this wrapper opened, once no operation is out (a later
   * operation opens it again and lets it go when done). A `storage` passed in is not closed. A
   * clear still owed (see `clear`) is tried first, bounded like every operation.
   */
  close(): Promise<void>
  /**
   * Removes every key starting with `prefix`, from the persistent backend given up on as well (a
   * logout must not leave a user's values on disk because IndexedDB failed earlier in the page);
   * logs once, with the error, when it could not.
   */
  clear(prefix: string): Promise<void>
}

// A blocked IndexedDB open never settles; without a bound, `start()` would wait forever.
const OPERATION_TIMEOUT_MS = 3000

/** After a failover, the failed backend is tried again at most this often (on the next operation). */
const RETRY_MS = 60_000

// A timer that fires late (the tab was frozen, the laptop asleep, the main thread stalled) says
// nothing of IndexedDB: its answer may be queued behind the timer. Then the wait starts again,
// once, so a really stuck IndexedDB fails over one bound after the thaw. Without this, a freeze
// with an operation out moved the page to memory for good, and later events were lost on reload.
// Real timers and `Date.now` on purpose: a test's manual clock would never end the bound.
function bounded<T>(promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    // Late: more than half the bound after it was due.
    const arm = (again?: boolean, at = Date.now()) =>
      (timer = setTimeout(
        () => (again && Date.now() - at > 1.5 * OPERATION_TIMEOUT_MS ? arm() : reject(new Error(`storage did not answer within ${OPERATION_TIMEOUT_MS} ms`))),
        OPERATION_TIMEOUT_MS,
      ))
    arm(true)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Wraps the storage `choice` (default IndexedDB database `name` where available, else memory) so it
 * never rejects; the first IndexedDB failure moves it to memory and calls `onFallback`, and so does
 * the return to IndexedDB (`kind()` tells which).
 */
export function createSafeStorage(
  choice: 'indexeddb' | 'memory' | FlagStorage | undefined,
  name: string,
  logger: Logger,
  onFallback: (message?: string) => void,
): SafeStorage {
  const held = new Map<string, unknown>()
  const memory = createMemoryStorage(held)
  let backend: FlagStorage
  /** The IndexedDB storage made here (never the caller's own): `close()` closes its connection. */
  let own: ReturnType<typeof createIndexedDbStorage> | undefined
  let persistent: boolean
  if (choice === 'memory') {
    backend = memory
    persistent = false
  } else if (choice && typeof choice === 'object') {
    backend = choice
    persistent = true
  } else {
    persistent = typeof indexedDB !== 'undefined'
    backend = persistent ? (own = createIndexedDbStorage(name)) : memory
  }

  /** The persistent backend given up on: deletions still go to it, best effort (see `del`). */
  let abandoned: FlagStorage | undefined
  /** When it was last tried again (see `recover`): at once after a failover, then once a minute. */
  let triedAt = -RETRY_MS
  /** The prefix of a `clear` the backend given up on still owes ('' none): done there before the page goes back. */
  let owed = ''

  // Anything written before the failure is still in memory (the store and the event queue hold
  // their own copies), so moving over loses nothing the page has. Only a persistent backend fails
  // (memory cannot): `what` failed is logged and becomes the STORAGE error, the move made if not yet.
  function fail(error: unknown, what = 'persistent storage failed') {
    if (persistent) {
      persistent = false
      abandoned = backend
      backend = memory
    }
    logger.warn((what += '; running on memory'), error)
    onFallback(what)
  }

  // On memory, every event logged lives only until a reload. A stall (a busy disk, a wedged
  // transaction that was let go) often passes: right after a failover, then once a minute at most,
  // the next operation has the given-up backend take a small write, and if it does the page goes
  // back to it with what it wrote to memory meanwhile. The switch and that copy happen in one task,
  // so every later operation queues behind the copy (IndexedDB runs transactions in the order they
  // are made); a deletion made before went to the given-up backend too (see `del`). One that still
  // fails (quota, private mode) costs a write a minute, and no warning.
  async function recover(old: FlagStorage) {
    triedAt = Date.now()
    try {
      await bounded(old.set('holdfast:probe', 0))
      // A logout's clear that failed there first: the user who left is not brought back to disk.
      if (owed) {
        await wipe(old, owed)
        owed = ''
      }
    } catch {
      return
    }
    // Only events: they are what memory alone would lose. A flag cache entry (or a tab's lease, a
    // stored wait) copied back could overwrite a newer one another tab wrote meanwhile, or bring back
    // a user's entry another tab's `clearCache()` removed at logout; the network refills the cache.
    const moved = [...held].filter(([key]) => key.startsWith(EVENT_PREFIX))
    backend = old
    persistent = true
    abandoned = undefined
    // The status is derived again (it says `memory`, with a STORAGE error, until told).
    onFallback()
    // Nothing lands in memory while the page is on IndexedDB: cleared unless it failed over again meanwhile.
    if ((await safe.setMany(moved)) && persistent) held.clear()
  }

  /** `run` on the backend in use; failed, `onError` (left out: undefined, a miss). */
  async function attempt<T>(run: (b: FlagStorage) => Promise<T>, onError?: T): Promise<T> {
    // A minute from the last try either way: a clock set back meanwhile (an hour, say) would
    // otherwise have kept the page on memory, every event a reload loses, for that hour more.
    if (abandoned && Math.abs(Date.now() - triedAt) >= RETRY_MS) void recover(abandoned)
    const b = backend
    try {
      return await bounded(run(b))
    } catch (error) {
      if (b === backend) fail(error)
      else logger.warn('storage operation failed', error)
      return onError as T
    }
  }

  const safe: SafeStorage = {
    kind: () => (persistent ? 'indexeddb' : 'memory'),
    // A logout's clear still owed is tried once more first (one bound at most): a logout that closes
    // the client makes no later operation, and the next page read the user who left from the storage.
    // (Failing still, it is logged again.)
    close: async () => {
      if (owed) await safe.clear(owed)
      own?.close()
    },
    get: (key) => attempt((b) => b.get(key)),
    // Failed: none (read by index, each a miss).
    getMany: (list) => attempt((b) => (b.getMany ? b.getMany(list) : Promise.all(list.map((k) => b.get(k)))), []),
    set: (key, value) => attempt((b) => b.set(key, value).then(() => true), false),
    setMany: (entries) =>
      attempt((b) => (b.setMany ? b.setMany(entries) : Promise.all(entries.map(([k, v]) => b.set(k, v)))).then(() => true), false),
    update: (key, fn) =>
      attempt((b) => (b.update ? b.update(key, fn) : b.get(key).then((value) => ((value = fn(value)) === null ? b.del(key) : value && b.set(key, value))))),
    del: (list) => {
      // What this page wrote to IndexedDB before it failed (a full quota still allows deletions)
      // is removed there too once sent or evicted, or the next page would send it again.
      // (delFrom is `async`: a backend's throw is its rejection, caught here.)
      if (abandoned) void delFrom(abandoned, list).catch(() => {})
      return attempt((b) => delFrom(b, list))
    },
    keys: () => attempt((b) => b.keys().then((all) => all.map(String)), [] as string[]),
    // Both backends, bounded like every operation: an IndexedDB that still hangs cannot hold a logout.
    // Each on its own (`async`): an app's storage that throws where it should reject (the one given
    // up on) once kept memory, where the user's values were since, from being cleared. Failed, the
    // user's values are still on it: the page moves to memory (nothing more written there) with a
    // STORAGE error, and owes the clear: `recover` does it before going back. Done there since, it is
    // owed no more (or the retry, a minute on, took what another tab saved meanwhile for its user).
    clear: (prefix) =>
      Promise.all(
        [abandoned, backend].map(
          (b) =>
            b &&
            wipe(b, prefix).then(
              () => {
                if (b == abandoned) owed = ''
              },
              (error) => {
                owed = prefix
                fail(error, 'clearing the cache failed')
              },
            ),
        ),
      ).then(() => {}),
  }
  return safe
}

// `async`: a storage that throws where it should reject fails the clear, not the caller.
async function wipe(b: FlagStorage, prefix: string): Promise<void> {
  await bounded(b.keys().then((all) => delFrom(b, all.filter((k) => (k + '').startsWith(prefix)))))
}

async function delFrom(b: FlagStorage, list: string[]): Promise<void> {
  await (b.delMany ? b.delMany(list) : Promise.all(list.map((k) => b.del(k))))
}
