// Saving what the relay serves to its data dir without ever blocking a request and without piling
// up writes: at most one write in flight, and while it runs only the newest pending payload waits
// (older ones are superseded, not written). Failures (full disk, read-only mount) are counted and
// reported; what is served is unaffected and the previous generations stay loadable.
import type { ServerLogger } from '../logger'
import { dirProblem, lockDataDir, TWO_ON_ONE_DIR } from './dataDirLock'
import { dataDirTiming, didNotAnswer, stuck, within } from './dataDirTiming'
import type { GenerationStore, SkipReason } from './generations'
import { createBackoffTimer } from '../backoffTimer'
import { waitAtMost } from './startupWait'

/** Why a data dir is not used (or not yet read) since its start, per store: see {@link loadNewestPayload} and {@link lockDataDirWithin}. */
const openProblems = new WeakMap<GenerationStore, { error: string; unused: boolean; takenOver?: { by: string; at: number } }>()
/**
 * The generations skipped at start (newer than the one served, or none served), per store: before,
 * they were in the log only, and an operator saw yesterday's values served with nothing in the
 * status or the metrics saying why. See {@link PersistenceState}.skipped.
 */
const skippedAtStart = new WeakMap<GenerationStore, { list: SkippedInStatus[]; by: Partial<Record<SkipReason, number>>; numbers: Set<number> }>()
/** How many skipped generations the status and the log name (all are counted in `skippedBy`, the rest summed up in one log line): a dir of stray copies must not swell either. */
const SKIPPED_NAMED = 10
/** The generation read back at start, per store. */
const loadedAtStart = new WeakMap<GenerationStore, number>()
/** The data dir's lock check, per store (see {@link lockDataDirWithin}): made before each write. */
const lockChecks = new WeakMap<GenerationStore, () => Promise<void>>()

/**
 * The newest generation `accept` takes, as its payload, or undefined. Never rejects: a data dir
 * that cannot be read at all (not a directory, no permission) is logged and treated as empty, so
 * the relay still starts and serves from its upstream (and says so in its status). Nor does it
 * hang: a data dir that does not answer within {@link dataDirTiming}.openMs is treated the same,
 * logged once, and shown as `dataDir.lastError` until a write to it succeeds (the lock is held:
 * writes go on, shown by `writingSince` while they hang). A data dir not used (its lock timed out)
 * is not read.
 */
export async function loadNewestPayload(store: GenerationStore, accept: (payload: string) => boolean, log: ServerLogger): Promise<string | undefined> {
  if (openProblems.get(store)?.unused) return undefined
  try {
    const load = store.loadNewest(accept)
    load.catch(() => {})
    const { value, timedOut } = await within(load)
    if (timedOut) {
      openProblems.set(store, { error: didNotAnswer(), unused: false })
      log.error(`the data dir ${store.dir} ${didNotAnswer()} (reading it); starting without it (serving the snapshot, Redis or the upstream)`)
      return undefined
    }
    const { loaded, skipped } = value!
    // Ten named, the rest summed up by reason in one line: a dir of stray copies must not flood the log.
    for (const skip of skipped.slice(0, SKIPPED_NAMED)) log.warn(`skipped data-dir generation ${skip.path}: ${skip.reason}`)
    if (skipped.length > SKIPPED_NAMED) {
      const rest = new Map<SkipReason, number>()
      for (const skip of skipped.slice(SKIPPED_NAMED)) rest.set(skip.kind, (rest.get(skip.kind) ?? 0) + 1)
      const byReason = [...rest].map(([kind, count]) => `${kind}: ${count}`).join(', ')
      log.warn(`skipped ${skipped.length - SKIPPED_NAMED} more data-dir generations (${byReason}); GET /holdfast/v1/status counts them by reason`)
    }
    if (skipped.length > 0) {
      const told = skippedAtStart.get(store) ?? { list: [], by: {}, numbers: new Set<number>() }
      for (const skip of skipped) {
        // Read again (a --flags FILE relay whose served generation proved unusable reads the older
        // ones again): a generation skipped twice is one skipped generation.
        if (told.numbers.has(skip.number)) continue
        told.numbers.add(skip.number)
        told.by[skip.kind] = (told.by[skip.kind] ?? 0) + 1
        if (told.list.length < SKIPPED_NAMED) told.list.push({ generation: skip.number, path: skip.path, reason: skip.kind, detail: skip.reason })
      }
      skippedAtStart.set(store, told)
    }
    if (loaded) loadedAtStart.set(store, loaded.number)
    return loaded?.payload
  } catch (error) {
    log.error(`cannot read the data dir ${store.dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); starting without it`)
    return undefined
  }
}

