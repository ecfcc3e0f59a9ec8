// The few file operations the events sink and the spool need, behind an interface so tests can
// inject a disk that fills up, a write that comes back short, or an fsync that fails.
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/** An open file, as the append log and the tail reader use it. */
export interface EventFile {
  /** Writes `length` bytes of `buffer` from `offset`; returns how many were written (a short write is possible). */
  write(buffer: Buffer, offset: number, length: number): Promise<number>
  /**
   * Writes `length` bytes of `buffer` from `offset` at file `position` (a short write is possible).
   * Optional: a writer that skips a range leaves a hole (see the replay's copy of a sparse line).
   */
  writeAt?(buffer: Buffer, offset: number, length: number, position: number): Promise<number>
  /** Reads up to `length` bytes at file `position` into `buffer` at `offset`; returns how many were read. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>
  /** Flushes written data to the device (fdatasync). */
  datasync(): Promise<void>
  /** Cuts the file to `length` bytes. */
  truncate(length: number): Promise<void>
  /** Closes the handle; the file is not used again after it. */
  close(): Promise<void>
}

/**
 * The file system of the events sink and spool. Default {@link nodeFileSystem}; tests pass one
 * that fails on cue (disk full, short writes, failing fsync).
 */
export interface EventFileSystem {
  /**
   * Opens `path`: `'a'` appends (created if missing), `'r'` reads, `'w'` creates or empties.
   * `permissions`: of a file it creates (default 0o666, less the umask).
   */
  open(path: string, mode: 'a' | 'r' | 'w', permissions?: number): Promise<EventFile>
  /**
   * Size and last modification of `path`, or undefined when it does not exist; `ino` (with `dev`)
   * names the file itself, so a path that now names another file (logrotate) can be told apart.
   * An implementation that cannot tell leaves them out.
   */
  stat(path: string): Promise<{ size: number; mtimeMs: number; ino?: number; dev?: number } | undefined>
  /** Renames `from` to `to`, replacing `to` if it exists (atomically, as POSIX `rename` does). */
  rename(from: string, to: string): Promise<void>
  /** Removes `path`; a missing file is not an error. */
  remove(path: string): Promise<void>
  /** Creates `dir` and its missing parents; an existing directory is not an error. */
  mkdirp(dir: string): Promise<void>
  /** Names in `dir`, or [] when it does not exist. */
  list(dir: string): Promise<string[]>
  /**
   * Makes a directory's entries (a new or renamed file) durable. Where the platform or the file
   * system refuses to fsync a directory (see {@link DIR_SYNC_REFUSED}) it resolves: the rename is
   * then as durable as it gets there. Any other failure (EIO) rejects.
   */
  syncDir(dir: string): Promise<void>
}

