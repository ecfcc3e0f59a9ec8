// A spool on a full disk with only its active segment left: delivering from it frees nothing (that
// segment goes only once it rotates, and nothing can be appended to rotate it), so every delivered
// batch's cursor write fails and the cursor saved on disk lags further behind: a crash now sends
// all of it again. Before, only one log line said so: the status and metrics looked healthy
// (`state: ok`, `pending: 0`) while a restart would have re-sent everything delivered since.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodeFileSystem, type EventFileSystem } from '@holdfast/server'
import { post, startServer, tempDir, waitFor } from './helpers'

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])

describe('a spool whose cursor cannot be saved (a full disk)', { timeout: 30_000 }, () => {
  it('says in the status and metrics how many delivered events a crash would send again, and since when; saved again, it says nothing', async () => {
    const sinkFile = join(await tempDir(), 'sink.jsonl')
    const sink = await startServer({ eventsFile: sinkFile })
    let full = false
    // Appends went in before the disk filled; from then on the cursor's temporary file cannot be written.
    const fs: EventFileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const file = await nodeFileSystem.open(path, mode, permissions)
        return { ...file, write: (b, o, l) => (full && path.endsWith('cursor.json.tmp') ? Promise.reject(Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' })) : file.write(b, o, l)) }
      },
    }
    const relay = await startServer({ eventsUpstream: `${sink.url}/holdfast/v1/events`, eventsSpoolDir: join(await tempDir(), 'spool'), eventsFileSystem: fs })
    const ev = (n: number) => ({ id: `unsaved-${process.pid}-${n}`, type: 'custom', name: 'n', time: 1 })
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [ev(1), ev(2)] })).status).toBe(202)
    await waitFor(() => relay.eventsForwarding!().delivered === 2, 10_000)
    full = true
    const before = Date.now()
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [ev(3), ev(4), ev(5)] })).status).toBe(202)
    await waitFor(() => relay.eventsForwarding!().delivered === 5, 10_000)
    const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { events: { forwarding: { pending: number; cursorUnsaved?: { events: number; since: number } } } }
    expect(status.events.forwarding.pending).toBe(0)
    expect(status.events.forwarding.cursorUnsaved).toEqual({ events: 3, since: expect.any(Number) })
    expect(status.events.forwarding.cursorUnsaved!.since).toBeGreaterThanOrEqual(before - 1000)
    expect(metric(await (await fetch(`${relay.url}/metrics`)).text(), 'holdfast_events_spool_cursor_unsaved_events')).toBe(3)
    // Room again: the next delivered batch saves the cursor.
    full = false
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [ev(6)] })).status).toBe(202)
    await waitFor(() => relay.eventsForwarding!().delivered === 6, 10_000)
    expect(relay.eventsForwarding!().cursorUnsaved).toBeUndefined()
    expect(metric(await (await fetch(`${relay.url}/metrics`)).text(), 'holdfast_events_spool_cursor_unsaved_events')).toBe(0)
    await relay.close()
    await sink.close()
  })
})
