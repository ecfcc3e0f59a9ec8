// The relay's durable spool: accepted events wait here until the upstream sink answered 2xx.
//
// Layout of the directory: segments `seg-0000000000000001.jsonl`, … (appended with the same
// crash-safe discipline as the events file: one write per group, fsync before the 202, cut back
// on failure, torn tail repaired on open), and `cursor.json` = the first line not yet delivered
// `{segment, offset}`, replaced atomically after each delivered batch. A segment wholly behind
// the cursor is deleted. A crash between a 2xx and the cursor write re-sends that batch; the
// sink de-duplicates by id (CONTRACT §2.2), so each event reaches it once.
import { join } from 'node:path'
import type { ServerLogger } from '../logger'
import { createAppendLog, type AppendLog } from './appendLog'
import type { EventStore } from './eventStore'
import { nodeFileSystem, readSmallFile, writeFileAtomic, type EventFileSystem } from './fileSystem'
import type { ReceivedEvent } from './schema'
import { createSegmentReader, READ_WINDOW, SEGMENT, segmentName } from './segmentReader'
import { realClock } from './sink'
import { toLines } from './toLines'

/** Default {@link SpoolOptions.segmentBytes}: 8 MiB. */
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024

/** Where the next undelivered line starts. */
export interface SpoolCursor {
  segment: number
  offset: number
}

/** A run of spooled events, read from the cursor. */
export interface SpoolBatch {
  events: ReceivedEvent[]
  /** The cursor just past these events (and past any unreadable line skipped on the way). */
  next: SpoolCursor
  /** Lines that could not be read back and were skipped. */
  skipped: number
}

/** Options of {@link createSpool}. */
export interface SpoolOptions {
  /** The spool directory (created). Required. */
  dir: string
  /** Segment size cap. Default {@link DEFAULT_SEGMENT_BYTES}. */
  segmentBytes?: number
  /** Default {@link nodeFileSystem}. */
  fs?: EventFileSystem
  /**
   * The clock (epoch ms) stamped on each spooled event (`at`, kept across restarts) and on
   * `cursorUnsaved.since`: the system clock's. Default `Date.now`.
   */
  now?: () => number
  /**
   * The clock of `oldestAt()`, read against the forwarder's `now` for the oldest age. Default the
   * sink's `realClock` (does not step with the system clock); `now` when only `now` is given.
   */
  steady?: () => number
  onSync?: (seconds: number, bytes: number) => void
  /** The clock (epoch ms) of `busy()`. Default `Date.now`. */
  busyNow?: () => number
  log: ServerLogger
}

/** The spool: an {@link EventStore} for the sink on one side, a reader for the forwarder on the other. */
export interface Spool extends EventStore {
  /** Reads up to `maxEvents` events (at most `maxBytes` of lines, at least one) from the cursor. */
  read(maxEvents: number, maxBytes: number): Promise<SpoolBatch | undefined>
  /** Moves the cursor to `next` (durably), forgetting `count` delivered or dropped events. */
  ack(next: SpoolCursor, count: number): Promise<void>
  /** Events spooled and not yet delivered or dropped. */
  pending(): number
  /** When the oldest pending event was spooled, on the `steady` clock (epoch ms), or undefined when none is. */
  oldestAt(): number | undefined
  /**
   * Delivered events the saved cursor does not know of yet (its write failed on a full disk), and
   * since when (epoch ms): a crash now sends them again. Undefined while the cursor is saved.
   */
  cursorUnsaved(): { events: number; since: number } | undefined
  /**
   * Ends the forwarder's read in flight at its next file-system call (it rejects), and every read
   * after it: the forwarder is stopping. A recount of a large spool is read after read, each
   * returning: before, a close waited for all of it, gave up after 5 s and blamed a hung write.
   */
  interrupt(): void
  /** Called after each durable append (the forwarder wakes up). */
  onAppend(listener: () => void): void
  /**
   * The forwarder's read or cursor write in flight: since when its latest file-system call has
   * been under way (the `busyNow` clock) and on which path; undefined when none is. A call on a
   * mount that died never returns nor fails; a long count makes calls that return.
   */
  readerBusy(): { since: number; path: string } | undefined
  /**
   * Undelivered events found gone since the last call, with a segment deleted or moved from
   * outside (an operator's `rm`); they no longer count in `pending`. The forwarder counts them
   * as dropped.
   */
  takeLost(): number
}

