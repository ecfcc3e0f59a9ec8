// A crash-safe append-only file: the discipline shared by the events file and the relay's spool.
//
// - One write per group: a batch's lines go down in a single write() (Node's appendFile splits
//   anything over 512 KiB into several, and a kill between them leaves a torn line mid-file).
// - Group commit: batches that arrive while a write+fsync is under way are written together by
//   the next one and share its fsync, so fsync-before-202 costs one fsync per group, not per batch.
// - A failed write or fsync is cut back (ftruncate to the last good size) before the batch is
//   refused, so the next batch never glues onto half a line. If the cut fails too, every append
//   is refused until a later cut succeeds.
// - On open, a last line without its newline is a write that a crash interrupted. It was never
//   acknowledged (acknowledgement waits for fsync), so it is cut off, unless it is a whole record
//   that only lacks the newline (then the newline is added).
// - With `followPath`, a file moved, deleted or emptied from outside (logrotate, an operator's `mv`
//   or `rm`) is noticed before the next group: the path is opened again (created if missing), so
//   accepted events never go on into an inode nobody reads (a deleted one is gone at exit).
import { dirname } from 'node:path'
import type { ServerLogger } from '../logger'
import { nodeFileSystem, type EventFile, type EventFileSystem } from './fileSystem'

/** Largest group written at once: batches are at most 1 MiB, so this is several batches. */
const MAX_GROUP_BYTES = 8 * 1024 * 1024

/** Options of {@link createAppendLog}. */
export interface AppendLogOptions {
  /** The file appended to (created, with its directory, on open). Required. */
  path: string
  /** Default {@link nodeFileSystem}. */
  fs?: EventFileSystem
  /**
   * Size cap: before a write that would take the file past it, `rotate` is called with the file
   * closed and returns the path to continue in. Default: no cap. A file may pass the cap by one
   * group when a single group is bigger than the cap.
   */
  maxBytes?: number
  /**
   * Moves the full file aside and returns the path of the next one (`size`: the bytes of it that
   * were written and fsynced). Required with `maxBytes`.
   */
  rotate?: (full: string, size: number) => Promise<string>
  /** Whether an unterminated last line found on open is a whole record. Default: never. */
  isRecord?: (line: Buffer) => boolean
  /**
   * Before each group, check that the path still names the open file, and open it again when it
   * was moved or deleted (logrotate `create`, `mv`, `rm`); when it was cut short (logrotate
   * `copytruncate`), go on from its new size. Costs one stat per group. Default false (the spool,
   * whose segments nothing else touches and whose cursor holds offsets into them).
   *
   * `'rotate'`: the same check, but a file moved, deleted, replaced or cut short is left behind
   * and the log goes on in the next file (`rotate`): the spool's cursor holds offsets into the old
   * file, so opening a new file under the same name would put new lines where the cursor thinks
   * it has already read.
   */
  followPath?: boolean | 'rotate'
  /** Told when `followPath` found the path changed and the log moved on (the spool recounts). */
  onMovedOn?: () => void
  /** Called after each fsync with its duration (seconds) and the bytes it made durable. */
  onSync?: (seconds: number, bytes: number) => void
  /** The clock (epoch ms) of {@link AppendLog.busy}. Default `Date.now`. */
  now?: () => number
  log: ServerLogger
}

/** An append-only file with group commit; see {@link createAppendLog}. */
export interface AppendLog {
  /** Creates or repairs the file. Must resolve before `append`. */
  open(): Promise<void>
  /** Appends `data` (whole lines) in one write and resolves once it is fsynced; rejects (with the file cut back) when it could not be. */
  append(data: Buffer): Promise<void>
  /** Runs `task` between groups, with no write in flight (rotation, reset). */
  exclusive<T>(task: () => Promise<T>): Promise<T>
  /**
   * Checks now (call inside `exclusive`) what `followPath` checks before each group; resolves true
   * when the path no longer named the open file and the log moved on (reopened or rotated).
   */
  follow(): Promise<boolean>
  /** Cuts the current file to zero bytes (inside `exclusive`). */
  truncateAll(): Promise<void>
  /** The path being appended to now. */
  path(): string
  /** Bytes in the current file. */
  size(): number
  /**
   * The write or task in flight: since when (epoch ms) and on which path; undefined when idle. A
   * write on a mount that died never returns nor fails: this is how a caller tells it apart.
   */
  busy(): { since: number; path: string } | undefined
  /** Waits for queued writes, then closes the file. */
  close(): Promise<void>
}

