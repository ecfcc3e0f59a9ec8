// A relay's spool counted again while it runs (a segment deleted, moved or cut short from outside:
// what is left is recounted so `pending` stays true). After a long outage the spool is large and
// that count takes a while on a slow disk, one read after another, each of which returns. Before,
// the count ran under the append log's lock and was timed as one write: past the write bound the
// relay answered every events request 503 `STORE_STALLED` (events.stalled in the status), and said
// its forwarder was stalled on the spool, while nothing was hung. "Stalled" is a file-system call
// that does not return; a call that does not return is still shown as one.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { dataDirTiming } from '../../packages/server/src/flags/dataDirTiming'
import { faultyFileSystem, steppedClock } from './events-faults'
import { post, startServer, tempDir, waitFor } from './helpers'

const BOUND = 4000
const MiB = 1024 * 1024
const segmentName = (n: number) => `seg-${String(n).padStart(16, '0')}.jsonl`
const event = (id: string) => ({ id, type: 'custom', name: 'clicked', time: 1_700_000_000_000 })
type Forwarding = { pending: number; dropped: number; stalled?: { path: string; seconds: number } }
const status = async (url: string) => (await (await fetch(`${url}/holdfast/v1/status`)).json()) as { events: { stalled?: unknown; forwarding: Forwarding } }

// Recognisable: the test advances the forwarder's clock once its backoff is set, never while a
// request is out with only its timeout pending (once read as the backoff on a loaded machine: the
// advance aborted the request and the count the test waits for never began, a 60 s timeout).
const REQUEST_TIMEOUT = 987_654

