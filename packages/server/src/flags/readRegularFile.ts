// Every file the server reads flags from (--flags, --snapshot, `snapshot --flags`) is named by an
// operator and may be anything at that path: a FIFO, /dev/zero, a directory. A FIFO blocks an
// ordinary open until a writer comes, which may be never, and holds one of libuv's four file
// system threads while it waits; /dev/zero never ends. Opened non-blocking and checked first,
// such a path is refused at once with a message instead of hanging the start-up or a reload.
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

/**
 * Reads `path` as UTF-8 text when it is a regular file (a symlink to one is fine). Rejects with
 * the OS error (its `code`, e.g. `ENOENT`, `EISDIR`) or, for a FIFO, socket or device, with an
 * `Error` whose message says so, without blocking on it.
 */
export async function readRegularFile(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new Error(`not a regular file: ${info.isDirectory() ? 'a directory' : info.isFIFO() ? 'a FIFO' : info.isSocket() ? 'a socket' : 'a device'}`)
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}
