// The events sink: de-duplicates by id within a bounded window and appends what is new to a
// durable JSON Lines file (or hands it to the forwarding spool). No event history is kept in
// memory beyond a small ring of the most recent events for tests and the demo.
import { basename, dirname, join } from 'node:path'
import type { ServerLogger } from '../logger'
import { createAppendLog, type AppendLog } from './appendLog'
import { createDedupeWindow, DEFAULT_DEDUPE_MAX_IDS, DEFAULT_DEDUPE_WINDOW_MS, type DedupeWindowOptions } from './dedupeWindow'
import { nodeFileSystem, type EventFileSystem } from './fileSystem'
import { eventSchema, type ReceivedEvent } from './schema'
import { readLinesBackward } from './tailReader'

/** Default {@link EventSinkOptions.keep}: 5 rotated files. */
export const DEFAULT_EVENTS_KEEP = 5

/** Default {@link EventSinkOptions.writeTimeoutMs}: 4 s, under the browser client's 5 s request timeout. */
export const DEFAULT_WRITE_TIMEOUT_MS = 4000

/** The timers of the write bound: `now` (epoch ms), `setTimeout`, `clearTimeout`. */
export interface SinkClock {
  /** The current time in epoch milliseconds; the default ({@link realClock}) does not step with the system clock. */
  now(): number
  /** Calls `callback` after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown
  /** Cancels a timer `setTimeout` returned; an unknown or fired handle is ignored. */
  clearTimeout(handle: unknown): void
}

/** A write (or fsync) of the store in flight longer than the bound: since when, on which path. */
export interface StoreStall {
  /** When the write that has not returned began (epoch ms). */
  since: number
  /** The file the write went to. */
  path: string
  /** How long it has been out, in whole seconds. */
  seconds: number
}

/** `busy` as a {@link StoreStall} when it has run `bound` ms or more by `now`, else undefined. */
export function stallOf(busy: { since: number; path: string } | undefined, now: number, bound: number): StoreStall | undefined {
  const age = busy && now - busy.since
  return busy && age! >= bound ? { since: busy.since, path: busy.path, seconds: Math.floor(age! / 1000) } : undefined
}

/**
 * Rejects {@link EventSink.accept} when the store did not answer within `writeTimeoutMs` (a write
 * or an fsync on a mount that died never returns nor fails), or while such a write is still hung.
 * The batch was not answered 202: its client keeps it and retries (503 + Retry-After).
 */
export class StoreStalledError extends Error {
  readonly code = 'ESTALLED'
  constructor(readonly stall: StoreStall) {
    super(`a write to ${stall.path} has not returned for ${stall.seconds} s (a disk this slow, or a hung disk or mount)`)
  }
}

/** Default {@link EventSinkOptions.recent}: the 1,000 most recent events are kept for `events()`. */
export const DEFAULT_RECENT_EVENTS = 1000

/** What a batch did: new events stored, and events whose `id` was already seen. */
export interface AcceptResult {
  /** Events new to the sink, now stored. */
  accepted: number
  /** Events whose `id` the sink had already seen: not stored again (delivery is at-least-once). */
  duplicates: number
}

/** Where accepted events go once they are new: one call per batch, resolved once durable. */
export interface EventStore {
  open(): Promise<void>
  /** Stores a batch of new events; resolves once fsynced, rejects (storing nothing) otherwise. */
  append(events: ReceivedEvent[]): Promise<void>
  /** Every file holding accepted events, newest first, for reading ids back at start. */
  files(): Promise<string[]>
  /**
   * Called once the ids of `files()` were read back at start (the events file deletes what it keeps
   * no more); `unread` names the files whose reading failed, which are not deleted, and `read` those
   * whose ids were read (the others were past the de-duplication window: older than it, or past its
   * `maxIds` newest ids).
   */
  readBackDone?(unread: ReadonlySet<string>, read: ReadonlySet<string>): Promise<void>
  /** One line of those files back as an event, or undefined when it is not one. */
  readBack(line: Buffer): ReceivedEvent | undefined
  /** Forgets every stored event. */
  reset(): Promise<void>
  close(): Promise<void>
  /** The write (or task) in flight, since when and on which path; undefined when idle (see `AppendLog.busy`). */
  busy?(): { since: number; path: string } | undefined
}

