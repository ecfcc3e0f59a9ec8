// The forwarder's backoff after a spool error that cleared. Spool errors (EIO reading it) and
// upstream failures shared one count, reset only by a 2xx: after a minute of disk trouble the count
// stood at the cap, so once the disk was back, the first upstream blip (one 503) made delivery wait
// 30–60 s instead of the first backoff step: a long wait for nothing, with the spool growing.
import { join } from 'node:path'
import { nodeFileSystem, type EventFileSystem } from '@holdfast/server'
import { afterEach, describe, expect, it } from 'vitest'
import { faultyFileSystem, startEventsSink, steppedClock } from './events-faults'
import { post, startServer, tempDir, waitFor } from './helpers'

const closers: Array<() => void> = []
// Recognisable: the waits read below are the forwarder's pauses, never a request's timeout (the
// default 10 s was once read as a backoff step while a request was still out on a loaded machine).
const REQUEST_TIMEOUT = 987_654
/** The forwarder's pause (any timer but a request's timeout), if one is set. */
const pause = (clock: ReturnType<typeof steppedClock>) => clock.pending().find((t) => t.ms !== REQUEST_TIMEOUT)
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

describe('forwarding after the spool answers again', { timeout: 30_000 }, () => {
  it("an upstream failure then backs off from the first step, not from the spool's count of failures", async () => {
    const sink = await startEventsSink((_, n) => (n === 1 ? 503 : 202), closers)
    const fs = faultyFileSystem()
    const clock = steppedClock()
    const relay = await startServer({
      eventsUpstream: sink.url,
      eventsSpoolDir: join(await tempDir(), 'spool'),
      eventsFileSystem: fs,
      eventsForwarding: { clock, timeoutMs: REQUEST_TIMEOUT, random: () => 0.5 },
    })
    let failedReads = 0
    fs.beforeRead = () => {
      failedReads++
      throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
    }
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'x', type: 'custom', name: 'n', time: 1 }] })).status).toBe(202)
    // Eight spool errors in a row, each followed by its backoff.
    for (let n = 1; n <= 8; n++) {
      await waitFor(() => failedReads >= n && pause(clock) !== undefined, 10_000, 5)
      clock.advance(pause(clock)!.ms)
    }
    await waitFor(() => pause(clock) !== undefined, 10_000, 5)
    // The disk is back; the upstream answers 503 once.
    fs.beforeRead = undefined
    clock.advance(pause(clock)!.ms)
    await waitFor(() => relay.eventsForwarding!().retries === 1 && pause(clock) !== undefined, 10_000, 5)
    expect(pause(clock)!.ms).toBeLessThanOrEqual(1000)
    clock.advance(1000)
    await waitFor(() => relay.eventsForwarding!().delivered === 1, 10_000, 5)
    await relay.close()
  })

  it('a cursor write that fails after each 2xx still backs off (the batch is not sent again every second)', async () => {
    // Answered 100 ms late, as on a loaded machine: the request is counted, its timeout still set.
    const sink = await startEventsSink(() => new Promise((resolve) => setTimeout(() => resolve(202), 100)), closers)
    // The cursor's temporary file cannot be written (EIO: not a full disk, which moves on).
    const fs: EventFileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const file = await nodeFileSystem.open(path, mode, permissions)
        return { ...file, write: (b, o, l) => (path.endsWith('cursor.json.tmp') ? Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' })) : file.write(b, o, l)) }
      },
    }
    const clock = steppedClock()
    const relay = await startServer({
      eventsUpstream: sink.url,
      eventsSpoolDir: join(await tempDir(), 'spool'),
      eventsFileSystem: fs,
      eventsForwarding: { clock, timeoutMs: REQUEST_TIMEOUT, random: () => 0.5 },
    })
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'y', type: 'custom', name: 'n', time: 1 }] })).status).toBe(202)
    const waits: number[] = []
    for (let n = 1; n <= 5; n++) {
      await waitFor(() => sink.requests() >= n && pause(clock) !== undefined, 10_000, 5)
      waits.push(pause(clock)!.ms)
      clock.advance(pause(clock)!.ms)
    }
    expect(waits).toEqual([750, 1500, 3000, 6000, 12000])
    await relay.close()
  })
})
