// A file system for the events tests that fails on cue, over the real one: the disk fills up in
// the middle of a line, fsync fails, a cut-back fails, fsync is slow. It also counts what the
// server asked of the disk, so tests can check "one write per batch" and "reads in chunks".
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { nodeFileSystem, type EventFileSystem, type ForwarderClock } from '@holdfast/server'

export interface FaultyFileSystem extends EventFileSystem {
  /** The next write puts `bytes` on disk, then fails with ENOSPC. */
  failNextWrite(bytes: number): void
  /** The next `count` fsyncs fail with EIO. */
  failSyncs(count: number): void
  /** The next `count` truncates fail with EIO. */
  failTruncates(count: number): void
  /** Every fsync waits this long (a slow disk). */
  syncDelayMs: number
  /** fsyncs wait until `release()`; `waiting()` resolves once one is held. */
  holdSyncs(): { waiting: Promise<void>; release(): void }
  /** Called before each read (its length and file) and awaited: a slow disk, or one read held. */
  beforeRead?: (length: number, path: string) => void | Promise<void>
  writes: number[]
  reads: number[]
  syncs: number
}

export function faultyFileSystem(base: EventFileSystem = nodeFileSystem): FaultyFileSystem {
  let partialWrite: number | undefined
  let syncFailures = 0
  let truncateFailures = 0
  let hold: { gate: Promise<void>; reached: () => void } | undefined
  const error = (code: string) => Object.assign(new Error(`${code}: injected`), { code })
  const fs: FaultyFileSystem = {
    ...base,
    writes: [],
    reads: [],
    syncs: 0,
    syncDelayMs: 0,
    failNextWrite: (bytes) => void (partialWrite = bytes),
    failSyncs: (count) => void (syncFailures = count),
    failTruncates: (count) => void (truncateFailures = count),
    holdSyncs() {
      let release!: () => void
      let reached!: () => void
      const waiting = new Promise<void>((resolve) => (reached = resolve))
      const gate = new Promise<void>((resolve) => (release = resolve))
      hold = { gate, reached }
      return {
        waiting,
        release() {
          hold = undefined
          release()
        },
      }
    },
    async open(path, mode) {
      const file = await base.open(path, mode)
      return {
        ...file,
        async write(buffer, offset, length) {
          fs.writes.push(length)
          if (partialWrite !== undefined) {
            const bytes = Math.min(partialWrite, length)
            partialWrite = undefined
            if (bytes > 0) await file.write(buffer, offset, bytes)
            throw error('ENOSPC')
          }
          return file.write(buffer, offset, length)
        },
        async read(buffer, offset, length, position) {
          fs.reads.push(length)
          await fs.beforeRead?.(length, path)
          return file.read(buffer, offset, length, position)
        },
        async datasync() {
          fs.syncs++
          if (hold) {
            hold.reached()
            await hold.gate
          }
          if (fs.syncDelayMs > 0) await new Promise((r) => setTimeout(r, fs.syncDelayMs))
          if (syncFailures > 0) {
            syncFailures--
            throw error('EIO')
          }
          return file.datasync()
        },
        async truncate(length) {
          if (truncateFailures > 0) {
            truncateFailures--
            throw error('EIO')
          }
          return file.truncate(length)
        },
      }
    },
  }
  return fs
}

/** A clock whose timers fire only when the test advances it (the events sink's and forwarder's clock). */
export function steppedClock(start = Date.parse('2026-12-01T10:00:00Z')) {
  let now = start
  let timers: Array<{ at: number; ms: number; fn: () => void; id: number }> = []
  let next = 0
  const clock: ForwarderClock & { advance(ms: number): void; pending(): Array<{ ms: number }>; time(): number } = {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++next
      timers.push({ at: now + ms, ms, fn, id })
      return id
    },
    clearTimeout(handle) {
      timers = timers.filter((t) => t.id !== handle)
    },
    advance(ms) {
      now += ms
      const due = timers.filter((t) => t.at <= now)
      timers = timers.filter((t) => t.at > now)
      for (const t of due) t.fn()
    },
    pending: () => timers.map((t) => ({ ms: t.ms })),
    time: () => now,
  }
  return clock
}

/**
 * An upstream events sink on 127.0.0.1: `status` gets each request's body and its number (from 1)
 * and says what to answer (a 2xx goes out with `{}` as JSON, anything else empty). `closers` gets
 * its close. `requests()` counts what came.
 */
export async function startEventsSink(
  status: (body: string, n: number) => number | Promise<number>,
  closers: Array<() => void>,
): Promise<{ url: string; requests: () => number }> {
  let n = 0
  const sink = createServer((req, res) => {
    // Counted as it comes, before its body is in.
    const k = ++n
    let body = ''
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      void Promise.resolve(status(body, k)).then((code) =>
        code >= 200 && code < 300 ? res.writeHead(code, { 'Content-Type': 'application/json' }).end('{}') : res.writeHead(code).end(),
      )
    })
  })
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
  closers.push(() => sink.close())
  return { url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e`, requests: () => n }
}
