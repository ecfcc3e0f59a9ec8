// @vitest-environment jsdom
// A server may move its stream: a later bulk answer advertises another `eventStreams` URL (a vendor
// whose stream URL carries a signed, expiring token, new in every answer). The client follows it.
// Against the streaming OFREP fake on 127.0.0.1, in a page (jsdom: the first stream of a page opens
// a second late and catches up once).
import { afterEach, expect, it, vi } from 'vitest'
import { liveClient, pollUntil, startStreamingOfrep } from '../support/streamingOfrep'

vi.setConfig({ testTimeout: 60_000 })

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
  localStorage.clear()
})

it('a stream URL signed anew in every answer is followed without a request loop: nothing changes, nothing is asked', async () => {
  let signed = 0
  // No 304 either: the body (with its new URL) is another body each time.
  const server = await startStreamingOfrep((self) => [{ type: 'sse', url: `${self}/stream?sig=${++signed}` }], { notModified: false })
  cleanup.push(() => server.close())
  const c = liveClient(server.url, 'live-move', cleanup, { liveUpdates: { shareTabs: false } })
  await c.start()
  await pollUntil(() => server.open.length > 0, 15_000, 'the stream')
  await new Promise((r) => setTimeout(r, 4000))
  // The first answer, and the catch-up of the page's first stream (whose answer moves the stream
  // once more, with no catch-up of its own). Before: each move's stream opened a second late and
  // caught up, and that answer named another URL: a bulk request and a new stream connection every
  // second or so, for as long as the page is open.
  expect(server.bulk.length).toBeLessThanOrEqual(2)
  expect(server.streamHeaders.length).toBeLessThanOrEqual(2)
  // It still hears the server: a notice is one refetch.
  const before = server.bulk.length
  server.send('data: {"type":"refetchEvaluation"}\n\n')
  await pollUntil(() => server.bulk.length > before, 10_000, 'the refetch of the notice')
})

it('a stream moved to another origin is followed at once, without the configured credentials', async () => {
  const foreign = await startStreamingOfrep()
  cleanup.push(() => foreign.close())
  let moved = false
  const home = await startStreamingOfrep((self) => [{ type: 'sse', url: moved ? `${foreign.url}/stream` : `${self}/stream` }], { notModified: false })
  cleanup.push(() => home.close())
  const c = liveClient(home.url, 'live-move', cleanup, { headers: { Authorization: 'Bearer app-secret' }, liveUpdates: { shareTabs: false } })
  await c.start()
  await pollUntil(() => home.open.length === 1, 15_000, 'the stream at home')
  expect(home.streamHeaders[0].authorization).toBe('Bearer app-secret')
  moved = true
  await c.refresh()
  await pollUntil(() => foreign.open.length === 1, 15_000, 'the stream on the other origin')
  expect(foreign.streamHeaders[0].authorization).toBeUndefined()
  expect(home.streamHeaders.length).toBe(1)
  const before = home.bulk.length
  foreign.send('data: {"type":"refetchEvaluation"}\n\n')
  await pollUntil(() => home.bulk.length > before, 10_000, 'the refetch of the moved stream\'s notice')
})
