// An upstream events sink that answers 413 to everything (a proxy in front of it with a tiny body
// cap, a WAF): before, the relay halved and re-sent at once, dropped the lone event, went back to
// its full batch size and halved again, with no pause anywhere: a dozen requests per event, as
// fast as the sink answered, until the whole spool was dropped within minutes. Now every 413 is
// followed by a pause of the first backoff step (as a 400/422 refusal is): at most one refused
// request a second, and an operator has time to see `lastError` and the drops.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { steppedClock } from './events-faults'
import { post, startServer, tempDir, waitFor } from './helpers'

const REQUEST_TIMEOUT = 987_654
/** The forwarder's pause (any timer but a request's timeout), if one is set. */
const pause = (clock: ReturnType<typeof steppedClock>) => clock.pending().find((t) => t.ms !== REQUEST_TIMEOUT)

const servers: ReturnType<typeof createServer>[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

describe('an upstream that answers 413 to everything', { timeout: 30_000 }, () => {
  it('is not flooded: one refused request, then a pause on the clock before the next', async () => {
    const sizes: number[] = []
    const sink = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        sizes.push(JSON.parse(body).events.length)
        res.writeHead(413).end()
      })
    })
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
    servers.push(sink)
    const clock = steppedClock()
    const relay = await startServer({
      eventsUpstream: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e`,
      eventsSpoolDir: join(await tempDir(), 'spool'),
      eventsForwarding: { clock, timeoutMs: REQUEST_TIMEOUT, backoffBaseMs: 1000, random: () => 0.5 },
    })
    const events = Array.from({ length: 4 }, (_, i) => ({ id: `big-${i}`, type: 'custom', name: 'n', time: 1 }))
    expect((await post(`${relay.url}/holdfast/v1/events`, { events })).status).toBe(202)
    // Before: all 4 dropped (4, 2, 1, 1, 2, 1, 1: seven requests) with no timer ever set.
    await waitFor(() => pause(clock) !== undefined || relay.eventsForwarding!().dropped === 4, 10_000, 5)
    expect(sizes).toEqual([4])
    expect(relay.eventsForwarding!()).toMatchObject({ dropped: 0, pending: 4, lastError: { httpStatus: 413 } })
    expect(pause(clock)!.ms).toBeGreaterThanOrEqual(1000)
    // Each step of the clock lets one more request out.
    for (let step = 2; step <= 4; step++) {
      clock.advance(pause(clock)!.ms)
      await waitFor(() => sizes.length === step && pause(clock) !== undefined, 10_000, 5)
    }
    expect(sizes).toEqual([4, 2, 1, 3])
    // A lone event the sink still refuses is dead-lettered (before: dropped), as documented (then the full batch again), one request per pause at most.
    expect(relay.eventsForwarding!()).toMatchObject({ deadLettered: 1, dropped: 0, pending: 3 })
  })
})