/** Creates a {@link Spool}; call `open()` first. */
export function createSpool(options: SpoolOptions): Spool {
  const fs = options.fs ?? nodeFileSystem
  const now = options.now ?? Date.now
  const steady = options.steady ?? options.now ?? realClock.now
  // The oldest event's time on the steady clock. Stamps are written on the system clock: one on
  // the steady clock (7dd6ead) kept whatever the system clock read at the process's start, so a
  // relay started two hours behind (NTP syncing after it) wrote every stamp two hours early, and
  // after a restart the oldest waiting event read two hours older than it was. A stamp read back
  // from disk is moved onto the steady clock as it is read; one appended now is the steady now,
  // so a system clock stepped while the events wait moves no age (7dd6ead's timeline). Left: a
  // step at the very moment a stamp is read back (an ack's next oldest) skews that age until the
  // next ack reads another.
  const fromStamp = (at: number | undefined) => (at === undefined ? undefined : steady() - (now() - at))
  const { dir, log } = options
  const cursorPath = join(dir, 'cursor.json')
  let active = 1
  let cursor: SpoolCursor = { segment: 1, offset: 0 }
  let pending = 0
  let oldest: number | undefined
  // Segments found missing (and accounted for) by `recover`, and the events lost with them.
  const gone = new Set<number>()
  let lost = 0
  // The append log found its segment moved, deleted or cut short: the next read counts again.
  let changed = false
  // Sizes of the segments no longer appended to, as counted into `pending`: one found shorter was
  // cut from outside (by hand, a file system's crash, a restore), and what it held is counted again.
  const sealed = new Map<number, number>()
  // Segments whose torn end was counted lost.
  const tornCounted = new Set<number>()
  const listeners: Array<() => void> = []
  let appendLog: AppendLog
  // The forwarder's read or ack in flight (it runs one at a time), for `readerBusy`: since when
  // its latest file-system call has been under way, and on which file. A long count (a large spool
  // read again, window after window) moves `since` on with each call: only a call that does not
  // return looks stalled. Before, `since` was the start of the whole read.
  let reader: { since: number; path: string } | undefined
  const busyNow = options.busyNow ?? Date.now
  const calling = (path: string) => {
    if (reader) {
      reader.since = busyNow()
      reader.path = path
    }
  }
  // Set by `interrupt`: reads end at their next file-system call.
  let interrupted = false
  // Bumped by `reset`: a recount that began before it does not write its counts over it.
  let generation = 0
  // Delivered batches whose cursor could not be written (a full disk) since the last one saved,
  // the events in them, and since when (shown by `cursorUnsaved`: before, only the log said it).
  let unsaved = 0
  let unsavedEvents = 0
  let unsavedSince = 0
  const timed = async <T>(path: string, work: () => Promise<T>): Promise<T> => {
    const mine = { since: busyNow(), path }
    reader = mine
    try {
      return await work()
    } finally {
      if (reader === mine) reader = undefined
    }
  }
  const createLog = (segment: number) => createAppendLog({
    path: join(dir, segmentName(segment)),
    fs,
    maxBytes: options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    isRecord: (line) => readLine(line) !== undefined,
    followPath: 'rotate',
    onMovedOn: () => void (changed = true),
    onSync: options.onSync,
    now: options.busyNow,
    log,
    async rotate(_full, size) {
      // No await before `active` moves on: a reader must not see the old segment as active with
      // the append log's size already 0.
      sealed.set(active, size)
      active++
      return join(dir, segmentName(active))
    },
  })

  const segments = async () =>
    (await fs.list(dir))
      .map((name) => SEGMENT.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)

  // Only what is fsynced is read: the active segment up to the append log's committed size.
  // Undefined: a segment that is not there (deleted or moved from outside).
  const durableSize = async (segment: number) =>
    appendLog && appendLog.path() === join(dir, segmentName(segment)) ? appendLog.size() : (await fs.stat(join(dir, segmentName(segment))))?.size
  const { readLines, countLines } = createSegmentReader({ dir, fs, log, active: () => active, durableSize, gone, sealed, calling, interrupted: () => interrupted })

  // Timeline this guards against: an operator runs `rm seg-…3.jsonl` (or moves it away) under a
  // running relay. The append log wrote on into the deleted inode, so every event answered 202
  // after it was gone at the next restart, and each read met ENOENT: the forwarder backed off and
  // retried for ever, with `pending` still counting the lost events. Now the append log goes on in
  // a new segment (followPath 'rotate'), and here, between appends, the cursor moves past the
  // missing segments and what is left is counted again: the difference was lost, and is said so.
  //
  // Only finding what changed holds the append log (a few stats); the count of what is left, a
  // read of the whole spool, runs beside the appends, up to where the log ended when it was
  // looked at: what is appended meanwhile is counted by `append` as ever. Before, the count held
  // the append log: after a long outage (a large spool) every events request waited behind it and
  // was answered 503 STORE_STALLED, the relay refusing events while nothing was hung. The
  // forwarder (the only reader: nothing acks meanwhile) waits for it.
  const recover = async () => {
    const found = await appendLog.exclusive(async () => {
      // (follow() itself may set `changed`: this recount covers it.)
      const movedOn = (await appendLog.follow()) || changed
      changed = false
      let from = cursor
      const missing: number[] = []
      const shrunk: number[] = []
      for (let segment = cursor.segment; segment <= active; segment++) {
        const size = await durableSize(segment)
        if (size !== undefined && segment < active && size < (sealed.get(segment) ?? 0)) shrunk.push(segment)
        if (size !== undefined || gone.has(segment)) continue
        missing.push(segment)
        gone.add(segment)
        if (segment === from.segment && segment < active) from = { segment: segment + 1, offset: 0 }
      }
      if (!movedOn && missing.length === 0 && shrunk.length === 0) return undefined
      // A cursor inside what was cut off: that segment is done (the cut lines are counted lost).
      if (shrunk.includes(from.segment) && from.offset > ((await durableSize(from.segment)) ?? 0)) from = { segment: from.segment + 1, offset: 0 }
      // After an await: every append fsynced by now has been counted into `pending`.
      return { from, end: { segment: active, offset: appendLog.size() }, pendingThen: pending, generation, missing, shrunk }
    })
    if (!found) return
    const { from, end, pendingThen, missing, shrunk } = found
    let left: Awaited<ReturnType<typeof countLines>>
    try {
      left = await countLines(from, end)
    } catch (error) {
      // Counted again at the next read (a read error here left `pending` as it was).
      changed = true
      throw error
    }
    if (found.generation !== generation) return
    // A torn end is counted lost when it is read, not here as well.
    const lostNow = Math.max(0, pendingThen - left.lines - left.torn)
    cursor = from
    pending = left.lines + (pending - pendingThen)
    lost += lostNow
    const { lines } = await readLines(cursor, 1, READ_WINDOW)
    oldest = pending > 0 ? fromStamp(lines[0] && readLine(lines[0].line)?.at) : undefined
    log.error(
      `events spool: ${[...missing, ...shrunk].map(segmentName).join(', ') || 'a segment'} deleted, moved or cut short from outside the relay; ` +
        `${lostNow} undelivered event(s) in it are lost (counted as dropped); delivering on from ${segmentName(cursor.segment)}`,
    )
  }

  return {
    async open() {
      await fs.mkdirp(dir)
      const found = await segments()
      const saved = await readSmallFile(fs, cursorPath)
      if (saved !== undefined) {
        try {
          const parsed = JSON.parse(saved) as SpoolCursor
          if (Number.isSafeInteger(parsed.segment) && Number.isSafeInteger(parsed.offset) && parsed.segment >= 1 && parsed.offset >= 0) cursor = parsed
        } catch {
          log.error(`events spool: ${cursorPath} is unreadable; delivering from the oldest segment (the sink de-duplicates)`)
        }
      }
      if (found.length > 0 && cursor.segment < found[0]) cursor = { segment: found[0], offset: 0 }
      active = Math.max(found.at(-1) ?? 1, cursor.segment)
      // Segments wholly behind the cursor were delivered; a crash may have left them.
      for (const segment of found) if (segment < cursor.segment) await fs.remove(join(dir, segmentName(segment)))
      appendLog = createLog(active)
      await appendLog.open()
      // A cursor past the end of its segment is not one this spool wrote: start that segment over
      // (a re-send, which the sink de-duplicates) rather than read from the middle of a line.
      if (cursor.offset > ((await durableSize(cursor.segment)) ?? 0)) {
        log.error(`events spool: the cursor points past the end of ${segmentName(cursor.segment)}; delivering that segment again`)
        cursor = { segment: cursor.segment, offset: 0 }
      }
      // Count what is pending by counting newlines, 1 MiB at a time, without splitting lines: a
      // spool grown by a long outage must not hold up the start.
      pending = (await countLines(cursor)).lines
      const { lines } = await readLines(cursor, 1, READ_WINDOW)
      oldest = fromStamp(lines[0] && readLine(lines[0].line)?.at)
    },
    async append(events) {
      const at = now()
      await appendLog.append(toLines(events, (event) => ({ at, event })))
      pending += events.length
      oldest ??= steady()
      for (const listener of listeners) listener()
    },
    async files() {
      return (await segments()).reverse().map((n) => join(dir, segmentName(n)))
    },
    readBack: (line) => readLine(line)?.event,
    read: (maxEvents, maxBytes) => timed(join(dir, segmentName(cursor.segment)), async () => {
      let read: Awaited<ReturnType<typeof readLines>>
      try {
        read = await readLines(cursor, maxEvents, maxBytes)
      } catch (error) {
        // The segment being read vanished between its size and its open (the active one, or an rm
        // under the read): account for it, then read again.
        const code = (error as NodeJS.ErrnoException).code
        if (code !== 'ENOENT' && code !== 'ESHORT') throw error
        await recover()
        read = await readLines(cursor, maxEvents, maxBytes)
      }
      if (read.missing || changed) {
        await recover()
        read = await readLines(cursor, maxEvents, maxBytes)
      }
      const { lines, position } = read
      if (lines.length === 0) return undefined
      const events: ReceivedEvent[] = []
      let skipped = 0
      for (const { line, torn } of lines) {
        const record = readLine(line)
        if (record) events.push(record.event)
        else if (torn === undefined) skipped++
        // Once per segment: a batch read again (its ack failed) does not count it twice.
        else if (!tornCounted.has(torn)) {
          tornCounted.add(torn)
          lost++
        }
      }
      return { events, next: position, skipped }
    }),
    ack: (next, count) => timed(cursorPath, async () => {
      try {
        await writeFileAtomic(fs, cursorPath, JSON.stringify(next))
        if (unsaved) log.info(`events spool: the cursor is saved again (${unsaved} delivered batch(es) went unsaved while the disk was full)`)
        unsaved = 0
        unsavedEvents = 0
      } catch (error) {
        // Timeline this guards against: the disk fills while the upstream is away (appends are
        // refused, their clients keep the events); the upstream comes back and takes a batch,
        // but its cursor cannot be written. Before, the batch was sent again and again, and no
        // delivered segment was deleted (that came after the cursor write), so nothing made room:
        // the relay stayed wedged until an operator freed space. The sink has the batch: the
        // spool moves on in memory and deletes what it delivered, which makes room; a later ack
        // writes the cursor. A crash meanwhile starts again from the cursor last written (or the
        // oldest segment left, see open()): a re-send, which the sink de-duplicates.
        // EDQUOT is the same full disk on a volume with quotas (NFS, XFS): before, it wedged as above.
        const code = (error as NodeJS.ErrnoException).code
        if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error
        if (unsaved === 0) unsavedSince = now()
        unsavedEvents += count
        if (unsaved++ === 0) log.error(`events spool: the disk is full${code === 'EDQUOT' ? ' (its quota is used up)' : ''}: cannot save the cursor (${(error as Error).message}); delivering on and deleting what is delivered to make room (a crash now would send again what was delivered since)`)
      }
      const done = cursor.segment
      cursor = next
      // The cursor moved: the ack stands even if a delivered segment cannot be deleted now (open()
      // deletes what lies behind the cursor); a throw here would leave `pending` counting it.
      for (let segment = done; segment < cursor.segment; segment++) {
        sealed.delete(segment)
        tornCounted.delete(segment)
        await fs.remove(join(dir, segmentName(segment))).catch((error: Error) => log.warn(`events spool: could not delete the delivered ${segmentName(segment)} (${error.message}); it goes at the next start`))
      }
      // The next oldest is the line at the cursor (one small read). The counts change last, with
      // no await after them, so a reader never sees `pending` ahead of the forwarder's stats.
      let nextOldest: number | undefined
      for (let attempt = 0; attempt < 2 && nextOldest === undefined && pending - count > 0; attempt++) {
        try {
          const { lines } = await readLines(cursor, 1, READ_WINDOW)
          nextOldest = fromStamp(lines[0] && readLine(lines[0].line)?.at)
        } catch {
          // What follows the cursor was cut or moved (ESHORT, ENOENT) while the batch was out: the
          // ack stands, and the next read recounts from here. Thrown, `pending` kept the delivered
          // batch and that recount counted it lost as well.
          changed = true
          break
        }
      }
      pending = Math.max(0, pending - count)
      oldest = pending > 0 ? nextOldest : undefined
    }),
    pending: () => pending,
    readerBusy: () => reader,
    takeLost() {
      const n = lost
      lost = 0
      return n
    },
    oldestAt: () => oldest,
    interrupt: () => void (interrupted = true),
    cursorUnsaved: () => (unsaved > 0 ? { events: unsavedEvents, since: unsavedSince } : undefined),
    onAppend: (listener) => void listeners.push(listener),
    reset: () =>
      appendLog.exclusive(async () => {
        log.warn(`events spool: reset; ${pending} undelivered event(s) discarded`)
        generation++
        await appendLog.truncateAll()
        for (const segment of await segments()) if (segment !== active) await fs.remove(join(dir, segmentName(segment)))
        sealed.clear()
        tornCounted.clear()
        cursor = { segment: active, offset: 0 }
        await writeFileAtomic(fs, cursorPath, JSON.stringify(cursor))
        unsaved = unsavedEvents = 0
        pending = 0
        oldest = undefined
      }),
    close: () => appendLog.close(),
    busy: () => appendLog?.busy(),
  }

}

/**
 * A spool line back as `{at, event}`, or undefined when it is not one. Only the shape is checked:
 * the event was validated by the schema before it was spooled, and the upstream validates again.
 */
function readLine(line: Buffer): { at: number; event: ReceivedEvent } | undefined {
  try {
    const parsed = JSON.parse(line.toString('utf8')) as { at?: unknown; event?: { id?: unknown } }
    const ok = typeof parsed.at === 'number' && typeof parsed.event === 'object' && parsed.event !== null && typeof parsed.event.id === 'string'
    return ok ? (parsed as { at: number; event: ReceivedEvent }) : undefined
  } catch {
    return undefined
  }
}
