// Reads a JSON Lines file from its end backwards, a chunk at a time, so the start-up scan of a
// multi-gigabyte events file costs one chunk of memory (plus the longest line) instead of the
// whole file as one string (a 512 MiB file cannot even be a string in V8).
import type { EventFileSystem } from './fileSystem'

/** Default read size of {@link readLinesBackward}: 64 KiB. */
export const TAIL_CHUNK_BYTES = 64 * 1024

/** Lines longer than this (default 4 MiB, four times the request cap) are skipped, not buffered. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024

/**
 * Yields the non-empty lines of `path` newest first, each as the bytes between two newlines; a
 * line longer than `maxLineBytes` yields `undefined` (the caller counts it as unreadable). Memory
 * stays at one chunk plus one line. Reads only the first `end` bytes when given (default: all).
 */
export async function* readLinesBackward(
  fs: EventFileSystem,
  path: string,
  options: { end?: number; chunkBytes?: number; maxLineBytes?: number } = {},
): AsyncGenerator<Buffer | undefined> {
  const chunkBytes = options.chunkBytes ?? TAIL_CHUNK_BYTES
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES
  const size = options.end ?? (await fs.stat(path))?.size ?? 0
  if (size === 0) return
  const file = await fs.open(path, 'r')
  try {
    let position = size
    // Pieces of the line being assembled, in file order; it grows at the front as we go back.
    let carry: Buffer[] = []
    let carryBytes = 0
    let oversized = false
    const finish = function* (head: Buffer) {
      if (oversized) yield undefined
      else if (head.length + carryBytes > 0) yield carry.length === 0 ? head : Buffer.concat([head, ...carry])
      carry = []
      carryBytes = 0
      oversized = false
    }
    while (position > 0) {
      const length = Math.min(chunkBytes, position)
      position -= length
      const chunk = Buffer.allocUnsafe(length)
      let filled = 0
      while (filled < length) {
        const read = await file.read(chunk, filled, length - filled, position + filled)
        if (read === 0) throw new Error(`${path} shrank while it was being read`)
        filled += read
      }
      let lineEnd = length
      for (let newline = chunk.lastIndexOf(0x0a, lineEnd - 1); newline !== -1; newline = lineEnd > 0 ? chunk.lastIndexOf(0x0a, lineEnd - 1) : -1) {
        yield* finish(chunk.subarray(newline + 1, lineEnd))
        lineEnd = newline
      }
      if (lineEnd > 0) {
        if (oversized || carryBytes + lineEnd > maxLineBytes) {
          oversized = true
          carry = []
          carryBytes = 0
        } else {
          // Copy: the chunk buffer is not reused, but a subarray would keep the whole chunk alive.
          carry.unshift(Buffer.from(chunk.subarray(0, lineEnd)))
          carryBytes += lineEnd
        }
      }
    }
    yield* finish(Buffer.alloc(0))
  } finally {
    await file.close()
  }
}
