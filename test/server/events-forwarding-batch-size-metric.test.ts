// GET /metrics says the batch size the forwarder sends at: the configured one, then the size a
// sink capped at 10 events per request taught (as /holdfast/v1/status' batchLimit does).
import { expect, it } from 'vitest'
import { cappedSink, events, relayTo } from './cappedSink'
import { post, startServer } from './helpers'

const sample = async (url: string) => /^holdfast_events_forwarding_batch_size (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]

it('holdfast_events_forwarding_batch_size reads the batchSize (40), then 10 once a capped sink taught it', { timeout: 30_000 }, async () => {
  const sink = await cappedSink({ k: 10 })
  const { relay, drained } = await relayTo(sink.url)
  expect(await sample(relay.url)).toBe('40')
  expect((await post(`${relay.url}/holdfast/v1/events`, { events: events('a', 40) })).status).toBe(202)
  await drained(40)
  expect(relay.eventsForwarding!().batchLimit).toBe(10)
  expect(await sample(relay.url)).toBe('10')
})

it('no sample without --events-upstream', async () => {
  const relay = await startServer({})
  expect(await (await fetch(`${relay.url}/metrics`)).text()).not.toMatch(/^holdfast_events_forwarding_batch_size /m)
  await relay.close()
})
