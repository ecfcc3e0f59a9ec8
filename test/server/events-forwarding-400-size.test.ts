// An events sink that is not Holdfast's and answers 400 (not 413) to a batch with too many events
// ("max 500 events per request", as many SaaS ingest APIs do). Before, every full batch started a
// search for a bad event: nothing was lost, but each batch cost refused requests and pauses, and
// the log pointed the operator at bad events when the cause was size. Now a search that ends with
// every piece taken (no event refused) keeps the largest piece taken as the batch size, and says
// once, at warn, that the sink seems to take at most ~N events per request.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { steppedClock } from './events-faults'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'

const REQUEST_TIMEOUT = 987_654
const K = 10
const pause = (clock: ReturnType<typeof steppedClock>) => clock.pending().find((t) => t.ms !== REQUEST_TIMEOUT)

const servers: ReturnType<typeof createServer>[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

it('a sink that answers 400 to batches over K events: after one search, batches go at K with no 400, every event once', { timeout: 30_000 }, async () => {
  const sent: Array<{ size: number; status: number }> = []
  const received: string[] = []
  const sink = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const events = JSON.parse(body).events as Array<{ id: string }>
      const status = events.length > K ? 400 : 202
      sent.push({ size: events.length, status })
      if (status === 202) received.push(...events.map((e) => e.id))
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 400 ? JSON.stringify({ error: `max ${K} events per request` }) : '{}')
    })
  })
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
  servers.push(sink)
  const clock = steppedClock()
  const logger = recordingLogger()
  const relay = await startServer({
    logger,
    eventsUpstream: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e`,
    eventsSpoolDir: join(await tempDir(), 'spool'),
    eventsForwarding: { clock, batchSize: 40, timeoutMs: REQUEST_TIMEOUT, backoffBaseMs: 1000, random: () => 0.5 },
  })
  const batch = (tag: string) => Array.from({ length: 40 }, (_, i) => ({ id: `${tag}-${i}`, type: 'custom', name: 'n', time: 1 }))
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: batch('a') })).status).toBe(202)
  // The first batch is searched: 40 and 20 refused (a pause after each), then pieces of 10 taken.
  await waitFor(() => {
    const p = pause(clock)
    if (p) clock.advance(p.ms)
    return received.length === 40
  }, 10_000, 5)
  expect(sent.map((s) => s.size)).toEqual([40, 20, 10, 10, 10, 10])
  const refusedFirst = sent.filter((s) => s.status === 400).length
  // Later batches go at K at once: no 400, no pause needed.
  for (const tag of ['b', 'c']) {
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: batch(tag) })).status).toBe(202)
    await waitFor(() => received.length === (tag === 'b' ? 80 : 120), 10_000, 5)
  }
  // The sink counts an event before the relay hears its 202: wait for the relay's count too.
  await waitFor(() => relay.eventsForwarding!().delivered === 120, 10_000, 5)
  expect(sent.filter((s) => s.status === 400).length).toBe(refusedFirst)
  expect(Math.max(...sent.slice(6).map((s) => s.size))).toBeLessThanOrEqual(K)
  expect(new Set(received).size).toBe(120)
  expect(received.length).toBe(120)
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: 120, deadLettered: 0, dropped: 0, pending: 0 })
  const said = logger.lines.join('\n')
  expect(said).toMatch(/seems to take at most ~10 events per request/)
  expect(logger.lines.filter((l) => /seems to take at most/.test(l))).toHaveLength(1)
})

it('after 100 batches at the size taught it tries twice that size once: refused, searched without a warning naming bad events, every event once', { timeout: 30_000 }, async () => {
  const sizes: number[] = []
  const received: string[] = []
  const sink = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const events = JSON.parse(body).events as Array<{ id: string }>
      sizes.push(events.length)
      if (events.length > K) return res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `max ${K} events per request` }))
      received.push(...events.map((e) => e.id))
      res.writeHead(202, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
  servers.push(sink)
  const clock = steppedClock()
  const logger = recordingLogger()
  const relay = await startServer({
    logger,
    eventsUpstream: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e`,
    eventsSpoolDir: join(await tempDir(), 'spool'),
    eventsForwarding: { clock, batchSize: 40, timeoutMs: REQUEST_TIMEOUT, backoffBaseMs: 1000, random: () => 0.5 },
  })
  // 40 searched (4 pieces of 10, the 4th teaches 10), 100 batches of 10, then a probe of 20.
  const events = Array.from({ length: 1080 }, (_, i) => ({ id: `g-${i}`, type: 'custom', name: 'n', time: 1 }))
  expect((await post(`${relay.url}/holdfast/v1/events`, { events })).status).toBe(202)
  await waitFor(() => {
    const p = pause(clock)
    if (p) clock.advance(p.ms)
    return relay.eventsForwarding!().delivered === 1080
  }, 20_000, 5)
  expect(sizes.slice(0, 6)).toEqual([40, 20, 10, 10, 10, 10])
  expect(sizes.slice(6, 106).every((n) => n === 10)).toBe(true)
  expect(sizes[106]).toBe(20)
  expect(sizes.filter((n) => n > K)).toHaveLength(3)
  expect(new Set(received).size).toBe(1080)
  expect(received).toHaveLength(1080)
  expect(relay.eventsForwarding!()).toMatchObject({ deadLettered: 0, dropped: 0, pending: 0 })
  // The first search's two refusals (40, 20) only: before, the probe of 20 added a third.
  expect(logger.lines.filter((l) => /to find the event\(s\) refused/.test(l))).toHaveLength(2)
  expect(logger.lines.filter((l) => /seems to take at most ~10 events/.test(l))).toHaveLength(1)
})
