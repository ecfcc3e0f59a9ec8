import type { ServerLogger } from '../logger'
import { compileFlagDefinitions, parseFlagDefinitions, type FlagdDefinitions, type ParsedFlags } from './flagDefinitions'
import { createListeners, type FlagDefinitionsVersion, type FlagOrigin, type FlagSource, type FlagSourceEvent, type FlagSourceStatus } from './flagSource'
import { changedKeys, refusalReason } from './guard'
import { readRegularFile } from './readRegularFile'
import { MAX_UPSTREAM_BYTES } from './upstreamFetch'
import { SETTLE_MS, watchPath } from './watchFile'

/**
 * The largest flags file read: 16 MiB, the bound on a `--flags-url` body. A bigger one is refused
 * like an unreadable one: read whole, a 200 MB file took 2 GB and stalled requests for seconds.
 */
export const MAX_FLAGS_FILE_BYTES = MAX_UPSTREAM_BYTES

// The refusal of a file with zero flags while nothing is served (there is no previous to keep).
const NOTHING_SERVED = 'nothing served'
const UNSERVED = 'with no --data-dir or --snapshot layer to serve, OFREP requests get 503 until it has flags'
const emptyRefusal = (path: string) => `${path} defines no flags: not served (${UNSERVED})`

/** A {@link FlagSource} whose definitions can also be replaced in code (`FlagServer.setFlags`). */
export interface EditableFlagSource extends FlagSource {
  /** Replaces the definitions now. Throws (keeping the old ones) when they are invalid. No shrink guard: code is trusted. */
  set(definitions: FlagdDefinitions): void
}

/** Options shared by {@link createFileSource} and {@link createStaticSource}. */
export interface LocalSourceOptions {
  /** Refuse documents that break flagd's schema (see `parseFlagDefinitions`). Default true. */
  strictValidation?: boolean
  /** Where reloads and refusals are reported. */
  log: ServerLogger
  /** A new document may drop at most this share of the flags held (percent; zero flags are always refused). Default 50. */
  maxShrinkPercent?: number
  /** The clock, for `fetchedAt` and `lastSuccessAt`. Default `Date.now`. */
  now?: () => number
}

/**
 * A {@link FlagSource} over a definitions object given in code (`origin: 'inline'`). It never
 * changes by itself; `set()` replaces it.
 */
export function createStaticSource(definitions: FlagdDefinitions, options: LocalSourceOptions): EditableFlagSource {
  const core = createCore('inline', options)
  return {
    origin: 'inline',
    async open() {
      const parsed = await compileFlagDefinitions(JSON.stringify(definitions), { strict: options.strictValidation ?? true, warn: (m) => options.log.warn(m) })
      if (!parsed.ok) throw new Error(`[holdfast-server] invalid flag definitions: ${parsed.error}`)
      core.swap(parsed)
    },
    current: core.current,
    subscribe: core.listeners.add,
    refresh: async () => core.current() !== undefined,
    status: core.status,
    async close() {},
    set: core.set,
  }
}

/**
 * A {@link FlagSource} over a flagd file (`origin: 'file'`), watched (`fs.watch` on its directory plus a 500 ms `stat` poll, so saves by rename are followed). Every
 * edit is read, parsed, validated and compiled off the request path, then swapped in only when
 * valid and not gutted (zero flags, or more than `maxShrinkPercent` of them gone): a broken save
 * leaves the previous definitions serving and a log line saying why. Reloads never overlap; signals
 * that arrive during one fold into a single follow-up reload.
 */
