// @vitest-environment jsdom
// What live updates remember in localStorage for the next page (a 304 has no body to say where the
// stream is), against servers on 127.0.0.1. OFREP 0.3.0: an advertised stream `url` may carry a
// vendor's token, and "implementations must not log or persist the full URL including its query string".
import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from '@holdfast/core'
import { createTestLogger, uniqueStorageName } from '../support/clock'
import { pollUntil as waitFor, startStreamingOfrep } from '../support/streamingOfrep'

const cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
  localStorage.clear()
})

/** The streaming OFREP fake (no 304s: every load gets the advertisement), closed after the test. */
async function ofrepServer(streams: (self: string) => unknown[]) {
  const server = await startStreamingOfrep(streams, { notModified: false })
  cleanup.push(() => server.close())
  return { url: server.url, streams: () => server.open.length }
}

async function run(url: string, connected: () => boolean, shareTabs = false) {
  const c = createClient({ url, context: { targetingKey: 'u' }, storage: 'memory', storageName: uniqueStorageName('live-persist'), logger: createTestLogger(), refreshIntervalMs: 0, liveUpdates: { shareTabs } })
  cleanup.push(() => c.close())
  await c.start()
  await waitFor(connected, 5000, 'the stream')
}

const remembered = () => Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`).join('\n')

describe('the advertised stream, remembered for the next page', () => {
  it('a stream URL with a token in its query is not written to localStorage', async () => {
    const vendor = await ofrepServer(() => [])
    const home = await ofrepServer(() => [{ type: 'sse', url: `${vendor.url}/stream?channels=env_abc&token=SECRET-123` }])
    await run(home.url, () => vendor.streams() === 1)
    expect(remembered()).not.toContain('SECRET-123')
  })

  it('nor is one on the OFREP origin with a token in its query (endpoint.requestUri)', async () => {
    const home = await ofrepServer(() => [{ type: 'sse', endpoint: { requestUri: '/stream?token=SECRET-456' } }])
    await run(home.url, () => home.streams() === 1)
    expect(remembered()).not.toContain('SECRET-456')
  })

  it('nor is the lease a tab holds on the stream where Web Locks are missing (jsdom has none)', async () => {
    expect((navigator as { locks?: unknown }).locks).toBeUndefined()
    const home = await ofrepServer(() => [{ type: 'sse', endpoint: { requestUri: '/stream?token=SECRET-789' } }])
    await run(home.url, () => home.streams() === 1, true)
    expect(Object.keys(localStorage).some((k) => k.includes('leader') || k.includes('lease'))).toBe(true)
    expect(remembered()).not.toContain('SECRET-789')
  })

  it('the reference server\'s path is remembered, so a page answered 304 still finds it (held)', async () => {
    const home = await ofrepServer(() => [{ type: 'sse', endpoint: { requestUri: '/stream' }, inactivityDelaySec: 30 }])
    await run(home.url, () => home.streams() === 1)
    expect(localStorage.getItem(`holdfast-live:${home.url}`)).toContain('/stream')
  })
})
