// Saving what the relay serves to its data dir without ever blocking a request and without piling
// up writes: at most one write in flight, and while it runs only the newest pending payload waits
// (older ones are superseded, not written). Failures (full disk, read-only mount) are counted and
// reported; what is served is unaffected and the previous generations stay loadable.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { acquireLock } from '../events/lockFile'
import type { ServerLogger } from '../logger'
import type { GenerationStore } from './generations'

/**
 * The newest generation `accept` takes, as its payload, or undefined. Never rejects: a data dir
 * that cannot be read at all (not a directory, no permission) is logged and treated as empty, so
 * the relay still starts and serves from its upstream (and says so in its status).
 */
export async function loadNewestPayload(store: GenerationStore, accept: (payload: string) => boolean, log: ServerLogger): Promise<string | undefined> {
  try {
    const { loaded, skipped } = await store.loadNewest(accept)
    for (const skip of skipped) log.warn(`skipped data-dir generation ${skip.path}: ${skip.reason}`)
    return loaded?.payload
  } catch (error) {
    log.error(`cannot read the data dir ${store.dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); starting without it`)
    return undefined
  }
}

/**
 * Takes the data dir's lock (`DIR/LOCK`, see events/lockFile.ts) for this server: a second live
 * server on the same dir is refused (throws, naming it). Two would delete each other's temp files
 * mid-write and interleave generations, and a restart of either could serve the other's flags. A
 * dir where no lock can be made (not a directory, read-only) does not stop the server, as it
 * never does (see `loadNewestPayload`): it runs without the lock. Resolves with the release.
 */
export async function lockDataDir(dir: string, log: ServerLogger): Promise<() => Promise<void>> {
  const without = (error: NodeJS.ErrnoException) => {
    log.warn(`cannot lock the data dir ${dir} (${error.code ?? error.message}); going on without the lock`)
    return async () => {}
  }
  try {
    await mkdir(dir, { recursive: true })
  } catch (error) {
    return without(error as NodeJS.ErrnoException)
  }
  try {
    return await acquireLock(join(dir, 'LOCK'), `the data dir ${dir}`, "Two servers on one data dir overwrite each other's generations, and a restart may serve the other's flags: give each its own.")
  } catch (error) {
    const cause = (error as Error).cause as NodeJS.ErrnoException | undefined
    // Held by a live server (no cause), or another took it in the same instant (EEXIST): refused.
    if (cause === undefined || cause.code === 'EEXIST') throw error
    return without(cause)
  }
}

/** The data-dir writer's state, for the status route. */
export interface PersistenceState {
  dir: string
  lastSavedAt?: number
  lastGeneration?: number
  lastError?: string
  writeFailures: number
}

/** See the file comment. */
export interface Persistence {
  /** Queues `payload` (a function, so a superseded payload is never even serialised). */
  schedule(payload: () => string): void
  /** Resolves once nothing is pending or being written. */
  flush(): Promise<void>
  state(): PersistenceState
}

/** Creates a {@link Persistence} over a generation store. */
export function createPersistence(options: {
  store: GenerationStore
  now: () => number
  onResult?: (ok: boolean, error?: unknown) => void
  /** Least time between two writes (the newest pending payload waits). Default 0. */
  minIntervalMs?: number
}): Persistence {
  const state: PersistenceState = { dir: options.store.dir, writeFailures: 0 }
  let pending: (() => string) | undefined
  let writing: Promise<void> | undefined

  const drain = async () => {
    while (pending) {
      const make = pending
      pending = undefined
      try {
        const number = await options.store.save(make())
        state.lastGeneration = number
        state.lastSavedAt = options.now()
        delete state.lastError
        options.onResult?.(true)
      } catch (error) {
        state.writeFailures++
        state.lastError = (error as NodeJS.ErrnoException).code ?? (error as Error).message
        options.onResult?.(false, error)
      }
      if (pending && options.minIntervalMs) await new Promise((resolve) => setTimeout(resolve, options.minIntervalMs).unref?.())
    }
  }

  // A payload scheduled after drain's loop ended but before its `finally` ran starts a new drain.
  const kick = (): void => {
    writing ??= drain().finally(() => {
      writing = undefined
      if (pending) kick()
    })
  }

  return {
    schedule(payload) {
      pending = payload
      kick()
    },
    async flush() {
      while (writing) await writing
    },
    state: () => ({ ...state }),
  }
}
