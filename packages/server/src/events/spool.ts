// The relay's durable spool: accepted events wait here until the upstream sink answered 2xx.
//
// Layout of the directory: segments `seg-0000000000000001.jsonl`, … (appended with the same
// crash-safe discipline as the events file: one write per group, fsync before the 202, cut back
// on failure, torn tail repaired on open), and `cursor.json` = the first line not yet delivered
// `{segment, offset}`, replaced atomically after each delivered batch. A segment wholly behind
// the cursor is deleted. A crash between a 2xx and the cursor write re-sends that batch; the
// sink de-duplicates by id (CONTRACT §2.2), so each event reaches it once.
import { join } from 'node:path'
import { createAppendLog, type AppendLog } from './appendLog'
import { createCursorSaver } from './cursorSaver'
import type { EventStore } from './eventStore'
import { nodeFileSystem, readSmallFile, writeFileAtomic } from './fileSystem'
import { createReaderBusy } from './readerBusy'
import type { ReceivedEvent } from './schema'
import { createSegmentReader, READ_WINDOW, SEGMENT, segmentName } from './segmentReader'
import { realClock } from './sink'
import type { SpoolBatch, SpoolCursor } from './spoolCursor'
import { createSpoolRecovery } from './spoolRecovery'
import { createSpoolState } from './spoolState'
import { readSpoolLine } from './spoolLine'
import { DEFAULT_SEGMENT_BYTES, type SpoolOptions } from './spoolOptions'
import { toLines } from './toLines'

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
  // The cursor, the counts and the active segment, read and written in place (see spoolState.ts).
  const state = createSpoolState()
  // Segments found missing (and accounted for) by `recover` (the events lost with them: `state.lost`).
  const gone = new Set<number>()
  // Sizes of the segments no longer appended to, as counted into `pending`: one found shorter was
  // cut from outside (by hand, a file system's crash, a restore), and what it held is counted again.
  const sealed = new Map<number, number>()
  // Segments whose torn end was counted lost.
  const tornCounted = new Set<number>()
  const listeners: Array<() => void> = []
  let appendLog: AppendLog
  const busyNow = options.busyNow ?? Date.now
  // The forwarder's read or ack in flight (see readerBusy.ts).
  const readerWatch = createReaderBusy(busyNow)
  const { timed, calling } = readerWatch
  // Set by `interrupt`: reads end at their next file-system call.
  let interrupted = false
  // The saved cursor, and the delivered batches a full disk left unsaved (see cursorSaver.ts).
  const saver = createCursorSaver({ fs, path: cursorPath, now, log })
  const createLog = (segment: number) => createAppendLog({
    path: join(dir, segmentName(segment)),
    fs,
    maxBytes: options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    isRecord: (line) => readSpoolLine(line) !== undefined,
    followPath: 'rotate',
    onMovedOn: () => void (state.changed = true),
    onSync: options.onSync,
    now: options.busyNow,
    log,
    async rotate(_full, size) {
      // No await before `active` moves on: a reader must not see the old segment as active with
      // the append log's size already 0.
      sealed.set(state.active, size)
      state.active++
      return join(dir, segmentName(state.active))
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
  const { readLines, countLines } = createSegmentReader({ dir, fs, log, active: () => state.active, durableSize, gone, sealed, calling, interrupted: () => interrupted })

  // A segment deleted, moved or cut short from outside: accounted for between appends (see spoolRecovery.ts).
  const recover = createSpoolRecovery({ state, appendLog: () => appendLog, durableSize, gone, sealed, reader: { readLines, countLines }, fromStamp, log })

  return {
    async open() {
      await fs.mkdirp(dir)
      const found = await segments()
      const saved = await readSmallFile(fs, cursorPath)
      if (saved !== undefined) {
        try {
          const parsed = JSON.parse(saved) as SpoolCursor
          if (Number.isSafeInteger(parsed.segment) && Number.isSafeInteger(parsed.offset) && parsed.segment >= 1 && parsed.offset >= 0) state.cursor = parsed
        } catch {
          log.error(`events spool: ${cursorPath} is unreadable; delivering from the oldest segment (the sink de-duplicates)`)
        }
      }
      if (found.length > 0 && state.cursor.segment < found[0]) state.cursor = { segment: found[0], offset: 0 }
      state.active = Math.max(found.at(-1) ?? 1, state.cursor.segment)
      // Segments wholly behind the cursor were delivered; a crash may have left them.
      for (const segment of found) if (segment < state.cursor.segment) await fs.remove(join(dir, segmentName(segment)))
      appendLog = createLog(state.active)
      await appendLog.open()
      // A cursor past the end of its segment is not one this spool wrote: start that segment over
      // (a re-send, which the sink de-duplicates) rather than read from the middle of a line.
      if (state.cursor.offset > ((await durableSize(state.cursor.segment)) ?? 0)) {
        log.error(`events spool: the cursor points past the end of ${segmentName(state.cursor.segment)}; delivering that segment again`)
        state.cursor = { segment: state.cursor.segment, offset: 0 }
      }
      // Count what is pending by counting newlines, 1 MiB at a time, without splitting lines: a
      // spool grown by a long outage must not hold up the start.
      state.pending = (await countLines(state.cursor)).lines
      const { lines } = await readLines(state.cursor, 1, READ_WINDOW)
      state.oldest = fromStamp(lines[0] && readSpoolLine(lines[0].line)?.at)
    },
    async append(events) {
      const at = now()
      await appendLog.append(toLines(events, (event) => ({ at, event })))
      state.pending += events.length
      state.oldest ??= steady()
      for (const listener of listeners) listener()
    },
    async files() {
      return (await segments()).reverse().map((n) => join(dir, segmentName(n)))
    },
    readBack: (line) => readSpoolLine(line)?.event,
    read: (maxEvents, maxBytes) => timed(join(dir, segmentName(state.cursor.segment)), async () => {
      let read: Awaited<ReturnType<typeof readLines>>
      try {
        read = await readLines(state.cursor, maxEvents, maxBytes)
      } catch (error) {
        // The segment being read vanished between its size and its open (the active one, or an rm
        // under the read): account for it, then read again.
        const code = (error as NodeJS.ErrnoException).code
        if (code !== 'ENOENT' && code !== 'ESHORT') throw error
        await recover()
        read = await readLines(state.cursor, maxEvents, maxBytes)
      }
      if (read.missing || state.changed) {
        await recover()
        read = await readLines(state.cursor, maxEvents, maxBytes)
      }
      const { lines, position } = read
      if (lines.length === 0) return undefined
      const events: ReceivedEvent[] = []
      let skipped = 0
      for (const { line, torn } of lines) {
        const record = readSpoolLine(line)
        if (record) events.push(record.event)
        else if (torn === undefined) skipped++
        // Once per segment: a batch read again (its ack failed) does not count it twice.
        else if (!tornCounted.has(torn)) {
          tornCounted.add(torn)
          state.lost++
        }
      }
      return { events, next: position, skipped }
    }),
    ack: (next, count) => timed(cursorPath, async () => {
      await saver.save(next, count)
      const done = state.cursor.segment
      state.cursor = next
      // The cursor moved: the ack stands even if a delivered segment cannot be deleted now (open()
      // deletes what lies behind the cursor); a throw here would leave `pending` counting it.
      for (let segment = done; segment < state.cursor.segment; segment++) {
        sealed.delete(segment)
        tornCounted.delete(segment)
        await fs.remove(join(dir, segmentName(segment))).catch((error: Error) => log.warn(`events spool: could not delete the delivered ${segmentName(segment)} (${error.message}); it goes at the next start`))
      }
      // The next oldest is the line at the cursor (one small read). The counts change last, with
      // no await after them, so a reader never sees `pending` ahead of the forwarder's stats.
      let nextOldest: number | undefined
      for (let attempt = 0; attempt < 2 && nextOldest === undefined && state.pending - count > 0; attempt++) {
        try {
          const { lines } = await readLines(state.cursor, 1, READ_WINDOW)
          nextOldest = fromStamp(lines[0] && readSpoolLine(lines[0].line)?.at)
        } catch {
          // What follows the cursor was cut or moved (ESHORT, ENOENT) while the batch was out: the
          // ack stands, and the next read recounts from here. Thrown, `pending` kept the delivered
          // batch and that recount counted it lost as well.
          state.changed = true
          break
        }
      }
      state.pending = Math.max(0, state.pending - count)
      state.oldest = state.pending > 0 ? nextOldest : undefined
    }),
    pending: () => state.pending,
    readerBusy: () => readerWatch.busy(),
    takeLost() {
      const n = state.lost
      state.lost = 0
      return n
    },
    oldestAt: () => state.oldest,
    interrupt: () => void (interrupted = true),
    cursorUnsaved: () => saver.unsaved(),
    onAppend: (listener) => void listeners.push(listener),
    reset: () =>
      appendLog.exclusive(async () => {
        log.warn(`events spool: reset; ${state.pending} undelivered event(s) discarded`)
        state.generation++
        await appendLog.truncateAll()
        for (const segment of await segments()) if (segment !== state.active) await fs.remove(join(dir, segmentName(segment)))
        sealed.clear()
        tornCounted.clear()
        state.cursor = { segment: state.active, offset: 0 }
        await writeFileAtomic(fs, cursorPath, JSON.stringify(state.cursor))
        saver.forget()
        state.pending = 0
        state.oldest = undefined
      }),
    close: () => appendLog.close(),
    busy: () => appendLog?.busy(),
  }

}