/** Options of {@link createEventSink}. */
export interface EventSinkOptions {
  /** Where new events go. Default: nowhere (memory only: dedupe and `recent()` still work). */
  store?: EventStore
  /** The bounded de-duplication window. Defaults: 100,000 ids, 24 hours. */
  dedupe?: DedupeWindowOptions
  /** How many of the most recent events `recent()` returns. Default {@link DEFAULT_RECENT_EVENTS}. */
  recent?: number
  /** Default {@link nodeFileSystem}: used to read ids back from `store.files()`. */
  fs?: EventFileSystem
  /** Told about each batch's outcome (metrics); also of a batch whose write landed after its 503. */
  onBatch?: (result: AcceptResult) => void
  /**
   * How long a batch waits for the store (its write and fsync, and the writes queued before it)
   * before `accept` rejects with {@link StoreStalledError}; while that write stays hung, later
   * batches are refused at once. Default {@link DEFAULT_WRITE_TIMEOUT_MS}.
   */
  writeTimeoutMs?: number
  /** The clock of `writeTimeoutMs` (and of the store's `busy()`). Default {@link realClock}. */
  clock?: SinkClock
  log: ServerLogger
}

/** Stores events at most once per `id` within the de-duplication window. */
export interface EventSink {
  /** Reads ids (and the recent events) back from the store's files, newest first, streaming. */
  open(): Promise<void>
  /** Stores the new events of a batch; resolves once they are durable. Rejects if they are not. */
  accept(events: ReceivedEvent[]): Promise<AcceptResult>
  /** The most recent accepted events, oldest first (at most `recent`). */
  recent(): ReceivedEvent[]
  /** Ids remembered for de-duplication now. */
  rememberedIds(): number
  /** The store's write in flight when it has run past `writeTimeoutMs`, else undefined. */
  stalled(): StoreStall | undefined
  /** Forgets every event and empties the store. */
  reset(): Promise<void>
  /** Waits for pending writes and closes the store. */
  close(): Promise<void>
}

