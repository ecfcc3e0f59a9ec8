// The events file: where a standalone server keeps the events it accepted, as JSON Lines with
// crash-safe appends, rotation with a size cap (`.1` … `.N`, logrotate's names read too), and the
// stored lines read back at start for the de-duplication window.
import { basename, dirname, join } from 'node:path'
import type { ServerLogger } from '../logger'
import { createAppendLog, type AppendLog } from './appendLog'
import type { EventStore } from './eventStore'
import { nodeFileSystem, type EventFileSystem } from './fileSystem'
import { eventSchema, type ReceivedEvent } from './schema'
import { toLines } from './toLines'

/** Default {@link EventsFileOptions.keep} (`--events-keep`): 5 rotated files. */
export const DEFAULT_EVENTS_KEEP = 5

/** Options of {@link createEventsFile}. */
export interface EventsFileOptions {
  /** The JSON Lines file. Required. */
  path: string
  /** Rotate once the file would pass this many bytes (`--events-max-bytes`). Default: never. */
  maxBytes?: number
  /** Rotated files kept as `path.1` (newest) … `path.N`; older ones are deleted. Default {@link DEFAULT_EVENTS_KEEP}. */
  keep?: number
  fs?: EventFileSystem
  onSync?: (seconds: number, bytes: number) => void
  /** Told of each rotated file deleted by `keep` (its bytes: accepted events), after the warning in the log. Default none. */
  onDeleted?: (bytes: number) => void
  /** The clock (epoch ms) of `busy()`. Default `Date.now`. */
  now?: () => number
  log: ServerLogger
}