/** The real file system (node:fs/promises). */
export const nodeFileSystem: EventFileSystem = {
  async open(path, mode, permissions) {
    const handle = await open(path, mode, permissions)
    return {
      write: async (buffer, offset, length) => (await handle.write(buffer, offset, length)).bytesWritten,
      writeAt: async (buffer, offset, length, position) => (await handle.write(buffer, offset, length, position)).bytesWritten,
      read: async (buffer, offset, length, position) => (await handle.read(buffer, offset, length, position)).bytesRead,
      datasync: () => handle.datasync(),
      truncate: (length) => handle.truncate(length),
      close: () => handle.close(),
    }
  },
  async stat(path) {
    try {
      const s = await stat(path)
      return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, dev: s.dev }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  },
  rename: (from, to) => rename(from, to),
  async remove(path) {
    try {
      await unlink(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  },
  mkdirp: async (dir) => void (await mkdir(dir, { recursive: true })),
  async list(dir) {
    try {
      return await readdir(dir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
  },
  async syncDir(dir) {
    try {
      const handle = await open(dir, 'r')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    } catch (error) {
      if (!DIR_SYNC_REFUSED.has((error as NodeJS.ErrnoException).code ?? '')) throw error
    }
  },
}

/**
 * `fs` that calls `returned` each time one of its calls (or a call on a file it opened) settles:
 * how the bound of the events open tells a slow disk, whose calls keep returning, from a hung
 * mount, whose call does not.
 */
export function watchedFileSystem(fs: EventFileSystem, returned: () => void): EventFileSystem {
  const watch = <A extends unknown[], R>(call: (...args: A) => Promise<R>) => (...args: A): Promise<R> => call(...args).finally(returned)
  return {
    open: async (path, mode, permissions) => {
      const file = await watch(fs.open)(path, mode, permissions)
      return { write: watch(file.write), read: watch(file.read), datasync: watch(file.datasync), truncate: watch(file.truncate), close: watch(file.close) }
    },
    stat: watch(fs.stat),
    rename: watch(fs.rename),
    remove: watch(fs.remove),
    mkdirp: watch(fs.mkdirp),
    list: watch(fs.list),
    syncDir: watch(fs.syncDir),
  }
}

/**
 * Error codes with which a platform or file system refuses to open or fsync a directory (Windows:
 * EISDIR, EPERM; some FUSE and network file systems: EINVAL, ENOTSUP, ENOSYS; a directory without
 * read permission: EACCES). There the data itself was synced already and nothing more can be done;
 * any other error (EIO) means the rename may not survive a power cut, and is reported.
 */
export const DIR_SYNC_REFUSED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EBADF'])

/**
 * Writes all of `bytes` to `file`, short writes continued. A write that takes nothing would loop
 * for ever: the disk is as good as full, and it rejects as ENOSPC.
 */
export async function writeAll(file: EventFile, bytes: Buffer): Promise<void> {
  let written = 0
  while (written < bytes.length) {
    const wrote = await file.write(bytes, written, bytes.length - written)
    if (!(wrote > 0)) throw Object.assign(new Error(`wrote 0 of ${bytes.length - written} bytes`), { code: 'ENOSPC' })
    written += wrote
  }
}

/** {@link writeAll} at file `position`, with {@link EventFile.writeAt}. */
export async function writeAllAt(file: EventFile, bytes: Buffer, position: number): Promise<void> {
  let written = 0
  while (written < bytes.length) {
    const wrote = await file.writeAt!(bytes, written, bytes.length - written, position + written)
    if (!(wrote > 0)) throw Object.assign(new Error(`wrote 0 of ${bytes.length - written} bytes`), { code: 'ENOSPC' })
    written += wrote
  }
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content: a
 * temporary file (`temporary`, default `PATH.tmp`, in the same directory) is written and fsynced,
 * renamed over `path`, and the directory fsynced, so that after a power cut the rename is there
 * too. A failure before the rename (a full disk, a short write) removes the temporary file and
 * rejects; `path` is untouched. A failed directory fsync after it rejects with `renamed: true`.
 */
export async function writeFileAtomic(fs: EventFileSystem, path: string, data: string, options: { temporary?: string; permissions?: number } = {}): Promise<void> {
  await writeFileAtomicWith(fs, path, (file) => writeAll(file, Buffer.from(data, 'utf8')), options)
}

/**
 * {@link writeFileAtomic}, the content written by `write` into the temporary file (a piece at a
 * time, for content too large to hold as one string).
 */
export async function writeFileAtomicWith(fs: EventFileSystem, path: string, write: (file: EventFile) => Promise<void>, options: { temporary?: string; permissions?: number } = {}): Promise<void> {
  const temporary = options.temporary ?? `${path}.tmp`
  const file = await fs.open(temporary, 'w', options.permissions)
  try {
    await write(file)
    await file.datasync()
  } catch (error) {
    await file.close().catch(() => {})
    await fs.remove(temporary).catch(() => {})
    throw error
  }
  try {
    // NFS reports a failed write at close.
    await file.close()
  } catch (error) {
    await fs.remove(temporary).catch(() => {})
    throw error
  }
  await fs.rename(temporary, path)
  // `path` holds the new content from here: a failure says so (`renamed`), so no caller reports
  // the old file as untouched.
  await fs.syncDir(dirname(path)).catch((error: unknown) => {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { renamed: true })
  })
}

/** Reads a whole small file (a cursor, a marker) as UTF-8; undefined when it does not exist. */
export async function readSmallFile(fs: EventFileSystem, path: string): Promise<string | undefined> {
  const stat = await fs.stat(path)
  if (!stat) return undefined
  const file = await fs.open(path, 'r')
  try {
    const buffer = Buffer.alloc(Math.min(stat.size, 64 * 1024))
    let filled = 0
    while (filled < buffer.length) {
      const read = await file.read(buffer, filled, buffer.length - filled, filled)
      if (read === 0) break
      filled += read
    }
    return buffer.subarray(0, filled).toString('utf8')
  } finally {
    await file.close()
  }
}
