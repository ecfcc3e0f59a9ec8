// A tail batch (fewer events waiting than the batch size) refused by a sink capped at 10 events
// per request: its search takes pieces of 6, which says nothing of the cap. Before, it taught 6,
// and batches went at 6 (half the throughput) once 40 more were waiting.
import { expect, it } from 'vitest'
import { cappedSink, events, relayTo } from './cappedSink'
import { post } from './helpers'

it('cap 10, batchSize 40: a first batch of 12 teaches nothing; with 40 more waiting requests go at 10, 52 events each once', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: 10 })
  const { relay, logger, drained } = await relayTo(sink.url)
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 12) })).status).toBe(202)
  await drained(12)
  expect(sink.sizes).toEqual([12, 6, 6])
  expect(logger.lines.some((l) => /seems to take at most ~6/.test(l))).toBe(false)
  expect(relay.eventsForwarding!().batchLimit).toBeUndefined()
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('b', 40) })).status).toBe(202)
  await drained(52)
  // The full batch of 40 is searched once (40, 20 refused), then every request delivered goes at 10.
  const later = sink.sizes.slice(3).filter((_, i) => sink.statuses[3 + i] === 202)
  expect(later).toEqual([10, 10, 10, 10])
  expect(logger.lines.filter((l) => /seems to take at most/.test(l)).map((l) => /~(\d+)/.exec(l)?.[1])).toEqual(['10'])
  expect(relay.eventsForwarding!().batchLimit).toBe(10)
  expect(new Set(sink.received).size).toBe(52)
  expect(sink.received).toHaveLength(52)
})

it('a batch under batchSize because of the byte cap (more events waiting) still teaches the cap', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: 10 })
  const { relay, logger, drained } = await relayTo(sink.url, { batchBytes: 1200 })
  const body = { events: events('c', 60) }
  expect((await post(`${relay.url}/holdfast/v1/events`, body)).status).toBe(202)
  await drained(60)
  expect(sink.sizes[0]).toBeGreaterThan(10)
  expect(sink.sizes[0]).toBeLessThan(40)
  expect(logger.lines.filter((l) => /seems to take at most/.test(l))).toHaveLength(1)
  expect(relay.eventsForwarding!().batchLimit).toBeLessThanOrEqual(10)
  expect(new Set(sink.received).size).toBe(60)
  expect(sink.received).toHaveLength(60)
})
