// An events sink that is not Holdfast's and answers 400 (not 413) to a batch with too many events
// ("max 500 events per request", as many SaaS ingest APIs do). Before, every full batch started a
// search for a bad event: nothing was lost, but each batch cost refused requests and pauses, and
// the log pointed the operator at bad events when the cause was size. Now a search that ends with
// every piece taken (no event refused) keeps the largest piece taken as the batch size, and says
// once, at warn, that the sink seems to take at most ~N events per request.
import { expect, it } from 'vitest'
import { cappedSink, events, relayTo } from './cappedSink'
import { post, waitFor } from './helpers'

const K = 10

it('a sink that answers 400 to batches over K events: after one search, batches go at K with no 400, every event once', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: K })
  const { relay, logger, drained } = await relayTo(sink.url)
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 40) })).status).toBe(202)
  // The first batch is searched: 40 and 20 refused (a pause after each), then pieces of 10 taken.
  await drained(40)
  expect(sink.sizes).toEqual([40, 20, 10, 10, 10, 10])
  const refusedFirst = sink.statuses.filter((s) => s === 400).length
  // Later batches go at K at once: no 400, no pause needed.
  for (const tag of ['b', 'c']) {
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: events(tag, 40) })).status).toBe(202)
    await waitFor(() => sink.received.length === (tag === 'b' ? 80 : 120), 10_000, 5)
  }
  // The sink counts an event before the relay hears its 202: wait for the relay's count too.
  await waitFor(() => relay.eventsForwarding!().delivered === 120, 10_000, 5)
  expect(sink.statuses.filter((s) => s === 400).length).toBe(refusedFirst)
  expect(Math.max(...sink.sizes.slice(6))).toBeLessThanOrEqual(K)
  expect(new Set(sink.received).size).toBe(120)
  expect(sink.received.length).toBe(120)
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: 120, deadLettered: 0, dropped: 0, pending: 0 })
  const said = logger.lines.join('\n')
  expect(said).toMatch(/seems to take at most ~10 events per request/)
  expect(logger.lines.filter((l) => /seems to take at most/.test(l))).toHaveLength(1)
})

it('after 100 batches at the size taught it tries twice that size once: refused, searched without a warning naming bad events, every event once', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: K })
  const { relay, logger, drained } = await relayTo(sink.url)
  // 40 searched (4 pieces of 10, the 4th teaches 10), 100 batches of 10, then a probe of 20.
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('g', 1080) })).status).toBe(202)
  await drained(1080)
  const { sizes, received } = sink
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
