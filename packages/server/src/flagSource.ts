import { readFile } from 'node:fs/promises'
import type { FlagdCore } from '@openfeature/flagd-core'
import { parseFlagDefinitions, type FlagdDefinitions } from './flagDefinitions'
import type { ServerLogger } from './logger'
import { watchPath } from './watchFile'

/** The flag definitions in service, and where they come from. */
export interface FlagSource {
  /** Loads the initial definitions and starts watching a file. Rejects when they are invalid. */
  open(): Promise<void>
  /** The evaluator in service; only ever replaced by a valid one. */
  current(): FlagdCore
  /** Replaces the definitions in code. Throws (and keeps the old ones) when they are invalid. */
  set(definitions: FlagdDefinitions): void
  /** Re-reads the flags file now (no-op for in-code definitions). Resolves true if it was applied. */
  reload(): Promise<boolean>
  /** Stops watching. */
  close(): void
}

/**
 * Creates a {@link FlagSource} over a flagd file path or a definitions object. A path is watched
 * (see `watchPath`); every edit is parsed on the side and swapped in only when valid, so a broken
 * save leaves the previous definitions serving and a log line saying why.
 */
export function createFlagSource(options: {
  flags: string | FlagdDefinitions
  strictValidation: boolean
  log: ServerLogger
  pollMs?: number
}): FlagSource {
  const { flags, strictValidation, log } = options
  const path = typeof flags === 'string' ? flags : undefined
  let core: FlagdCore | undefined
  let lastText: string | undefined
  let lastError: string | undefined
  let lastRejected: string | undefined
  let stopWatching: (() => void) | undefined
  // Reloads are chained so a slow read cannot land after a newer one.
  let reloading: Promise<boolean> = Promise.resolve(true)

  const apply = (text: string, origin: string): { ok: true } | { ok: false; error: string } => {
    const parsed = parseFlagDefinitions(text, { strict: strictValidation, warn: (m) => log.warn(`${origin}: ${m}`) })
    if (!parsed.ok) return parsed
    core = parsed.core
    lastText = text
    if (parsed.count === 0) log.warn(`${origin} defines no flags; serving an empty flag set`)
    return { ok: true }
  }

  const reloadFile = async (file: string): Promise<boolean> => {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      // Mid-rename the path can briefly not exist; the next signal will find the new file.
      report(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); still serving the previous flags`)
      return false
    }
    if (text === lastText) return true
    // One save can raise several signals; a broken text is reported once, a new edit always.
    if (text === lastRejected) return false
    const result = apply(text, file)
    if (!result.ok) {
      lastRejected = text
      lastError = undefined
      log.warn(`${file} is invalid, still serving the previous flags: ${result.error}`)
      return false
    }
    lastRejected = undefined
    lastError = undefined
    log.info(`reloaded ${file}`)
    return true
  }

  // While the file is missing every poll fails the same way; say it once.
  const report = (message: string) => {
    if (message !== lastError) log.warn(message)
    lastError = message
  }

  const reload = (): Promise<boolean> => {
    if (path === undefined) return Promise.resolve(true)
    reloading = reloading.then(() => reloadFile(path))
    return reloading
  }

  return {
    async open() {
      if (path === undefined) {
        const result = apply(JSON.stringify(flags), 'flag definitions')
        if (!result.ok) throw new Error(`[holdfast-server] invalid flag definitions: ${result.error}`)
        return
      }
      let text: string
      try {
        text = await readFile(path, 'utf8')
      } catch (error) {
        throw new Error(`[holdfast-server] cannot read the flags file ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
      }
      const result = apply(text, path)
      if (!result.ok) throw new Error(`[holdfast-server] ${path} is invalid: ${result.error}`)
      stopWatching = watchPath(path, () => void reload(), { pollMs: options.pollMs })
      // An edit between the read above and the watch starting raised no signal; look once more.
      void reload()
    },
    current() {
      if (!core) throw new Error('[holdfast-server] flag source used before open()')
      return core
    },
    set(definitions) {
      const result = apply(JSON.stringify(definitions), 'flag definitions')
      if (!result.ok) throw new Error(`[holdfast-server] invalid flag definitions: ${result.error}`)
    },
    reload,
    close() {
      stopWatching?.()
      stopWatching = undefined
    },
  }
}