export function createFileSource(path: string, options: LocalSourceOptions & { pollMs?: number; settleMs?: number; maxWaitMs?: number }): EditableFlagSource {
  const { log } = options
  const core = createCore('file', options)
  const strict = options.strictValidation ?? true
  let lastText: string | undefined
  let lastRejected: string | undefined
  let lastReport: string | undefined
  let stopWatching: (() => void) | undefined
  let running: Promise<boolean> | undefined
  let queued: Promise<boolean> | undefined

  // What a failed read or a refused edit leaves served: never "the previous flags" where the file
  // gave none (it defined no flags at start, a9c2e84), while every OFREP request gets 503.
  const servingWhat = () => (core.current() ? 'still serving the previous flags' : `nothing served from it (${UNSERVED})`)

  // While the file is missing every poll fails the same way; say it once.
  const report = (message: string) => {
    if (message !== lastReport) log.warn(message)
    lastReport = message
  }

  const reloadFile = async (): Promise<boolean> => {
    let text: string
    try {
      text = await readRegularFile(path, MAX_FLAGS_FILE_BYTES)
    } catch (error) {
      // Mid-rename the path can briefly not exist; the next signal will find the new file.
      const message = `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); ${servingWhat()}`
      core.fail(message)
      report(message)
      return false
    }
    if (text === lastText) {
      core.succeed()
      return true
    }
    // One save can raise several signals; a broken text is reported once, a new edit always.
    if (text === lastRejected) return false
    const parsed = await compileFlagDefinitions(text, { strict, warn: (m) => log.warn(`${path}: ${m}`) })
    // Unreadable, and the file changed since it was read: a write caught half way (a tool that
    // truncates and rewrites in place), not a broken file. Not reported or counted as a refusal;
    // the change signal of the finished write reads it again.
    if (!parsed.ok && (await stillBeingWritten(text))) return false
    const refusal = parsed.ok ? (parsed.count === 0 && !core.current() ? NOTHING_SERVED : refusalReason(core.current(), { flagCount: parsed.count, evaluator: parsed.core }, options)) : parsed.error
    if (!parsed.ok || refusal) {
      lastRejected = text
      lastReport = undefined
      const what = `${path} is ${parsed.ok ? 'refused' : 'invalid'}`
      core.refuse(refusal === NOTHING_SERVED ? emptyRefusal(path) : core.current() ? `${what}, still serving the previous flags: ${refusal}` : `${what}: ${refusal}; ${servingWhat()}`, !parsed.ok)
      return false
    }
    lastText = text
    lastRejected = undefined
    lastReport = undefined
    core.swap(parsed)
    log.info(`reloaded ${path} (${parsed.count} flag${parsed.count === 1 ? '' : 's'}, version ${parsed.version})`)
    return true
  }

  /** Whether the file holds something else than `text` a moment after it was read. */
  const stillBeingWritten = async (text: string): Promise<boolean> => {
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? SETTLE_MS))
    const again = await readRegularFile(path, MAX_FLAGS_FILE_BYTES).catch(() => undefined)
    return again !== undefined && again !== text
  }

  const refresh = (): Promise<boolean> => {
    if (!running) {
      running = reloadFile().finally(() => (running = undefined))
      return running
    }
    queued ??= running.then(() => {
      queued = undefined
      return refresh()
    })
    return queued
  }

  return {
    origin: 'file',
    async open() {
      let text: string
      try {
        text = await readRegularFile(path, MAX_FLAGS_FILE_BYTES)
      } catch (error) {
        throw new Error(`[holdfast-server] cannot read the flags file ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
      }
      const parsed = await compileFlagDefinitions(text, { strict, warn: (m) => log.warn(`${path}: ${m}`) })
      if (!parsed.ok) throw new Error(`[holdfast-server] ${path} is invalid: ${parsed.error}`)
      // An emptied file is not served (CONTRACT §9), at start as on an edit: with nothing else to
      // serve the server is not ready (OFREP requests get 503 + Retry-After, never an empty 200)
      // until an edit gives the file flags. Before, it answered every browser an empty 200.
      if (parsed.count === 0) {
        lastRejected = text
        core.refuse(emptyRefusal(path), false)
      } else {
        lastText = text
        core.swap(parsed)
      }
      stopWatching = watchPath(path, () => void refresh(), { pollMs: options.pollMs, settleMs: options.settleMs, maxWaitMs: options.maxWaitMs })
      // An edit between the read above and the watch starting raised no signal; look once more.
      void refresh()
    },
    current: core.current,
    subscribe: core.listeners.add,
    refresh,
    status: core.status,
    async close() {
      stopWatching?.()
      stopWatching = undefined
      await running?.catch(() => {})
    },
    set: core.set,
  }
}

// The state both local sources keep: the generation in service, the health, the listeners.
function createCore(origin: FlagOrigin, options: LocalSourceOptions) {
  const now = options.now ?? Date.now
  const listeners = createListeners<FlagSourceEvent>()
  let current: FlagDefinitionsVersion | undefined
  let health: FlagSourceStatus = { ready: false, state: 'none', refused: 0 }

  const swap = (parsed: Extract<ParsedFlags, { ok: true }>) => {
    const previous = current
    const at = now()
    current = { version: parsed.version, definitions: parsed.definitions, evaluator: parsed.core, flagCount: parsed.count, origin, fetchedAt: at }
    health = { ...health, ready: true, state: 'ok', lastSuccessAt: at, lastError: undefined }
    listeners.emit({ type: 'update', version: current, previous, changed: changedKeys(previous, current) })
  }

  return {
    listeners,
    swap,
    current: () => current,
    status: (): FlagSourceStatus => ({ ...health }),
    succeed() {
      health = { ...health, state: 'ok', lastSuccessAt: now(), lastError: undefined }
    },
    fail(error: string) {
      health = { ...health, state: 'failing', lastError: error }
      listeners.emit({ type: 'error', error })
    },
    refuse(reason: string, invalid: boolean) {
      health = { ...health, state: 'failing', lastError: reason, refused: health.refused + 1 }
      options.log.warn(reason)
      listeners.emit({ type: 'refused', reason, invalid })
    },
    set(definitions: FlagdDefinitions) {
      const parsed = parseFlagDefinitions(JSON.stringify(definitions), { strict: options.strictValidation ?? true, warn: (m) => options.log.warn(m) })
      if (!parsed.ok) throw new Error(`[holdfast-server] invalid flag definitions: ${parsed.error}`)
      swap(parsed)
    },
  }
}
