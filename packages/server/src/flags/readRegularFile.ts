// Every file the server reads flags from (--flags, --snapshot, `snapshot --flags`) is named by an
// operator and may be anything at that path: a FIFO, /dev/zero, a directory. A FIFO blocks an
// ordinary open until a writer comes, which may be never, and holds one of libuv's four file
// system threads while it waits; /dev/zero never ends. Opened non-blocking and checked first,
// such a path is refused at once with a message instead of hanging the start-up or a reload.
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

/**
 * Reads `path` as UTF-8 text when it is a regular file (a symlink to one is fine) of at most
 * `maxBytes` (default: no bound). Rejects with the OS error (its `code`, e.g. `ENOENT`, `EISDIR`)
 * or, for a FIFO, socket or device, or a file over the bound, with an `Error` whose message says
 * so, without blocking on it or reading it whole (the one over the bound has `tooLarge: true`).
 */
export async function readRegularFile(path: string, maxBytes = Infinity): Promise<string> {
  return (await readRegularFileAndTime(path, maxBytes)).text
}

/**
 * {@link readRegularFile}, with the modification time of the very file read (its open handle's,
 * not the path's: a file replaced or removed after the read cannot lend another its time).
 */
export async function readRegularFileAndTime(path: string, maxBytes = Infinity): Promise<{ text: string; mtimeMs: number }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new Error(`not a regular file: ${info.isDirectory() ? 'a directory' : info.isFIFO() ? 'a FIFO' : info.isSocket() ? 'a socket' : 'a device'}`)
    const tooLarge = (bytes: number) => Object.assign(new Error(`larger than ${maxBytes / 1_048_576} MiB: ${bytes} bytes`), { tooLarge: true })
    if (info.size > maxBytes) throw tooLarge(info.size)
    const bytes = await handle.readFile()
    // It may have grown since the stat.
    if (bytes.length > maxBytes) throw tooLarge(bytes.length)
    return { text: bytes.toString('utf8'), mtimeMs: info.mtimeMs }
  } finally {
    await handle.close()
  }
}

/**
 * The first `bytes` bytes of `path` as UTF-8 text (fewer when the file is shorter), when it is a
 * regular file; rejects as {@link readRegularFile} does for anything else, without blocking on it.
 */
export async function readRegularFileHead(path: string, bytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new Error('not a regular file')
    const buffer = Buffer.alloc(Math.min(bytes, info.size))
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
    return buffer.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
}