/**
 * {@link lockDataDir}, bounded by {@link dataDirTiming}.openMs. A lock that does not answer in time
 * (a hung mount) does not hold the start: the data dir is then not used for the life of the
 * process, neither read nor written (two servers must never share one, and this one does not hold
 * its lock); a lock that is taken after all, later, is given back at once. The status shows it as
 * `dataDir.lastError` and `unused`; the log says it once. A restart takes it again.
 */
export async function lockDataDirWithin(store: GenerationStore, log: ServerLogger): Promise<() => Promise<void>> {
  // Another server took the lock over (this one was stopped, or its mount hung, past the 30 s
  // lease): the dir is that server's from here, as a spool is (events/pipeline.ts). Before, this
  // one came back and went on writing generations beside the new holder's, and a restart of either
  // could serve the other's flags. What is served is unaffected; it is no longer saved.
  const onLost = (holder: string) => {
    const takenOver = { by: holder, at: Date.now() }
    openProblems.set(store, { error: `taken over by another server (${holder}): not written by this one until a restart`, unused: true, takenOver })
    log.error(`the data dir ${store.dir} was taken over by another server (${holder}); this one no longer writes to it (still serving). ${TWO_ON_ONE_DIR} Stop one, or give each its own.`)
  }
  // Bounded by a call that does not return, not by the whole: the watch of a lock left by a
  // server on another host takes 15 s (see `stuck`).
  let returnedAt = performance.now()
  const locking = lockDataDir(store.dir, log, { onLost, onProgress: () => (returnedAt = performance.now()) })
  locking.catch(() => {})
  if (!(await stuck(locking, () => returnedAt))) {
    const release = await locking
    if (release.check) lockChecks.set(store, release.check)
    return async () => void (await waitAtMost(release(), CLOSE_WAIT_MS))
  }
  openProblems.set(store, { error: didNotAnswer(), unused: true })
  log.error(`the data dir ${store.dir} ${didNotAnswer()} (taking its lock); starting without it (serving the snapshot, Redis or the upstream), and not using it until a restart`)
  void locking.then((late) => late(), () => {})
  return async () => {}
}

/** A data-dir generation skipped at start, as the status names it. */
export interface SkippedInStatus {
  generation: number
  path: string
  /** In one word, as `holdfast_relay_data_dir_skipped_total{reason}`: see {@link SkipReason}. */
  reason: SkipReason
  /** What was found, as logged: `checksum mismatch`, `length 10 ≠ 42 (torn write?)`, `unreadable (larger than 64 MiB: … bytes)`. */
  detail: string
}

/** The data-dir writer's state, for the status route. */
export interface PersistenceState {
  dir: string
  /** The generation read back at start and served (absent when none was usable, or none was read). */
  loadedGeneration?: number
  /**
   * The generations skipped at start, newest first (at most 10 named): each newer than the one
   * served (`loadedGeneration`), so what is served is older than the data dir's newest file.
   * Absent when none was skipped.
   */
  skipped?: SkippedInStatus[]
  /** How many generations were skipped at start, by reason (every one, also past the 10 named). */
  skippedBy?: Partial<Record<SkipReason, number>>
  lastSavedAt?: number
  lastGeneration?: number
  lastError?: string
  writeFailures: number
  /**
   * Epoch ms since which the write in flight runs; absent when none is. A write that never ends (a
   * hung network mount) neither succeeds nor fails: this is how the status shows it.
   */
  writingSince?: number
  /** True when the data dir is not used (its lock did not answer in time at start: a hung mount; or another server took it over). */
  unused?: boolean
  /** Set once another server took the data dir's lock over (`by`: its pid, host and since; `at`: when this one saw it): nothing more is written there. */
  takenOver?: { by: string; at: number }
}

