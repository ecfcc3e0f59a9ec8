// What the relay says it dropped must add up the same everywhere: `dropped` in its forwarding
// stats (status `events.forwarding.dropped`) and `holdfast_events_forwarded_total{outcome="dropped"}`
// on /metrics, whose help names unreadable spool lines among the drops. Before, an unreadable line
// was counted in the stats but never in the metric: an alert on the metric saw nothing dropped.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodeFileSystem, type EventFileSystem } from '@holdfast/server'
import { post, startServer, tempDir, waitFor } from './helpers'

const line = (id: string) => JSON.stringify({ at: 1_700_000_000_000, event: { id, type: 'custom', name: 'n', time: 1 } }) + '\n'
const dropped = async (url: string) => Number(/holdfast_events_forwarded_total\{outcome="dropped"\} (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0)

describe('forwarding counts', { timeout: 30_000 }, () => {
  it.each([
    ['among events', [line('c1'), 'not an event\n', line('c2')]],
    ['alone in a batch', ['not an event\n']],
  ])('an unreadable spool line %s is counted as dropped in the stats and in the metric alike', async (_how, lines) => {
    const sink = await startServer({ eventsFile: join(await tempDir(), 'sink.jsonl') })
    const spool = join(await tempDir(), 'spool')
    await mkdir(spool, { recursive: true })
    await writeFile(join(spool, 'seg-0000000000000001.jsonl'), lines.join(''))
    const relay = await startServer({ eventsUpstream: `${sink.url}/holdfast/v1/events`, eventsSpoolDir: spool })
    const events = lines.length - 1
    await waitFor(() => relay.eventsForwarding!().delivered === events && relay.eventsForwarding!().dropped === 1, 10_000)
    expect(relay.eventsForwarding!()).toMatchObject({ delivered: events, dropped: 1 })
    expect(await dropped(relay.url)).toBe(1)
  })
})

describe('a spool the forwarder cannot read', { timeout: 30_000 }, () => {
  it('EIO reading a segment: the forwarding status says failing and why, not "ok" with nothing draining', async () => {
    const sink = await startServer({ eventsFile: join(await tempDir(), 'sink.jsonl') })
    let broken = false
    const fs: EventFileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        if (broken && mode === 'r' && path.includes('seg-')) throw Object.assign(new Error(`EIO: i/o error, open '${path}'`), { code: 'EIO' })
        return nodeFileSystem.open(path, mode, permissions)
      },
    }
    const relay = await startServer({
      eventsUpstream: `${sink.url}/holdfast/v1/events`,
      eventsSpoolDir: join(await tempDir(), 'spool'),
      eventsFileSystem: fs,
      eventsForwarding: { backoffBaseMs: 50, backoffMaxMs: 100 },
    })
    broken = true
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'r1', type: 'custom', name: 'n', time: 1 }] })).status).toBe(202)
    await waitFor(() => relay.eventsForwarding!().lastError !== undefined, 5_000)
    expect(relay.eventsForwarding!()).toMatchObject({ state: 'failing', pending: 1, lastError: { message: expect.stringMatching(/spool.*EIO/) } })
    broken = false
    await waitFor(() => relay.eventsForwarding!().pending === 0, 5_000)
    expect(relay.eventsForwarding!()).toMatchObject({ state: 'ok', delivered: 1 })
  })
})
