// @vitest-environment jsdom
// Messages on the tabs' channel in shapes this version never posts: a tab still running another
// Holdfast version, or a stray script of the origin. Two tabs (the first leads: jsdom has no Web
// Locks, the localStorage lease decides), against the streaming OFREP fake on 127.0.0.1.
import { afterEach, expect, it, vi } from 'vitest'
import { createTestLogger } from '../support/clock'
import { liveClient, pollUntil, startStreamingOfrep } from '../support/streamingOfrep'

vi.setConfig({ testTimeout: 60_000 })

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
  localStorage.clear()
})

it('junk on the channel (no type, __proto__ keys, a notice whose version is huge or not a string) throws nothing and leaves the follower ready', async () => {
  const server = await startStreamingOfrep()
  cleanup.push(() => server.close())
  const logger = createTestLogger()
  const leader = liveClient(server.url, 'live-tabs-hostile', cleanup, { liveUpdates: { shareTabs: true } })
  await leader.start()
  await pollUntil(() => server.open.length === 1, 15_000, 'the leader\'s stream')
  const follower = liveClient(server.url, 'live-tabs-hostile', cleanup, { liveUpdates: { shareTabs: true }, logger })
  await follower.start()
  const channel = new BroadcastChannel(`holdfast-live:2:${server.url}/stream`)
  cleanup.push(() => channel.close())
  await new Promise((r) => setTimeout(r, 300))
  const junk: unknown[] = [
    null,
    7,
    { t: 5 },
    JSON.parse('{"t":"values","__proto__":{"key":"x"},"key":"__proto__","result":{"kind":"ok","entries":[{"key":"__proto__","value":1}]}}'),
    JSON.parse('{"t":"__proto__"}'),
    { t: 'stream', up: 'no' },
    { t: 'settled', key: { toString: null } },
    { t: 'notice', version: { not: 'a string' }, key: 'someone else' },
  ]
  for (const message of junk) channel.postMessage(message)
  await new Promise((r) => setTimeout(r, 600))
  channel.postMessage({ t: 'notice', version: `flagConfigEtag=${'x'.repeat(100_000)}`, key: 'someone else' })
  await new Promise((r) => setTimeout(r, 1000))
  expect(logger.errors).toEqual([])
  expect(follower.getStatus()).toMatchObject({ state: 'ready' })
  expect(follower.getDetails('kill-switch', true)).toMatchObject({ value: false, stale: false })
})