type Item =
  | { kind: 'append'; data: Buffer; resolve: () => void; reject: (error: Error) => void }
  | { kind: 'task'; run: () => Promise<unknown>; resolve: (value: any) => void; reject: (error: Error) => void }

/** Creates an {@link AppendLog}. */
export function createAppendLog(options: AppendLogOptions): AppendLog {
  const fs = options.fs ?? nodeFileSystem
  const { log } = options
  let current = options.path
  let file: EventFile | undefined
  let size = 0
  // Which file `file` is (dev, ino), for `followPath`.
  let identity: string | undefined
  // True when a failed write could not be cut back: the end of the file may hold half a line.
  let dirty = false
  const queue: Item[] = []
  let running = false
  const now = options.now ?? Date.now
  // When the item in flight (a group or a task) began; undefined when idle.
  let busySince: number | undefined

  async function openCurrent(): Promise<void> {
    await fs.mkdirp(dirname(current))
    const existed = (await fs.stat(current)) !== undefined
    await repairTail(fs, current, options.isRecord ?? (() => false), log)
    file = await fs.open(current, 'a')
    const opened = await fs.stat(current)
    size = opened?.size ?? 0
    identity = idOf(opened)
    if (!existed) await fs.syncDir(dirname(current))
  }

  const held = (): EventFile => {
    if (!file) throw new Error('the append log is not open')
    return file
  }

  async function writeGroup(data: Buffer): Promise<void> {
    // A rotation or reopen whose open failed (EMFILE, ENOSPC, EACCES) left no file: that batch got
    // its 500, and this one opens it again, so the sink recovers with the disk, not at a restart.
    if (!file) await openCurrent()
    else if (options.followPath) await follow()
    if (dirty) {
      await held().truncate(size)
      dirty = false
    }
    if (options.maxBytes !== undefined && options.rotate && size > 0 && size + data.length > options.maxBytes) {
      await rotate()
    }
    const out = held()
    try {
      // One write() for the whole group; a regular file only writes short when the disk is full
      // or a signal lands, and then the rest follows at once (or the group fails and is cut back).
      let written = 0
      while (written < data.length) {
        const n = await out.write(data, written, data.length - written)
        if (n <= 0) throw new Error('write made no progress')
        written += n
      }
      const started = performance.now()
      await out.datasync()
      options.onSync?.((performance.now() - started) / 1000, data.length)
      size += data.length
    } catch (error) {
      try {
        await out.truncate(size)
      } catch (cutError) {
        dirty = true
        log.error(`${current}: could not cut back a failed write (${(cutError as Error).message}); appends refused until it can`)
      }
      throw error
    }
  }

  // Timeline this guards against: logrotate renames events.jsonl to events.jsonl.1 (or an operator
  // deletes it); the server kept appending through its open descriptor, so every later 202'd event
  // went into events.jsonl.1, or into a deleted inode that vanished at the next restart.
  async function follow(): Promise<boolean> {
    if (!file) return false
    const now = await fs.stat(current)
    const same = now !== undefined && (identity === undefined || idOf(now) === undefined || idOf(now) === identity)
    const rotating = options.followPath === 'rotate' && options.rotate !== undefined
    if (same && now.size >= size) return false
    if (same && !rotating) {
      // copytruncate emptied it under us: a cut-back to the old size would pad it with NUL bytes.
      log.warn(`${current}: cut to ${now.size} byte(s) from outside (logrotate copytruncate?); appending from there`)
      size = now.size
      return false
    }
    const what = !now ? 'moved or removed' : same ? `cut to ${now.size} byte(s)` : 'replaced'
    const old = file
    file = undefined
    if (dirty) await old?.truncate(size).catch(() => undefined)
    dirty = false
    await old?.close().catch(() => undefined)
    if (rotating) {
      log.error(`${current}: ${what} from outside; going on in the next file`)
      await rotate()
    } else {
      log.warn(`${current}: ${what} from outside (logrotate?); reopening it for the next events`)
      await openCurrent()
    }
    options.onMovedOn?.()
    return true
  }

  async function rotate(): Promise<void> {
    await file?.close()
    file = undefined
    // Nothing of the next file is durable until it is open; readers go by size().
    const written = size
    size = 0
    current = await options.rotate!(current, written)
    await openCurrent()
  }

  async function pump(): Promise<void> {
    if (running) return
    running = true
    try {
      while (queue.length > 0) {
        const head = queue[0]
        busySince = now()
        if (head.kind === 'task') {
          queue.shift()
          try {
            head.resolve(await head.run())
          } catch (error) {
            head.reject(error as Error)
          }
          continue
        }
        const group: Array<Extract<Item, { kind: 'append' }>> = []
        let bytes = 0
        while (queue.length > 0 && queue[0].kind === 'append' && (group.length === 0 || bytes + (queue[0] as { data: Buffer }).data.length <= MAX_GROUP_BYTES)) {
          const item = queue.shift() as Extract<Item, { kind: 'append' }>
          group.push(item)
          bytes += item.data.length
        }
        try {
          await writeGroup(group.length === 1 ? group[0].data : Buffer.concat(group.map((item) => item.data), bytes))
          for (const item of group) item.resolve()
        } catch (error) {
          for (const item of group) item.reject(error as Error)
        }
      }
    } finally {
      running = false
      busySince = undefined
    }
  }

  const exclusive = <T>(run: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ kind: 'task', run, resolve, reject })
      void pump()
    })

  return {
    open: () => openCurrent(),
    append: (data) =>
      new Promise<void>((resolve, reject) => {
        queue.push({ kind: 'append', data, resolve, reject })
        void pump()
      }),
    exclusive,
    follow,
    async truncateAll() {
      if (!file) return
      await file.truncate(0)
      await file.datasync()
      size = 0
      dirty = false
    },
    path: () => current,
    size: () => size,
    // The path now, not when the item began: a follow or a rotation may have moved on to a new file.
    busy: () => (busySince === undefined ? undefined : { since: busySince, path: current }),
    close: () =>
      exclusive(async () => {
        // A failed write that could not be cut back then: one more try, so a batch answered 500
        // does not stay in the file.
        if (dirty && file) {
          try {
            await file.truncate(size)
            await file.datasync()
            dirty = false
          } catch (error) {
            log.error(`${current}: could not cut back a failed write on close (${(error as Error).message}); the next start cuts a torn tail`)
          }
        }
        await file?.close()
        file = undefined
      }),
  }
}

