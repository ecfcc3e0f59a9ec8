// The bounded writer behind holdfast-server's log, on fake streams and fake timers.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogWriter, type LogStream } from '../../packages/server/src/logWriter'

afterEach(() => void vi.useRealTimers())

/** A stream whose reader takes nothing until `take()`. */
function stalledStream() {
  const written: string[] = []
  let waiting = 0
  const stream: LogStream & { written: string[]; take(): void } = {
    written,
    get writableLength() {
      return waiting
    },
    write(chunk: string) {
      written.push(chunk)
      waiting += chunk.length
      return waiting < 16 * 1024
    },
    take: () => void (waiting = 0),
  }
  return stream
}

describe('log writer', () => {
  it('drops lines past the bound, counts them, and says so once both streams have drained', async () => {
    vi.useFakeTimers()
    const out = stalledStream()
    const err = stalledStream()
    const writer = createLogWriter({ streams: { out, err }, maxQueuedBytes: 1000 })
    out.write('a few bytes\n') // stdout holds a little, never over its bound: no 'drain' to wait for
    for (let i = 0; i < 100; i++) writer.write('err', `[holdfast-server] line ${i} ${'x'.repeat(80)}`)
    expect(writer.dropped()).toBeGreaterThan(80)
    const written = err.written.length
    err.take()
    await vi.advanceTimersByTimeAsync(1000)
    expect(err.written.length).toBe(written) // stdout still holds its bytes
    out.take()
    await vi.advanceTimersByTimeAsync(1000)
    expect(err.written.at(-1)).toBe(`[holdfast-server] ${writer.dropped()} log line(s) dropped: the reader of stdout/stderr was not keeping up\n`)
  })
  it('flush() before an exit says the lines dropped once the reader has caught up, before it resolves', async () => {
    vi.useFakeTimers()
    const out = stalledStream()
    const err = stalledStream()
    const writer = createLogWriter({ streams: { out, err }, maxQueuedBytes: 1000 })
    for (let i = 0; i < 100; i++) writer.write('err', `[holdfast-server] line ${i} ${'x'.repeat(80)}`)
    expect(writer.dropped()).toBeGreaterThan(80)
    // The exit's flush: the reader takes what waits 40 ms in, well within the flush's bound.
    let flushed = false
    const flushing = writer.flush(2000).then(() => (flushed = true))
    await vi.advanceTimersByTimeAsync(40)
    err.take()
    while (!flushed) await vi.advanceTimersByTimeAsync(10)
    await flushing
    // What the process writes last before process.exit: the count is among it, not lost with the exit.
    expect(err.written.at(-1)).toBe(`[holdfast-server] ${writer.dropped()} log line(s) dropped: the reader of stdout/stderr was not keeping up\n`)
  })
})
