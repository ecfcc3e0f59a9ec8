// Reading the spool's segments back: lines from a cursor (a batch for the forwarder), and the
// count of lines from a cursor (what `pending` counts), a window of bytes at a time. Only what is
// durable is read (`durableSize`); the spool (spool.ts) keeps the cursor and the counts (spoolState.ts).
import { join } from 'node:path'
import type { ServerLogger } from '../logger'
import type { EventFileSystem } from './fileSystem'
import type { SpoolCursor } from './spoolCursor'

/** Segment file names: `seg-0000000000000001.jsonl`, … */
export const SEGMENT = /^seg-(\d{16})\.jsonl$/
/** The file name of segment `n`. */
export const segmentName = (n: number) => `seg-${String(n).padStart(16, '0')}.jsonl`
/** The most bytes read at once; a line longer than that is not one this spool wrote. */
export const READ_WINDOW = 2 * 1024 * 1024

/** What {@link createSegmentReader} reads of the spool's state. */
export interface SegmentReaderOptions {
  /** The spool directory. Required. */
  dir: string
  /** The file system the segments are read through. Required. */
  fs: EventFileSystem
  /** Where a torn end or an overlong line is reported. Required. */
  log: ServerLogger
  /** The segment appended to now. */
  active(): number
  /** Bytes of `segment` known durable; undefined when it is not there. */
  durableSize(segment: number): Promise<number | undefined>
  /** Segments found missing and already accounted for. */
  gone: ReadonlySet<number>
  /** Sizes of the segments no longer appended to, as counted: `countLines` sets them. */
  sealed: Map<number, number>
  /** Told of each file-system call before it is made, with its path (the spool's `readerBusy`). */
  calling(path: string): void
  /** True once reads must end (the spool's `interrupt`): the next call rejects with ECLOSING. */
  interrupted(): boolean
}

/** Reads lines from a cursor (`readLines`) and counts them (`countLines`). */
export function createSegmentReader(options: SegmentReaderOptions) {
  const { dir, fs, log, active, durableSize, gone, sealed, calling, interrupted } = options

  async function readLines(from: SpoolCursor, maxLines: number, maxBytes: number) {
    // `torn`: the segment whose end (it is no longer appended to) has no newline: not a line this
    // spool wrote whole; its event is lost, and it was never counted in `pending`.
    const lines: Array<{ line: Buffer; torn?: number }> = []
    let position = { ...from }
    let bytes = 0
    let missing = false
    while (lines.length < maxLines && position.segment <= active()) {
      const found = await durableSize(position.segment)
      if (found === undefined && !gone.has(position.segment)) missing = true
      if (found !== undefined && found < (sealed.get(position.segment) ?? 0)) throw Object.assign(new Error(`${segmentName(position.segment)} is shorter than what was written to it`), { code: 'ESHORT' })
      const size = found ?? 0
      if (position.offset >= size) {
        if (position.segment === active()) break
        position = { segment: position.segment + 1, offset: 0 }
        continue
      }
      // Read about what the batch may hold; only a line longer than that needs the full window.
      const wanted = Math.min(Math.max(64 * 1024, maxBytes + 16 * 1024), READ_WINDOW, size - position.offset)
      let window = await readWindow(position, wanted)
      // Shorter than what was fsynced: cut from outside (`truncate`). Before, an empty window was
      // taken for a line too long, skipped as nothing, and counted as a dropped event, batch after batch.
      if (window.length < wanted) throw Object.assign(new Error(`${segmentName(position.segment)} is shorter than what was written to it`), { code: 'ESHORT' })
      if (window.indexOf(0x0a) === -1 && window.length < Math.min(READ_WINDOW, size - position.offset)) {
        window = await readWindow(position, Math.min(READ_WINDOW, size - position.offset))
      }
      const base = position.offset
      let start = 0
      for (let newline = window.indexOf(0x0a); newline !== -1; newline = window.indexOf(0x0a, start)) {
        const line = window.subarray(start, newline)
        if (lines.length > 0 && bytes + line.length > maxBytes) return { lines, position, missing }
        bytes += line.length
        start = newline + 1
        position = { segment: position.segment, offset: base + start }
        lines.push({ line: Buffer.from(line) })
        if (lines.length >= maxLines) return { lines, position, missing }
      }
      if (start === 0) {
        // No newline in a whole window: not a line this spool wrote. Skipped whole, to its newline
        // (one line, as countLines counts it) or the segment's end, reading on a window at a time:
        // skipped a window at a time, a stray 1 GB run of bytes was 512 errors in the log and 512
        // events counted dropped, while `pending` had counted one.
        let end = base + window.length
        let ended = false
        while (end < size && !ended) {
          const want = Math.min(READ_WINDOW, size - end)
          const next = await readWindow({ segment: position.segment, offset: end }, want)
          if (next.length < want) throw Object.assign(new Error(`${segmentName(position.segment)} is shorter than what was written to it`), { code: 'ESHORT' })
          const newline = next.indexOf(0x0a)
          ended = newline !== -1
          end += ended ? newline + 1 : next.length
        }
        const torn = position.segment < active() && !ended
        if (torn) log.error(`events spool: ${segmentName(position.segment)} ends in a torn line (${end - base} byte(s) without a newline: cut short on disk); its event is lost (counted as dropped)`)
        else log.error(`events spool: a line of ${end - base} bytes (over ${READ_WINDOW}) in ${segmentName(position.segment)}; skipped`)
        position = { segment: position.segment, offset: end }
        lines.push({ line: Buffer.alloc(0), torn: torn ? position.segment : undefined })
      }
    }
    return { lines, position, missing }
  }

  // Lines (what `pending` counts) from `from` up to `end` (default: all that is durable), and the
  // segments no longer appended to whose end is torn (no newline: read as one unreadable piece,
  // its event lost). Takes each such segment's size as the one counted (see `sealed`).
  async function countLines(from: SpoolCursor, end: SpoolCursor = { segment: active(), offset: Infinity }): Promise<{ lines: number; torn: number }> {
    let count = 0
    let torn = 0
    for (let segment = from.segment; segment <= end.segment; segment++) {
      const size = Math.min((await durableSize(segment)) ?? 0, segment === end.segment ? end.offset : Infinity)
      let last = 0x0a
      for (let offset = segment === from.segment ? from.offset : 0; offset < size; ) {
        const window = await readWindow({ segment, offset }, Math.min(1024 * 1024, size - offset))
        if (window.length === 0) break
        for (let i = window.indexOf(0x0a); i !== -1; i = window.indexOf(0x0a, i + 1)) count++
        last = window[window.length - 1]
        offset += window.length
      }
      if (segment < end.segment) {
        sealed.set(segment, size)
        if (last !== 0x0a) torn++
      }
    }
    return { lines: count, torn }
  }

  async function readWindow(at: SpoolCursor, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length)
    const path = join(dir, segmentName(at.segment))
    if (interrupted()) throw Object.assign(new Error('the spool is closing'), { code: 'ECLOSING' })
    calling(path)
    const file = await fs.open(path, 'r')
    let filled = 0
    try {
      while (filled < length) {
        calling(path)
        const read = await file.read(buffer, filled, length - filled, at.offset + filled)
        if (read === 0) break
        filled += read
      }
    } finally {
      await file.close()
    }
    return buffer.subarray(0, filled)
  }

  return { readLines, countLines }
}
