// Reads a file line by line in bounded memory: one chunk and the line being read, never the file.
// `events replay-dead-letters` reads a dead-letter file of any size this way (before, it read the
// file as one string, split it and parsed every line before sending any: 1.2 GB of memory for a
// 214 MB file, and a file past V8's longest string could not be read at all).
import { open } from 'node:fs/promises'

/** One line of a file: its byte range (`end` excludes the newline) and its text, absent when the line is longer than the bound. */
export interface FileLine {
  start: number
  end: number
  text?: string
}

/**
 * The lines of `path`, in order, as {@link FileLine}s: a last line without a newline (torn by a
 * crash mid-append) is one too. A line longer than `maxLineBytes` (a run of stray bytes, a sparse
 * file's zeros) is not held: it comes with its range only, however long it is.
 */
export async function* readLines(path: string, maxLineBytes: number, chunkBytes = 1 << 20): AsyncGenerator<FileLine> {
  const handle = await open(path, 'r')
  try {
    const chunk = Buffer.alloc(chunkBytes)
    let position = 0
    let start = 0
    let parts: Buffer[] = []
    let held = 0
    let tooLong = false
    const take = (bytes: Buffer) => {
      if (tooLong) return
      if (held + bytes.length > maxLineBytes) {
        tooLong = true
        parts = []
        held = 0
        return
      }
      // Copied: the chunk is read into again.
      parts.push(Buffer.from(bytes))
      held += bytes.length
    }
    const line = (end: number): FileLine => {
      const found: FileLine = tooLong ? { start, end } : { start, end, text: Buffer.concat(parts, held).toString('utf8') }
      parts = []
      held = 0
      tooLong = false
      return found
    }
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunkBytes, position)
      if (bytesRead === 0) break
      const read = chunk.subarray(0, bytesRead)
      let from = 0
      for (let newline = read.indexOf(0x0a, from); newline !== -1; newline = read.indexOf(0x0a, from)) {
        take(read.subarray(from, newline))
        yield line(position + newline)
        start = position + newline + 1
        from = newline + 1
      }
      take(read.subarray(from))
      position += bytesRead
    }
    if (position > start) yield line(position)
  } finally {
    await handle.close()
  }
}