const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** An upstream sink: 503 while `down`, else 202; records the ids it took. */
async function sink() {
  const state = { down: true, received: new Set<string>(), requests: 0 }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      state.requests++
      // Answered 100 ms after the request is counted, as on a loaded machine (see REQUEST_TIMEOUT).
      if (state.down) return void setTimeout(() => res.writeHead(503).end(), 100)
      for (const e of JSON.parse(body).events as Array<{ id: string }>) state.received.add(e.id)
      res.writeHead(202, { 'Content-Type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => server.close())
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/e`, state }
}

/** Spool segments as a long outage leaves them: `count` of about 2.5 MiB, 250 events of 10 KB each. */
async function grownSpool(dir: string, count: number): Promise<string[][]> {
  await mkdir(dir, { recursive: true })
  const ids: string[][] = []
  for (let segment = 1; segment <= count; segment++) {
    const mine = Array.from({ length: 250 }, (_, i) => `s${segment}-${i}`)
    ids.push(mine)
    const lines = mine.map((id) => JSON.stringify({ at: Date.parse('2026-12-01T09:00:00Z'), event: { ...event(id), value: 'x'.repeat(10_000) } }) + '\n')
    await writeFile(join(dir, segmentName(segment)), lines.join(''))
  }
  return ids
}

describe('a large spool counted again while the relay runs', { timeout: 60_000 }, () => {
  it('takes events (202) and does not say stalled while the count goes on read after read; a read that does not return is still shown', async () => {
    const spoolDir = join(await tempDir(), 'spool')
    const ids = await grownSpool(spoolDir, 4)
    const upstream = await sink()
    const fs = faultyFileSystem()
    const clock = steppedClock() // the write bound's
    const forwarding = steppedClock() // the forwarder's backoff
    const relay = await startServer({
      eventsUpstream: upstream.url,
      eventsSpoolDir: spoolDir,
      eventsFileSystem: fs,
      eventsClock: clock,
      eventsWriteTimeoutMs: BOUND,
      eventsForwarding: { clock: forwarding, timeoutMs: REQUEST_TIMEOUT },
    })
    expect((await status(relay.url)).events.forwarding.pending).toBe(1000)
    // The sink is down: the forwarder waits out its backoff.
    await waitFor(() => upstream.state.requests > 0 && forwarding.pending().some((t) => t.ms !== REQUEST_TIMEOUT), 10_000, 5)

    // The operator frees disk space: the oldest segment goes (its 250 events are lost, and said so).
    await rm(join(spoolDir, segmentName(1)))
    // Each 1 MiB read of the recount takes 1.5 s of the bound's clock and returns; the fourth (the
    // second of segment 3) is held, 1.5 s in, until the test lets it go.
    let countReads = 0
    let hold!: () => void
    const held = new Promise<void>((resolve) => (hold = resolve))
    let reached!: () => void
    const holding = new Promise<void>((resolve) => (reached = resolve))
    fs.beforeRead = async (length) => {
      if (length !== MiB) return
      clock.advance(1500)
      if (++countReads === 4) {
        reached()
        await held
      }
    }
    closers.push(hold)
    forwarding.advance(120_000)
    await holding

    // 6 s into the count, every read so far returned: nothing is stalled, and events are taken.
    let now = await status(relay.url)
    expect(now.events.stalled).toBeUndefined()
    expect(now.events.forwarding.stalled).toBeUndefined()
    const taken = await post(`${relay.url}/holdfast/v1/events`, { events: [event('during-count')] })
    expect(taken.status).toBe(202)

    // The held read does not return for the bound: that one is a stall of the forwarder's (and
    // only of it: taking events does not wait on the forwarder's reads).
    clock.advance(BOUND)
    now = await status(relay.url)
    expect(now.events.forwarding.stalled).toMatchObject({ path: join(spoolDir, segmentName(3)), seconds: 5 })
    expect(now.events.stalled).toBeUndefined()
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [event('while-held')] })).status).toBe(202)

    // The read returns: the count ends; what is left is counted right, and all of it delivered.
    hold()
    await waitFor(async () => (await status(relay.url)).events.forwarding.dropped === 250, 10_000)
    now = await status(relay.url)
    expect(now.events.forwarding).toMatchObject({ pending: 752, dropped: 250 })
    expect(now.events.forwarding.stalled).toBeUndefined()
    fs.beforeRead = undefined
    upstream.state.down = false
    for (let i = 0; i < 100 && (await status(relay.url)).events.forwarding.pending > 0; i++) {
      forwarding.advance(120_000)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect((await status(relay.url)).events.forwarding).toMatchObject({ pending: 0, dropped: 250 })
    expect([...upstream.state.received].sort()).toEqual([...ids.slice(1).flat(), 'during-count', 'while-held'].sort())
  })
})

describe('a large spool counted at start', { timeout: 60_000 }, () => {
  it('a count that takes longer than the open bound, read after read, is not a hung mount: the relay starts and delivers', async () => {
    // Before: the whole open (lock, count, ids read back) had to end within the bound (5 s; 0.5 s
    // here), so a relay restarted after a long outage, its spool large on a slow disk, was refused
    // as "it did not answer within 5 s: a hung mount?", at every restart. Each read here takes
    // 60 ms of real time (the bound is on the real clock, as the data dir's): 1.2 s in all.
    const before = dataDirTiming.openMs
    dataDirTiming.openMs = 500
    try {
      const spoolDir = join(await tempDir(), 'spool')
      const ids = await grownSpool(spoolDir, 5)
      const upstream = await sink()
      upstream.state.down = false
      const fs = faultyFileSystem()
      let reads = 0
      fs.beforeRead = async (length) => {
        if (length < 512 * 1024) return
        reads++
        await new Promise((resolve) => setTimeout(resolve, 80))
      }
      const started = Date.now()
      const relay = await startServer({ eventsUpstream: upstream.url, eventsSpoolDir: spoolDir, eventsFileSystem: fs })
      expect(Date.now() - started).toBeGreaterThan(500)
      expect(reads).toBeGreaterThanOrEqual(10)
      fs.beforeRead = undefined
      await waitFor(() => relay.eventsForwarding!().pending === 0, 20_000)
      expect(upstream.state.received.size).toBe(1250)
      expect([...upstream.state.received].sort()).toEqual(ids.flat().sort())
    } finally {
      dataDirTiming.openMs = before
    }
  })
})
