// A sink that answers 400 to batches over K events (not Holdfast's: "max K events per request")
// whose K changes after the forwarder learned it (events-forwarding-400-size.test.ts), and one
// that also refuses a bad event. The log must say the size batches now go at, and every good
// event must arrive once.
import { expect, it } from 'vitest'
import { cappedSink, events, relayTo } from './cappedSink'
import { post } from './helpers'


it('the sink lowers its cap from 10 to 5 after the forwarder learned 10: the log says ~5 and batches go at 5, every event once', { timeout: 30_000 }, async () => {
  const cap = { k: 10 }
  const sink = await cappedSink(cap)
  const { relay, logger, drained } = await relayTo(sink.url)
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 40) })).status).toBe(202)
  await drained(40)
  expect(logger.lines.filter((l) => /seems to take at most ~10 events per request/.test(l))).toHaveLength(1)
  cap.k = 5
  const before = sink.sizes.length
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('b', 40) })).status).toBe(202)
  await drained(80)
  // 10 refused, then pieces of 5; the rest at 5 without a 400.
  expect(sink.sizes.slice(before, before + 3)).toEqual([10, 5, 5])
  expect(sink.sizes.slice(before + 3).every((n) => n === 5)).toBe(true)
  // Before, nothing said the size had changed: the last word in the log was still "~10".
  const told = logger.lines.filter((l) => /seems to take at most/.test(l))
  expect(told).toHaveLength(2)
  expect(told[1]).toMatch(/seems to take at most ~5 events per request; batches now go at 5 events/)
  expect(new Set(sink.received).size).toBe(80)
  expect(sink.received).toHaveLength(80)
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: 80, deadLettered: 0, dropped: 0, pending: 0, state: 'ok' })
})

it('a sink capped at 10 that also refuses one bad event: the bad one dead-lettered once, every good event once, the cap learned from the next batch', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: 10 }, new Set(['a-25']))
  const { relay, logger, drained } = await relayTo(sink.url)
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 40) })).status).toBe(202)
  await drained(39)
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: 39, deadLettered: 1, dropped: 0, pending: 0 })
  // A search that refused an event for good teaches no size.
  expect(logger.lines.some((l) => /seems to take at most/.test(l))).toBe(false)
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('b', 80) })).status).toBe(202)
  await drained(119)
  expect(logger.lines.filter((l) => /seems to take at most ~10 events per request/.test(l))).toHaveLength(1)
  expect(new Set(sink.received).size).toBe(119)
  expect(sink.received).toHaveLength(119)
  expect(sink.received).not.toContain('a-25')
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: 119, deadLettered: 1, dropped: 0, pending: 0, state: 'ok' })
})

it('/holdfast/v1/status says the batch size the sink taught (batchLimit) while under batchSize, and not once grown back', { timeout: 30_000 }, async () => {
  const cap = { k: 10 }
  const sink = await cappedSink(cap)
  const { relay, drained } = await relayTo(sink.url)
  const forwarding = async () => ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { events: { forwarding: { batchLimit?: number } } }).events.forwarding
  expect((await forwarding()).batchLimit).toBeUndefined()
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 40) })).status).toBe(202)
  await drained(40)
  // Before, nothing but one warn line said why batches went at 10 while --events-batch-size is 40.
  expect((await forwarding()).batchLimit).toBe(10)
  expect(relay.eventsForwarding!().batchLimit).toBe(10)
  // The cap raised: 100 deliveries at 10, then 20, 100 more, then 40 = batchSize.
  cap.k = 40
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('b', 3100) })).status).toBe(202)
  await drained(3140)
  expect((await forwarding()).batchLimit).toBeUndefined()
  expect(sink.sizes.slice(-3)).toEqual([40, 40, 20])
})

it('a lone event answered 413 after the cap was learned: dead-lettered, and batches stay at the cap (no new 400 search)', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: 10 }, new Set(), new Set(['b-3']))
  const { relay, logger, drained } = await relayTo(sink.url)
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 40) })).status).toBe(202)
  await drained(40)
  const refusedBefore = sink.statuses.filter((s) => s === 400).length
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('b', 40) })).status).toBe(202)
  await drained(79)
  expect(relay.eventsForwarding!()).toMatchObject({ delivered: 79, deadLettered: 1, dropped: 0, pending: 0, batchLimit: 10 })
  // Before, the lone 413 sent the size back to 40: the next batch was refused (400) and searched
  // again, and the search taught ~9 from the 36 left, said at warn.
  expect(sink.statuses.filter((s) => s === 400).length).toBe(refusedBefore)
  expect(logger.lines.filter((l) => /seems to take at most/.test(l))).toHaveLength(1)
  expect(new Set(sink.received).size).toBe(79)
  expect(sink.received).toHaveLength(79)
})