function idOf(stat: { ino?: number; dev?: number } | undefined): string | undefined {
  return stat?.ino === undefined ? undefined : `${stat.dev ?? ''}:${stat.ino}`
}

/** Cuts an interrupted last line off `path` (or terminates it when it is a whole record). */
async function repairTail(fs: EventFileSystem, path: string, isRecord: (line: Buffer) => boolean, log: ServerLogger): Promise<void> {
  const stat = await fs.stat(path)
  if (!stat || stat.size === 0) return
  const reader = await fs.open(path, 'r')
  let keep = 0
  let tail: Buffer | undefined
  try {
    // Walk back to the last newline, a chunk at a time.
    const chunk = Buffer.allocUnsafe(64 * 1024)
    let end = stat.size
    const last = Buffer.alloc(1)
    await reader.read(last, 0, 1, stat.size - 1)
    if (last[0] === 0x0a) return
    for (;;) {
      const start = Math.max(0, end - chunk.length)
      const read = await reader.read(chunk, 0, end - start, start)
      const newline = chunk.subarray(0, read).lastIndexOf(0x0a)
      if (newline !== -1) {
        keep = start + newline + 1
        break
      }
      if (start === 0) break
      end = start
    }
    const tailBytes = stat.size - keep
    if (tailBytes <= 4 * 1024 * 1024) {
      tail = Buffer.allocUnsafe(tailBytes)
      await reader.read(tail, 0, tailBytes, keep)
    }
  } finally {
    await reader.close()
  }
  const file = await fs.open(path, 'a')
  try {
    if (tail && isRecord(tail)) {
      await file.write(Buffer.from('\n'), 0, 1)
      log.warn(`${path}: the last record had no newline; added one`)
    } else {
      await file.truncate(keep)
      log.warn(`${path}: cut ${stat.size - keep} byte(s) of an interrupted write (never acknowledged) off the end`)
    }
    await file.datasync()
  } finally {
    await file.close()
  }
}