/** See the file comment. */
export interface Persistence {
  /**
   * Queues `payload` (a function, so a superseded payload is never even serialised; it may resolve
   * later, to make a large payload in slices between other work).
   */
  schedule(payload: () => string | Promise<string>): void
  /** Resolves once nothing is pending or being written (a failed write waiting to be tried again is not waited for). */
  flush(): Promise<void>
  /**
   * Stops trying failed writes again, tries the last one once more, and waits at most `waitMs`
   * (default {@link CLOSE_WAIT_MS}) for what is being written. Resolves whether it all got written:
   * false on a disk that fails or hangs (the previous generations stay; the process may exit).
   */
  close(waitMs?: number): Promise<boolean>
  state(): PersistenceState
}

/**
 * The least time between two writes of a payload of `length` characters: `floorMs`, or 1 s per
 * MB when that is longer, at most 30 s. Proxy mode rewrites every held context each time: 10,000
 * contexts of 10 flags are ~12 MB, and at twice a second that took 30 % of the main thread (75 to
 * 150 ms a write, `scripts/measure-datadir-write.ts`) and wrote 90 GB an hour. A kill -9 loses at
 * most this interval's answers (plus the write in flight).
 */
export function intervalForSize(length: number, floorMs: number): number {
  return Math.max(floorMs, Math.min(MAX_SIZED_INTERVAL_MS, Math.round(length / 1000)))
}

/** The longest interval {@link intervalForSize} gives: 30 s. */
export const MAX_SIZED_INTERVAL_MS = 30_000

/** How long closing waits for a data-dir write in flight (a stuck mount must not hold a shutdown). */
export const CLOSE_WAIT_MS = 5000

/**
 * Closes `persistence` (when there is one) and logs when its last write is not done: a stuck or
 * failing disk must not hold a shutdown, and the operator must hear that the data dir is behind.
 */
export async function closePersistence(persistence: Persistence | undefined, log: ServerLogger): Promise<void> {
  if (persistence && !(await persistence.close())) log.warn(`closing with the last write to the data dir ${persistence.state().dir} not done (${persistence.state().lastError ?? 'still writing'}); the previous generations stay`)
}

/**
 * Creates a {@link Persistence} over a generation store. With `log`, a failing disk is logged once
 * when writes start failing (and again only when the error changes), and once when they succeed
 * again: a full disk under a relay polling every few seconds must not write an error line per poll
 * and per retry (into the log, often on that same disk). Each attempt is still counted (`onResult`,
 * `writeFailures`).
 */