/** Creates an {@link EventSink}. */
export function createEventSink(options: EventSinkOptions): EventSink {
  const { store, log } = options
  const fs = options.fs ?? nodeFileSystem
  // The window's clock: epoch ms that never step (see `realClock`), read back against the files'
  // times at start. Timeline this guards against: the system clock is stepped two days forward
  // for a moment (a bad NTP answer, a VM's clock set wrong) and back; on Date.now, the one batch
  // taken meanwhile found every id older than the window and forgot them all, and client retries
  // of events stored seconds before were stored again.
  const now = options.dedupe?.now ?? realClock.now
  const window = createDedupeWindow({ ...options.dedupe, now })
  const windowMs = options.dedupe?.windowMs ?? DEFAULT_DEDUPE_WINDOW_MS
  const maxIds = options.dedupe?.maxIds ?? DEFAULT_DEDUPE_MAX_IDS
  const recentLimit = Math.max(0, options.recent ?? DEFAULT_RECENT_EVENTS)
  let recent: ReceivedEvent[] = []
  const clock = options.clock ?? realClock
  const bound = Math.max(1, options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS)
  // The `since` of the stall the log told of (once per stall), until the store answers again.
  let announced: StoreStall | undefined

  const stalled = () => stallOf(store?.busy?.(), clock.now(), bound)
  const announce = (stall: StoreStall) => {
    if (announced?.since === stall.since) return
    announced = stall
    log.error(`events: ${new StoreStalledError(stall).message}; events requests are answered 503 (Retry-After) until it returns`)
  }
  const recovered = () => {
    if (!announced || stalled()) return
    log.info(`events: the write to ${announced.path} returned after ${Math.round((clock.now() - announced.since) / 1000)} s (a slow disk, not a hung one); events are taken again`)
    announced = undefined
  }

  const remember = (events: ReceivedEvent[]) => {
    if (recentLimit === 0) return
    recent.push(...events)
    if (recent.length > recentLimit * 2) recent = recent.slice(-recentLimit)
  }

  // Ids whose write is still on its way to disk, with that write.
  const writing = new Map<string, Promise<void>>()

  // Stores the new events of a batch; resolves with how many were new once they are durable, and
  // once every event it calls a duplicate is durable too. Timeline this guards against: a client
  // posts a batch, its connection drops while the write is pending, and it retries at once; the
  // retry finds the ids claimed. Answered "duplicates" at once, the client forgets the batch, and
  // if the first write then fails (its ids released, its 500 sent to nobody) the events are lost.
  // So the retry waits for that write, and stores the events itself if it failed.
  const storeNew = async (events: ReceivedEvent[]): Promise<number> => {
    const fresh: ReceivedEvent[] = []
    const pending: Array<[ReceivedEvent, Promise<void>]> = []
    // Claim ids synchronously, before any await: two concurrent retries of one batch must not
    // both count as new.
    for (const event of events) {
      if (window.claim(event.id)) fresh.push(event)
      else {
        const write = writing.get(event.id)
        if (write) pending.push([event, write])
      }
    }
    if (fresh.length > 0 && store) {
      const write = store.append(fresh)
      for (const event of fresh) writing.set(event.id, write)
      try {
        await write
      } catch (error) {
        // Unclaim, so the client's retry of this batch is stored rather than called a duplicate.
        for (const event of fresh) window.release(event.id)
        log.error(`events: could not store a batch of ${fresh.length}: ${(error as Error).message}`)
        throw error
      } finally {
        for (const event of fresh) if (writing.get(event.id) === write) writing.delete(event.id)
      }
    }
    remember(fresh)
    const lost: ReceivedEvent[] = []
    for (const [event, write] of pending) if (!(await write.then(() => true, () => false))) lost.push(event)
    return fresh.length + (lost.length > 0 ? await storeNew(lost) : 0)
  }

  return {
    async open() {
      if (!store) return
      await store.open()
      // Newest first until the window is full (by count or by time); then restore oldest first.
      const ids: Array<[string, number]> = []
      const events: ReceivedEvent[] = []
      let unreadable = 0
      const unread = new Set<string>()
      const read = new Set<string>()
      const files = await store.files()
      scan: for (const file of files) {
        const stat = await fs.stat(file)
        // A file's events were all accepted at or before its last modification.
        if (!stat || stat.mtimeMs <= now() - windowMs) break
        read.add(file)
        try {
          for await (const line of readLinesBackward(fs, file)) {
            const event = line && store.readBack(line)
            if (!event) {
              unreadable++
              continue
            }
            ids.push([event.id, stat.mtimeMs])
            if (events.length < recentLimit) events.push(event)
            if (ids.length >= maxIds) break scan
          }
        } catch (error) {
          // An older file that cannot be read (a directory or a file of root's with a rotated name)
          // costs the de-duplication of its ids, not the start. The current file was opened by now.
          if (file === files[0]) throw error
          unread.add(file)
          read.delete(file)
          log.warn(`events: cannot read ids back from ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); skipped`)
        }
      }
      for (let i = ids.length - 1; i >= 0; i--) window.restore(ids[i][0], ids[i][1])
      recent = events.reverse()
      if (unreadable > 0) log.warn(`events: skipped ${unreadable} unreadable line(s) while reading ids back`)
      await store.readBackDone?.(unread, read)
    },

    // Timeline this guards against: the mount under the events file dies after the start; a
    // batch's fsync never returns. Before, its request waited for ever, and so did every later
    // one (queued behind it): each browser's flush hung until its own timeout, and nothing said
    // why. Now the request gives up after the bound (its ids stay claimed by the write, which
    // settles them when it returns: stored, they are duplicates of the client's retry; failed,
    // they are released), and while the write is hung the next batches are refused at once.
    async accept(events) {
      const stall = stalled()
      if (stall) {
        announce(stall)
        throw new StoreStalledError(stall)
      }
      recovered()
      const work = storeNew(events)
      let timer: unknown
      const late = store && new Promise<'late'>((resolve) => (timer = clock.setTimeout(() => resolve('late'), bound)))
      let accepted: number | 'late'
      try {
        accepted = late ? await Promise.race([work, late]) : await work
      } finally {
        if (timer !== undefined) clock.clearTimeout(timer)
      }
      if (accepted === 'late') {
        const busy = store?.busy?.()
        const stall = { since: busy?.since ?? clock.now() - bound, path: busy?.path ?? 'the events store', seconds: Math.floor(bound / 1000) }
        announce(stall)
        // Stored after all: counted as accepted (the client's retry is then a duplicate).
        work.then((stored) => {
          if (stored > 0) options.onBatch?.({ accepted: stored, duplicates: 0 })
          recovered()
        }, () => recovered())
        throw new StoreStalledError(stall)
      }
      const result = { accepted, duplicates: events.length - accepted }
      options.onBatch?.(result)
      return result
    },

    recent: () => (recent.length > recentLimit ? recent.slice(-recentLimit) : recent.slice()),
    rememberedIds: () => window.size(),
    stalled,

    async reset() {
      window.clear()
      recent = []
      await store?.reset()
    },

    close: async () => store?.close(),
  }
}

/**
 * The default {@link SinkClock}: epoch ms that never step (the process's time origin plus a
 * monotonic count), so a wall clock set an hour forward does not make a write under way for
 * milliseconds look stalled (every batch refused), nor one set back hide a stall.
 */
export const realClock: SinkClock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

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

/** Serialises events as JSON Lines (one write's worth), each through `wrap`. */
export function toLines(events: ReceivedEvent[], wrap: (event: ReceivedEvent) => unknown): Buffer {
  let lines = ''
  for (const event of events) lines += JSON.stringify(wrap(event)) + '\n'
  return Buffer.from(lines, 'utf8')
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

