// A delivery pass asked for while another runs waits behind it (one pass at a time per client):
// flush() calls, and a page being hidden (its keepalive pass). Whether it may go at all (a
// server's Retry-After, the backoff) was decided when it was asked, before the running pass's
// answer came. So when that answer was a 503 with Retry-After, every pass queued behind it still
// sent: an app calling flush() on each route change, or a user switching tabs, while a failing
// receiver answered slowly, sent one request per call, each told to wait a minute.
//
//   pass 1  ──── request (slow) ───── 503, Retry-After: 60 ──► wait
//   flush() ×4 / hidden ×4 (queued)                            ──► must not send until the wait ends
import { expect, test } from 'vitest'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock } from '../support/clock'
import { fakeEnvironment } from '../support/environment'
import { until } from '../support/eventsReceiver'

const suite = useEventsSuite({ storage: 'events-queued', requestTimeoutMs: 2000, backoff: { baseMs: 1000, maxMs: 8000 } })

const requests = () => suite.receiver.requests.length

async function slowRetryAfter() {
  // Answers after 300 ms: the passes asked meanwhile queue behind the first.
  suite.receiver.set({ status: 503, retryAfter: '60', delayMs: 300 })
  const clock = createManualClock()
  const env = fakeEnvironment()
  const client = suite.make({}, { clock, environment: env, random: () => 1 })
  await client.start()
  client.logEvent('a')
  return { clock, env, client }
}

test("flush() calls queued behind a pass that is told Retry-After wait for it too; the events go once it ends", async () => {
  const { clock, client } = await slowRetryAfter()
  await Promise.all([client.flush(), client.flush(), client.flush(), client.flush(), client.flush()])
  // Before: 5 requests, 4 of them after the server said to wait 60 s.
  expect(requests()).toBe(1)
  // Nothing was lost or dropped: once the wait is over, the event goes.
  suite.receiver.set({})
  clock.advance(60_000)
  await until(() => client.getEventStats().sent === 1, 'the retry after the wait')
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 1, dropped: 0 })
})

test('a page hidden again and again while a pass runs sends no keepalive request after the Retry-After', async () => {
  const { env, client } = await slowRetryAfter()
  const first = client.flush()
  for (let i = 0; i < 4; i++) {
    env.fire('hidden')
    env.fire('focus')
  }
  await first
  await new Promise((r) => setTimeout(r, 800))
  // Before: 4 (the flush, then a keepalive request for hides queued behind it; two met in one pass).
  expect(requests()).toBe(1)
  expect(client.getEventStats()).toMatchObject({ queued: 1, dropped: 0 })
})
