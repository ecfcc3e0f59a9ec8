// The spool's saved cursor (`cursor.json`), written after each delivered batch, and what a full
// disk leaves unsaved: see `save`.
import type { ServerLogger } from '../logger'
import { writeFileAtomic, type EventFileSystem } from './fileSystem'
import type { SpoolCursor } from './spoolCursor'

/** Options of {@link createCursorSaver}. */
export interface CursorSaverOptions {
  fs: EventFileSystem
  /** The cursor's file. */
  path: string
  /** The clock (epoch ms) of `unsaved().since`. */
  now: () => number
  log: ServerLogger
}

/** What {@link createCursorSaver} returns. */
export interface CursorSaver {
  /**
   * Writes `next` as the saved cursor. On a full disk (ENOSPC, EDQUOT) it counts the batch's `count`
   * events as unsaved, says so once, and resolves; any other failure rejects.
   */
  save(next: SpoolCursor, count: number): Promise<void>
  /** Delivered events the saved cursor does not know of, and since when; undefined while it is saved. */
  unsaved(): { events: number; since: number } | undefined
  /** Forgets what went unsaved (a reset wrote the cursor). */
  forget(): void
}

/** Creates the saver of one spool's cursor; see the file comment. */
export function createCursorSaver({ fs, path, now, log }: CursorSaverOptions): CursorSaver {
  // Delivered batches whose cursor could not be written (a full disk) since the last one saved,
  // the events in them, and since when (shown by `cursorUnsaved`: before, only the log said it).
  let unsaved = 0
  let unsavedEvents = 0
  let unsavedSince = 0
  return {
    async save(next, count) {
      try {
        await writeFileAtomic(fs, path, JSON.stringify(next))
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
    },
    unsaved: () => (unsaved > 0 ? { events: unsavedEvents, since: unsavedSince } : undefined),
    forget: () => void (unsaved = unsavedEvents = 0),
  }
}