export function createPersistence(options: {
  store: GenerationStore
  now: () => number
  log?: ServerLogger
  onResult?: (ok: boolean, error?: unknown) => void
  /**
   * Least time between two writes (the newest pending payload waits), or a function of the length
   * of the payload last written (a large file costs more to make and to write: see
   * `intervalForSize`). Default 0.
   */
  minIntervalMs?: number | ((length: number) => number)
}): Persistence {
  const state: PersistenceState = { dir: options.store.dir, writeFailures: 0 }
  let pending: (() => string | Promise<string>) | undefined
  // writeFailures when the current run of failures began.
  let failuresBefore = 0
  let writing: Promise<void> | undefined
  // Ends the wait between two writes (see drain), once closing.
  let wake: (() => void) | undefined
  let closing = false
  // The payload whose write failed, tried again (1 s, doubling to 30 s) until one succeeds or a
  // newer payload replaces it. Without this, a write that failed (EIO, a full disk for a moment)
  // was tried again only with the next change or re-save: an upstream that went down just after
  // left the data dir one version behind what was served, and a restart served that older one.
  let failed: (() => string | Promise<string>) | undefined
  const retry = createBackoffTimer(() => {
    if (!failed || pending) return
    pending = failed
    kick()
  })

  // When the next write may start (performance.now()): the interval holds between any two writes,
  // not only between writes chained back to back. A change that came just after a write ended
  // with nothing pending was written at once, so a crawler whose changes came a little apart (or a
  // loaded machine) got a 12 MB file rewritten many times a second.
  let readyAt = 0
  const drain = async () => {
    while (pending) {
      const wait = readyAt - performance.now()
      // Closing ends the wait: with a large file it is up to 30 s, and a graceful stop must write
      // the newest payload, not give up after CLOSE_WAIT_MS with the last answers unsaved.
      if (wait > 0 && !closing) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => resolve(), wait)
          timer.unref?.()
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
        if (!pending) return
      }
      // Not (or no longer) this server's dir: a retry or the last write at close must not reach it either.
      if (openProblems.get(options.store)?.unused) {
        pending = failed = undefined
        return
      }
      const make = pending
      pending = undefined
      state.writingSince = options.now()
      let length = 0
      try {
        const payload = await make()
        length = payload.length
        // Still this server's dir? Read again before each write, not only at the touch every 10 s:
        // a mount that hung through a takeover comes back with the write in flight and the newest
        // payload behind it; before, that one was written at once too, a generation newer than the
        // new holder's (with this server's flags), the one a restart of either would serve.
        await lockChecks.get(options.store)?.()
        if (openProblems.get(options.store)?.unused) {
          pending = failed = undefined
          return
        }
        const number = await options.store.save(payload)
        state.lastGeneration = number
        state.lastSavedAt = options.now()
        if (state.lastError !== undefined) options.log?.info(`the data dir ${state.dir} takes writes again (generation ${number}, after ${state.writeFailures - failuresBefore} failed writes)`)
        delete state.lastError
        if (failed === make) failed = undefined
        retry.reset()
        options.onResult?.(true)
      } catch (error) {
        const reason = await dirProblem(state.dir, error)
        if (state.lastError === undefined) failuresBefore = state.writeFailures
        if (reason !== state.lastError) options.log?.error(`cannot write to the data dir ${state.dir} (${reason}); still serving, the previous generations stay; tried again (1 s, doubling to 30 s), logged again when it succeeds (each failure is counted in the status and the metrics)`)
        state.writeFailures++
        state.lastError = reason
        if (!pending) {
          failed = make
          retry.schedule()
        }
        options.onResult?.(false, error)
      } finally {
        delete state.writingSince
      }
      readyAt = performance.now() + ((typeof options.minIntervalMs === 'function' ? options.minIntervalMs(length) : options.minIntervalMs) ?? 0)
    }
  }

  // A payload scheduled after drain's loop ended but before its `finally` ran starts a new drain.
  const kick = (): void => {
    writing ??= drain().finally(() => {
      writing = undefined
      if (pending) kick()
    })
  }

  const flush = async () => {
    while (writing) await writing
  }

  return {
    schedule(payload) {
      if (openProblems.get(options.store)?.unused) return
      pending = payload
      failed = undefined
      kick()
    },
    flush,
    async close(waitMs = CLOSE_WAIT_MS) {
      retry.stop()
      closing = true
      wake?.()
      if (failed && !pending) {
        pending = failed
        kick()
      }
      failed = undefined
      let finished = false
      await waitAtMost(flush().then(() => (finished = true)), waitMs)
      return finished && state.lastError === undefined
    },
    state: () => {
      const loaded = loadedAtStart.get(options.store)
      const skipped = skippedAtStart.get(options.store)
      const read = { ...(loaded !== undefined ? { loadedGeneration: loaded } : {}), ...(skipped ? { skipped: [...skipped.list], skippedBy: { ...skipped.by } } : {}) }
      // A data dir that did not answer at start: its error stands until a write gets through.
      const problem = openProblems.get(options.store)
      if (!problem || (!problem.unused && state.lastSavedAt !== undefined)) return { ...state, ...read }
      return { ...state, ...read, lastError: problem.takenOver ? problem.error : state.lastError ?? problem.error, ...(problem.unused ? { unused: true } : {}), ...(problem.takenOver ? { takenOver: problem.takenOver } : {}) }
    },
  }
}