/** The events file as an {@link EventStore}: crash-safe appends, rotation with a size cap. */
export function createEventsFile(options: EventsFileOptions): EventStore {
  const fs = options.fs ?? nodeFileSystem
  const keep = Math.max(1, Math.floor(options.keep ?? DEFAULT_EVENTS_KEEP))
  const rotated = (n: number) => `${options.path}.${n}`
  // Rotated files numbered above `keep`, found at start: left by a run with a higher --events-keep.
  // Each with what it was when listed: a file renamed into its name since (a logrotate run) is not it.
  let above: Array<{ path: string; n: number; ino?: number; dev?: number }> = []
  const appendLog: AppendLog = createAppendLog({
    path: options.path,
    fs,
    maxBytes: options.maxBytes,
    followPath: true,
    isRecord: (line) => parseLine(line) !== undefined,
    onSync: options.onSync,
    now: options.now,
    log: options.log,
    async rotate(full) {
      // The oldest file kept holds events answered 202, and on this server their only copy: its
      // deletion is said (a warning, a metric). Before, only "rotated to .1" was logged (info), and
      // events a lagging reader of the files had not read yet went without a word.
      // The files move up to the first free number; the oldest is deleted only when .1 … .N are all
      // taken. Timeline this guards against: a rotation deletes .N, moves the others up, and then
      // cannot move the full file to .1 (EIO): its batch is answered 500 and retried. Before, each
      // retry deleted .N again (the others having moved up), one more file of accepted events per
      // try, until none was left.
      let free = 1
      while (free <= keep && (await fs.stat(rotated(free)))) free++
      if (free > keep) {
        const oldest = await fs.stat(rotated(keep))
        await fs.remove(rotated(keep))
        free = keep
        if (oldest) {
          options.log.warn(
            `events: deleted ${rotated(keep)} (${oldest.size} bytes of accepted events, the last written at ${new Date(oldest.mtimeMs).toISOString()}) to make room (--events-keep ${keep}); ` +
              'whatever reads the events files must have read it by now, or keep more',
          )
          options.onDeleted?.(oldest.size)
        }
      }
      for (let n = free - 1; n >= 1; n--) await fs.rename(rotated(n), rotated(n + 1))
      await fs.rename(full, rotated(1))
      await fs.syncDir(dirname(full))
      options.log.info(`events: ${basename(full)} reached ${options.maxBytes} bytes; rotated to ${basename(rotated(1))}`)
      return full
    },
  })
  return {
    open: () => appendLog.open(),
    append: (events) => appendLog.append(toLines(events, (event) => event)),
    readBack: readStoredLine,
    // Ids are read back from the newest file on, until one is older than the window: our own
    // `.1` … `.N`, and logrotate's `dateext` names (`events.jsonl-20261204`, any dateformat of
    // digits), newest first by modification. Before, a dateext rotation hid every id it moved
    // from the next start: client retries of those events were stored twice. Compressed files
    // (`.gz` …) would have to be inflated whole to reach their last lines: they are only named.
    async files() {
      const dir = dirname(options.path)
      const base = basename(options.path)
      const older: Array<{ path: string; mtimeMs: number }> = []
      const compressed: string[] = []
      for (const name of await fs.list(dir)) {
        if (!name.startsWith(base)) continue
        const rest = name.slice(base.length)
        const own = /^\.(\d+)$/.exec(rest)
        const dated = /^-\d[\d_.-]*$/.test(rest)
        if ((own && Number(own[1]) >= 1) || dated) {
          const stat = await fs.stat(join(dir, name))
          if (stat) older.push({ path: join(dir, name), mtimeMs: stat.mtimeMs })
          if (stat && own && Number(own[1]) > keep) above.push({ path: join(dir, name), n: Number(own[1]), ino: stat.ino, dev: stat.dev })
        } else if (/^(\.\d+|-\d[\d_.-]*)\.(gz|bz2|xz|zst|Z|lz4)$/.test(rest)) compressed.push(name)
      }
      if (compressed.length > 0) {
        options.log.warn(
          `events: ${compressed.sort().join(', ')} next to ${base} ${compressed.length === 1 ? 'is' : 'are'} compressed; ids in ${compressed.length === 1 ? 'it' : 'them'} are not read back at start, ` +
            `so a client's retry of those events after this restart is stored again (logrotate: delaycompress keeps the newest rotated file readable)`,
        )
      }
      older.sort((a, b) => b.mtimeMs - a.mtimeMs)
      return [options.path, ...older.map((file) => file.path)]
    },
    // Files numbered above `keep` (a restart with --events-keep lowered, 5 → 2: .3 … .5) are read
    // back once, so their ids are duplicates in this run as a kept file's are, then deleted as a
    // rotation deletes what `keep` has no room for: said (one warning) and counted. Before, they
    // stayed for ever, never read back nor deleted, and nothing said so. Kept, they would be files
    // of accepted events this server neither counts nor rotates; --events-keep is what it keeps.
    //
    // A file whose ids could not be read back (EIO) is left, and so is one that is no longer the
    // file listed (renamed over since, by a logrotate run): what it holds was not read. Before, both
    // were deleted, the warning saying their ids were read back.
    //
    // A file past the de-duplication window (older than it, or past its maxIds newest ids) is not
    // read: its ids would be forgotten at once. It is deleted all the same, and said apart: before,
    // the one warning said "their ids were read back first" of it too.
    async readBackDone(unread, read) {
      const found = above
      above = []
      if (found.length === 0) return
      const deleted: Array<{ path: string; size: number }> = []
      const failed: string[] = []
      const left: string[] = []
      for (const { path, ino, dev } of found.sort((a, b) => a.n - b.n)) {
        const stat = await fs.stat(path).catch(() => undefined)
        if (unread.has(path)) {
          left.push(`${path} (its ids could not be read back)`)
          continue
        }
        if (!stat) continue
        if (stat.ino !== ino || stat.dev !== dev) {
          left.push(`${path} (replaced since it was read back: renamed over by another program?)`)
          continue
        }
        try {
          await fs.remove(path)
          deleted.push({ path, size: stat.size })
        } catch (error) {
          failed.push(`${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
        }
      }
      const sayDeleted = (files: Array<{ path: string; size: number }>, why: string) => {
        if (files.length === 0) return
        const named = files.slice(0, 10).map((file) => `${file.path} (${file.size} bytes)`)
        const rest = files.slice(10)
        const more = rest.length > 0 ? ` and ${rest.length} more (${rest.reduce((sum, file) => sum + file.size, 0)} bytes)` : ''
        options.log.warn(
          `events: deleted ${named.join(', ')}${more}, rotated files of accepted events numbered above --events-keep ${keep} (left by a run that kept more); ` +
            `${why}; whatever reads the events files must have read them by now, or keep more`,
        )
      }
      sayDeleted(deleted.filter((file) => read.has(file.path)), 'their ids were read back first')
      sayDeleted(
        deleted.filter((file) => !read.has(file.path)),
        'older than the de-duplication window (or past its maxIds newest ids), so not read back: a retry of their events would not be caught as a duplicate in any case',
      )
      for (const file of deleted) options.onDeleted?.(file.size)
      if (left.length > 0) options.log.warn(`events: ${left.join(', ')}: numbered above --events-keep ${keep}, not read back, so left as they are (tried again at the next start)`)
      if (failed.length > 0) options.log.warn(`events: cannot delete ${failed.join(', ')}, numbered above --events-keep ${keep}; left as they are (read back and tried again at the next start)`)
    },
    reset: () =>
      appendLog.exclusive(async () => {
        await appendLog.truncateAll()
        for (let n = 1; n <= keep; n++) await fs.remove(rotated(n))
      }),
    close: () => appendLog.close(),
    busy: () => appendLog.busy(),
  }
}

/**
 * A line of the events file read back at start: only the four fields every event has are checked
 * (the line was validated before it was written; a start reads up to 100,000 of them, and the
 * full schema would multiply that cost). Undefined when it is not an event.
 */
export function readStoredLine(line: Buffer): ReceivedEvent | undefined {
  try {
    const value = JSON.parse(line.toString('utf8')) as Record<string, unknown> | null
    const ok =
      typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value.id === 'string' && value.id !== '' &&
      (value.type === 'exposure' || value.type === 'custom') && typeof value.name === 'string' && typeof value.time === 'number'
    return ok ? (value as ReceivedEvent) : undefined
  } catch {
    return undefined
  }
}

/** One stored line back as an event, checked against the full schema; undefined when it is not one. */
export function parseLine(line: Buffer): ReceivedEvent | undefined {
  try {
    const parsed = eventSchema.safeParse(JSON.parse(line.toString('utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
