// The dead-letter file of the relay: events the upstream sink refused for good (a lone event
// answered 413, or 400/422 once the search for the bad event is done) after the relay had answered
// 202 for them. Before, they were dropped: counted and logged, but gone. Now each is appended to
// `<spool>/dead-letter/dead-letter.ndjson`, one line per event with the sink's status, the time and
// the start of the sink's answer, and fsynced BEFORE the spool's cursor moves past it; a crash
// leaves at worst a torn last line (skipped by the replay, the event being still in the spool and
// refused, and so written, again). `holdfast-server events replay-dead-letters` sends them again.
//
// Bounded (`--events-dead-letter-max-bytes`, default 64 MiB): when the next line would pass the
// bound, nothing is overwritten; the event is dropped (the only `dropped` left for a refusal) and
// it is said loudly: `deadLetter.full` in the status, holdfast_events_dead_letter_full 1, a log line.
import { dirname, join } from 'node:path'
import { writeAll, type EventFileSystem } from './fileSystem'
import type { ReceivedEvent } from './schema'

/** Default bound of the dead-letter file: 64 MiB. */
export const DEAD_LETTER_MAX_BYTES = 64 * 1024 * 1024

/** Characters of the sink's answer kept with each dead letter. */
const ERROR_CHARS = 512

/** Where the dead letters of the spool in `spoolDir` are kept. */
export function deadLetterPath(spoolDir: string): string {
  return join(spoolDir, 'dead-letter', 'dead-letter.ndjson')
}

/** One line of the dead-letter file. */
export interface DeadLetterRecord {
  /** When the sink refused it (epoch ms). */
  deadLetteredAt: number
  /** The sink's status (413, 400, 422). */
  status: number
  /** The start of the sink's answer (at most 512 characters), when it had one. */
  error?: string
  /** The refused event as the relay received it, ready to be sent again by `replay-dead-letters`. */
  event: ReceivedEvent
}

/** What the dead-letter file holds, for the status and the metrics. */
export interface DeadLetterStats {
  /** The dead-letter file (`<spool>/dead-letter/dead-letter.ndjson`). */
  path: string
  /** Bytes in the file (as of the last append, or the look at start). */
  bytes: number
  /** The file's bound (`--events-dead-letter-max-bytes`); default 64 MiB (`DEAD_LETTER_MAX_BYTES`). */
  maxBytes: number
  /** Set while the file is full: since when, and how many refused events it could not keep. */
  full?: {
    /** When an event first did not fit (epoch ms). */
    since: number
    /** Refused events dropped since then because the file was full. */
    dropped: number
  }
}

/** The dead-letter file; see the file comment. */
export interface DeadLetter {
  /**
   * Appends one line per event and fsyncs. Resolves true once they are on disk, false when the
   * file is full (nothing written). Rejects on an I/O error (a full disk): the caller keeps the
   * events in the spool and tries again later.
   */
  append(events: ReceivedEvent[], refusal: { status: number; error?: string; at: number }): Promise<boolean>
  /** The file's path, size and bound, and whether it is full; synchronous, never throws. */
  stats(): DeadLetterStats
}

/** Creates the {@link DeadLetter} of the spool in `spoolDir`. */
export function createDeadLetter(options: { spoolDir: string; fs: EventFileSystem; maxBytes?: number }): DeadLetter {
  const { fs } = options
  const path = deadLetterPath(options.spoolDir)
  const maxBytes = options.maxBytes ?? DEAD_LETTER_MAX_BYTES
  let bytes = 0
  let full: DeadLetterStats['full']
  // The size at start, so the status tells dead letters left from before a restart.
  void fs.stat(path).then((s) => void (bytes = Math.max(bytes, s?.size ?? 0)), () => undefined)

  return {
    async append(events, refusal) {
      const error = refusal.error?.slice(0, ERROR_CHARS)
      let text = events.map((event) => JSON.stringify({ deadLetteredAt: refusal.at, status: refusal.status, ...(error ? { error } : {}), event } satisfies DeadLetterRecord)).join('\n') + '\n'
      await fs.mkdirp(dirname(path))
      // Looked at each time: a replay may have emptied it since.
      const before = await fs.stat(path)
      const size = before?.size ?? 0
      // A crash mid-append left a torn last line: the new lines start on a line of their own.
      if (size > 0 && (await lastByte(fs, path, size)) !== 0x0a) text = `\n${text}`
      const data = Buffer.from(text, 'utf8')
      bytes = size
      if (size + data.length > maxBytes) {
        full = { since: full?.since ?? refusal.at, dropped: (full?.dropped ?? 0) + events.length }
        return false
      }
      const file = await fs.open(path, 'a')
      try {
        await writeAll(file, data)
        await file.datasync()
      } finally {
        await file.close().catch(() => undefined)
      }
      if (!before) await fs.syncDir(dirname(path))
      bytes = size + data.length
      full = undefined
      return true
    },
    stats: () => ({ path, bytes, maxBytes, ...(full ? { full: { ...full } } : {}) }),
  }
}

async function lastByte(fs: EventFileSystem, path: string, size: number): Promise<number | undefined> {
  const file = await fs.open(path, 'r')
  try {
    const buffer = Buffer.alloc(1)
    return (await file.read(buffer, 0, 1, size - 1)) === 1 ? buffer[0] : undefined
  } finally {
    await file.close().catch(() => undefined)
  }
}
