// `maxContextBytes` bounds what a relay holds in proxy mode, the request kept to ask each context
// again included (heldBytes). An answer taken from another relay through the shared store comes
// without that request; the first time this relay asks for it and the upstream confirms it (304),
// the request is kept beside it. Its size was then never counted: the confirmed answer carried
// the taken one's byte count along, so a relay behind a load balancer held contexts of any size
// past its bound (64 KiB each, 10,000 of them, against a 64 MiB bound).
import { expect, it } from 'vitest'
import { createMemoryStore, type FlagServer } from '@holdfast/server'
import { evaluate, recordingLogger, startServer, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const status = async (server: FlagServer) => (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { contexts: number; redis?: { taken: number } }

it('counts the request kept beside an answer taken from another relay once the upstream confirms it', async () => {
  const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'banner', value: 'spring', reason: 'STATIC' }, { key: 'greeting', value: `hi ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
  const store = createMemoryStore()
  const options = { flags: undefined, upstream: upstream.url, sharedStore: { store }, maxContextBytes: 200_000, logger: recordingLogger() }
  const first = await startServer(options)
  const second = await startServer(options)
  // Ten users whose contexts are 30 kB each: at most six fit in 200 kB with their requests.
  const context = (i: number) => ({ targetingKey: `user-${i}`, ...Object.fromEntries(Array.from({ length: 8 }, (_, j) => [`a${j}`, 'x'.repeat(3_800)])) })
  for (let i = 0; i < 10; i++) expect((await evaluate(first, context(i))).status).toBe(200)
  await waitFor(async () => (await status(second)).contexts === 10, 5000)
  for (let i = 0; i < 10; i++) expect((await evaluate(second, context(i))).status).toBe(200)
  // The upstream confirmed (304) what the second relay took, for the users it still held.
  expect(upstream.requests.filter((r) => r.headers['if-none-match'] !== undefined).length).toBeGreaterThan(0)
  // Before: 10 (about 300 kB of requests held past a 200 kB bound).
  expect((await status(second)).contexts).toBeLessThanOrEqual(6)
  expect((await status(first)).contexts).toBeLessThanOrEqual(6)
})
