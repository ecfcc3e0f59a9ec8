// Proxy mode across a real restart with --data-dir during an upstream outage: the data dir keeps
// each context's last good answer under a hash (never the context itself, nor a forwarded token),
// so a restarted relay cannot re-ask those contexts until their users ask. What an open tab (a live
// client in Node, as a browser's) sees when the upstream comes back.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FlagServer, FlagServerOptions, Middleware } from '@holdfast/server'
import { liveClient, pollUntil } from '../support/streamingOfrep'
import { startServer, tempDir, waitFor } from './helpers'
import { startUpstream, type FakeUpstream } from './relay-fakes'

// A restart and a stream's reconnect (2–4 s) in each test.
vi.setConfig({ testTimeout: 40_000 })

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const relay = (upstream: FakeUpstream, dir: string, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> =>
  startServer({ flags: undefined, upstream: upstream.url, dataDir: dir, upstreamTimeoutMs: 1000, pollIntervalSeconds: 0.2, adminKey: 'adm', liveUpdates: { recoveryWindowMs: 0 }, ...options })

/**
 * An open tab of user-1 served by a relay that was restarted while the upstream was down: it
 * reconnected its stream, refetched, and was served the data dir's answer, stale. It asks again by
 * itself on its backoff (1, 2, 4, 8 s… each ±half): returned after its fourth request to the
 * restarted relay, so that its next one is 4 s away at least, as after an outage of some seconds
 * (a long outage: up to a minute).
 */
async function tabAcrossRestart(plan: { value: string }) {
  const dir = await tempDir()
  const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: plan.value, reason: 'STATIC' }] }) })
  const first = await relay(upstream, dir)
  const port = first.port
  const tab = liveClient(first.url, 'restart-reask', cleanup)
  await tab.start()
  expect(tab.getValue<string>('plan', 'none')).toBe('old')
  await pollUntil(() => first.handler.stream!.connections() === 1, 5000, 'the stream')
  upstream.set({ status: 503, text: 'down' })
  await first.close()
  let asked = 0
  const count: Middleware = (_req, _res, route, next) => {
    if (route.name === 'ofrep.bulk') asked++
    return next()
  }
  const second = await relay(upstream, dir, { port, middleware: [count] })
  // The tab reconnects, refetches, and is served the last good answer from the data dir, stale.
  await pollUntil(() => second.handler.stream!.connections() === 1, 15_000, 'the stream again')
  await pollUntil(() => tab.getStatus().state === 'stale', 5000, 'the stale answer')
  expect(tab.getStatus().error?.code).toBe('UPSTREAM_STALE')
  expect(tab.getValue<string>('plan', 'none')).toBe('old')
  await pollUntil(() => asked >= 4, 15_000, "the tab's retries")
  return { upstream, second, tab }
}

describe('a relay restarted from its data dir during an upstream outage', () => {
  it('finds a change the upstream made meanwhile once it is back, and tells the open tab', async () => {
    const plan = { value: 'old' }
    const { upstream, tab } = await tabAcrossRestart(plan)
    plan.value = 'new'
    upstream.set({ ofrep: () => ({ flags: [{ key: 'plan', value: plan.value, reason: 'STATIC' }] }) })
    // Before: the tab's requests reached an upstream that was down, so the relay never learnt its
    // context (the data dir keeps a hash): its rounds had nothing to ask, and the tab, its stream
    // open, showed 'old' and stale until its own next retry (4–8 s here, up to a minute).
    const took = await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 15_000, 'the change in the tab')
    expect(took).toBeLessThan(2500)
    expect(tab.getStatus().state).toBe('ready')
  })

  it('tells the open tab its values are fresh again when the upstream comes back unchanged', async () => {
    const plan = { value: 'old' }
    const { upstream, tab } = await tabAcrossRestart(plan)
    upstream.set({ ofrep: () => ({ flags: [{ key: 'plan', value: plan.value, reason: 'STATIC' }] }) })
    // Before: the relay could not ask for the tab's user, and once it could, its round found no
    // change, so no notice: the tab said `stale` (UPSTREAM_STALE) until its own next retry.
    const took = await pollUntil(() => tab.getStatus().state === 'ready', 15_000, 'the fresh answer in the tab')
    expect(took).toBeLessThan(2500)
    expect(tab.getDetails('plan', 'none')).toMatchObject({ value: 'old', stale: false })
  })

  it('a refresh names the contexts held that it cannot ask (read back from the data dir, not asked for since)', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'old', reason: 'STATIC' }] }) })
    const first = await relay(upstream, dir)
    for (const user of ['a', 'b', 'c']) await (await fetch(`${first.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: user } }) })).arrayBuffer()
    await first.close()
    const second = await relay(upstream, dir)
    await waitFor(async () => ((await (await fetch(`${second.url}/holdfast/v1/status`)).json()) as { contexts: number }).contexts === 3, 5000)
    const response = await fetch(`${second.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    // Before: `{ outcome: 'unchanged', contexts: 0, asked: 0 }`, as if nothing were held.
    expect(await response.json()).toMatchObject({ outcome: 'unchanged', contexts: 0, asked: 0, unknown: 3 })
  })
})
