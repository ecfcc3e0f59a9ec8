// An events file or spool whose mount dies AFTER the start: a write (or its fsync) never returns.
// Before, `POST /holdfast/v1/events` waited for it for ever (every browser's flush hung until its
// own timeout, one more hung request per flush), and nothing in /holdfast/v1/status or /metrics
// said so. Now a request that waits on the store past `eventsWriteTimeoutMs` gets 503 +
// Retry-After (its client keeps the events), later requests are refused at once while the write
// is still hung, status and metrics name the stall (since when, which path), and once the write
// returns the relay takes events again by itself. Nothing answered 202 was not stored; events of a
// request answered 503 whose write landed late are duplicates on the client's retry, not lost.
import { readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { faultyFileSystem, steppedClock } from './events-faults'
import { serverProcess } from './events-process'
import { DEMO_FLAGS, post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { hungFifo as fifo, orHung, releaseHungFifos } from './hung-mount'

vi.setConfig({ testTimeout: 20_000 })

const BOUND = 4000
const event = (id: string) => ({ id, type: 'custom', name: 'clicked', time: 1_700_000_000_000 })
const send = (url: string, ...ids: string[]) => post(`${url}/holdfast/v1/events`, { events: ids.map(event) })
const status = async (url: string) => (await (await fetch(`${url}/holdfast/v1/status`)).json()) as { events?: { stalled?: { since: number; path: string; seconds: number }; forwarding?: unknown } }
const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text()


let releases: Array<() => void> = []
afterEach(() => {
  vi.restoreAllMocks()
  for (const release of releases.splice(0)) release()
  releaseHungFifos()
})

describe.each([
  ['an events file', (dir: string) => ({ eventsFile: join(dir, 'events.jsonl') }), 'events.jsonl'],
  ['a relay spool', (dir: string) => ({ eventsUpstream: 'http://127.0.0.1:9/e', eventsSpoolDir: join(dir, 'spool') }), 'seg-0000000000000001.jsonl'],
])('%s whose fsync hangs after the start', (_what, where, file) => {
  it('answers 503 + Retry-After past the bound, refuses later batches at once, shows the stall in status and metrics, and recovers when the fsync returns', async () => {
    const dir = await tempDir()
    const fs = faultyFileSystem()
    const clock = steppedClock()
    const logger = recordingLogger()
    const server = await startServer({ ...where(dir), eventsFileSystem: fs, eventsClock: clock, eventsWriteTimeoutMs: BOUND, logger })
    const held = fs.holdSyncs()
    releases.push(held.release)

    const first = send(server.url, 'a1', 'a2')
    await held.waiting
    // The request waits for its fsync up to the bound (on the injected clock), not for ever.
    await waitFor(() => clock.pending().length > 0, 5000, 5)
    clock.advance(BOUND)
    const answered = await orHung(first, 3000)
    expect(answered).not.toBe('hung')
    const response = answered as Response
    expect(response.status).toBe(503)
    expect(Number(response.headers.get('Retry-After'))).toBeGreaterThan(0)
    expect(await response.json()).toMatchObject({ errorCode: 'STORE_STALLED' })

    // While the write is still hung, the next batch is refused at once (the clock does not move).
    const second = await orHung(send(server.url, 'b1'), 3000)
    expect(second).not.toBe('hung')
    expect((second as Response).status).toBe(503)

    // Status and metrics say so: since when, which path. `since` by the system clock, as the logs
    // are dated: the steady clock that times the stall (here six days behind, as a server's is when
    // it started before NTP set the system clock) is not one an operator can read. Before: the
    // steady clock's `since`, six days off the logs.
    clock.advance(6000)
    const wall = Date.parse('2026-12-07T03:00:00Z')
    vi.spyOn(Date, 'now').mockReturnValue(wall)
    const stalled = (await status(server.url)).events?.stalled
    expect(stalled).toMatchObject({ since: wall - BOUND - 6000, seconds: 10 })
    expect(stalled?.path).toContain(join(dir))
    expect(stalled?.path.endsWith(file)).toBe(true)
    const metrics = await scrape(server.url)
    expect(metrics).toMatch(new RegExp(`holdfast_events_store_stalled_seconds\\{path="[^"]*${file.replace(/\./g, '\\.')}"\\} 10`))
    expect(metrics).toMatch(/holdfast_events_rejected_total\{reason="store_stalled"\} 2/)
    expect(logger.lines.some((line) => line.includes(file) && line.includes('has not returned'))).toBe(true)
    // Readiness stays 200 (flags are still served; taking the instance out of a load balancer
    // would stop them, and a fleet on one dead mount would stop serving flags altogether), and
    // its body names the stall, as the status does.
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready', events: { stalled: { since: wall - BOUND - 6000, path: stalled!.path, seconds: 10 } } })
    // NTP steps the system clock an hour during the stall (the steady clock does not move): the
    // stall still began when it began, in the status and /readyz alike. Before: `since` was
    // worked out again at each read, an hour later on the next one (and a millisecond off now and
    // then, Date.now and the steady clock not read at once): one stall seen as another.
    vi.spyOn(Date, 'now').mockReturnValue(wall + 3_600_000)
    expect((await status(server.url)).events?.stalled).toMatchObject({ since: wall - BOUND - 6000, seconds: 10 })
    expect(await (await fetch(`${server.url}/readyz`)).json()).toMatchObject({ events: { stalled: { since: wall - BOUND - 6000 } } })
    vi.restoreAllMocks()

    // The fsync returns: the relay takes events again by itself. a1, a2 were stored after all
    // (late): the client's retry of them is a duplicate, never stored twice; b1 was never stored.
    held.release()
    await waitFor(async () => (await status(server.url)).events?.stalled === undefined, 5000)
    expect(await (await fetch(`${server.url}/readyz`)).json()).not.toHaveProperty('events')
    expect(await scrape(server.url)).not.toMatch(/holdfast_events_store_stalled_seconds\{/)
    const retry = await send(server.url, 'a1', 'a2', 'b1')
    expect(retry.status).toBe(202)
    expect(await retry.json()).toEqual({ accepted: 1, duplicates: 2 })
    expect(await scrape(server.url)).toMatch(/holdfast_events_accepted_total 3/)
    const lines = (await readFile(join(dir, file === 'events.jsonl' ? file : join('spool', file)), 'utf8')).split('\n').filter(Boolean)
    expect(lines.map((line) => (JSON.parse(line).event ?? JSON.parse(line)).id).sort()).toEqual(['a1', 'a2', 'b1'])
    expect(logger.lines.some((line) => line.includes(file) && line.includes('returned after'))).toBe(true)
  })
})

describe('holdfast-server (a real process) whose events file turns into a call that never returns', () => {
  it('a FIFO swapped in for events.jsonl (its open blocks a real libuv thread): 503 within --events-write-timeout, then at once; status and metrics name it; events taken again once it returns', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const flags = join(dir, 'flags.json')
    await writeFile(flags, JSON.stringify(DEMO_FLAGS))
    const server = serverProcess(['--flags', flags, '--events-file', file, '--events-write-timeout', '1500', '--port', '0', '--max-event-loop-delay', '0'])
    const url = await server.url()
    expect((await send(url, 'p1')).status).toBe(202)
    // The mount "dies": the path now names a FIFO. The next batch reopens the path (the file was
    // replaced from outside) and that open blocks until a reader comes: it never returns.
    await rm(file)
    fifo(file)
    const started = Date.now()
    const first = await orHung(send(url, 'p2'), 10_000)
    expect(first, server.output()).not.toBe('hung')
    expect((first as Response).status).toBe(503)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400)
    expect(Date.now() - started).toBeLessThan(6000)
    const again = Date.now()
    expect((await send(url, 'p3')).status).toBe(503)
    expect(Date.now() - again).toBeLessThan(1000)
    expect((await status(url)).events?.stalled).toMatchObject({ path: file })
    expect(await scrape(url)).toMatch(/holdfast_events_store_stalled_seconds\{path="[^"]*events\.jsonl"\} [1-9]/)
    expect(server.output()).toContain(`a write to ${file} has not returned for 1 s`)
    // The mount comes back: the open returns (and fails on the FIFO); the operator puts a file back.
    releaseHungFifos()
    await rm(file)
    await waitFor(async () => (await send(url, 'p2', 'p3')).status === 202, 10_000, 100)
    expect((await status(url)).events?.stalled).toBeUndefined()
    expect((await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line).id)).toEqual(['p2', 'p3'])
  })
})

describe('a relay whose spool hangs under the forwarder (no events posted meanwhile)', () => {
  it('the cursor write after a delivery never returns: status and metrics show the forwarding stalled on the spool, and it clears when the write returns', async () => {
    // The sink answers when the test says, so the fsync can be held right before the relay acks.
    let answer!: () => void
    const answered = new Promise<void>((resolve) => (answer = resolve))
    const sink = createServer((req, res) => {
      req.resume()
      req.on('end', () => void answered.then(() => res.writeHead(202).end('{}')))
    })
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
    releases.push(() => sink.close())
    const dir = await tempDir()
    const fs = faultyFileSystem()
    const clock = steppedClock()
    const server = await startServer({
      eventsUpstream: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e`,
      eventsSpoolDir: join(dir, 'spool'),
      eventsFileSystem: fs,
      eventsClock: clock,
      eventsWriteTimeoutMs: BOUND,
    })
    expect((await send(server.url, 'f1')).status).toBe(202)
    const held = fs.holdSyncs()
    releases.push(held.release)
    answer()
    await held.waiting
    clock.advance(BOUND + 2000)
    const forwarding = (await status(server.url)).events?.forwarding as { pending: number; stalled?: { path: string; seconds: number } }
    expect(forwarding).toMatchObject({ pending: 1, stalled: { path: join(dir, 'spool', 'cursor.json'), seconds: 6 } })
    expect(await scrape(server.url)).toMatch(/holdfast_events_store_stalled_seconds\{path="[^"]*cursor\.json"\} 6/)
    // Taking events does not wait on the forwarder: the append log is idle.
    expect((await status(server.url)).events?.stalled).toBeUndefined()
    held.release()
    await waitFor(async () => ((await status(server.url)).events?.forwarding as { pending: number }).pending === 0, 5000)
    expect(((await status(server.url)).events?.forwarding as { stalled?: unknown }).stalled).toBeUndefined()
  })
})

describe('the write bound and the wall clock', () => {
  it('a wall clock stepped an hour forward while an fsync is under way does not make a slow write a stall: the next batch waits and gets its 202', async () => {
    const dir = await tempDir()
    const fs = faultyFileSystem()
    const server = await startServer({ eventsFile: join(dir, 'events.jsonl'), eventsFileSystem: fs })
    const held = fs.holdSyncs()
    releases.push(held.release)
    const first = send(server.url, 'w1')
    await held.waiting
    const now = Date.now()
    const stepped = vi.spyOn(Date, 'now').mockImplementation(() => now + 3_600_000)
    try {
      const second = send(server.url, 'w2')
      // Not refused as stalled: the write has run for milliseconds, whatever the wall clock says.
      expect((await status(server.url)).events?.stalled).toBeUndefined()
      held.release()
      expect((await first).status).toBe(202)
      expect((await second).status).toBe(202)
    } finally {
      stepped.mockRestore()
    }
  })
})
