// An open tab (a live client in Node, as a browser's) served a --snapshot's answer in place of its
// context's older data-dir answer (f200fe9), at a relay restarted in an upstream outage: what it
// shows once the upstream is back with the data dir's value (not the snapshot's).
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FlagServer, FlagServerOptions, Middleware } from '@holdfast/server'
import { liveClient, pollUntil } from '../support/streamingOfrep'
import { startServer, tempDir } from './helpers'
import { startUpstream, type FakeUpstream } from './relay-fakes'

// A restart and a stream's reconnect (2–4 s).
vi.setConfig({ testTimeout: 40_000 })

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const relay = (upstream: FakeUpstream, dataDir: string, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> =>
  startServer({ flags: undefined, upstream: upstream.url, dataDir, upstreamTimeoutMs: 1000, pollIntervalSeconds: 0.2, liveUpdates: { recoveryWindowMs: 0 }, ...options })
const plan = (value: string) => ({ ofrep: () => ({ flags: [{ key: 'plan', value, reason: 'STATIC' }] }) })

describe('a tab served a newer --snapshot in place of its data-dir answer', () => {
  it('shows the upstream\'s value, fresh, within 2.5 s of the upstream coming back with the older value', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const snapshot = join(dir, 'fallback.json')
    const upstream = await startUpstream(plan('old'))
    const first = await relay(upstream, dataDir)
    const port = first.port
    const tab = liveClient(first.url, 'snapshot-notice', cleanup)
    await tab.start()
    expect(tab.getValue<string>('plan', 'none')).toBe('old')
    await pollUntil(() => first.handler.stream!.connections() === 1, 5000, 'the stream')
    upstream.set({ status: 503, text: 'down' })
    await first.close()
    await new Promise((r) => setTimeout(r, 10))
    await writeFile(snapshot, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: Date.now(), version: 'build', definitions: { flags: { plan: { state: 'ENABLED', variants: { s: 'snap' }, defaultVariant: 's' } } } }))
    let asked = 0
    const count: Middleware = (_req, _res, route, next) => {
      if (route.name === 'ofrep.bulk') asked++
      return next()
    }
    const second = await relay(upstream, dataDir, { port, snapshot, middleware: [count] })
    await pollUntil(() => second.handler.stream!.connections() === 1, 15_000, 'the stream again')
    await pollUntil(() => tab.getValue<string>('plan', 'none') === 'snap', 10_000, "the snapshot's value")
    expect(tab.getStatus().state).toBe('stale')
    // The tab asks again by itself on its backoff (1, 2, 4, 8 s… each ±half): after its fourth
    // request its next one is 4 s away at least, so only a notice brings the change sooner.
    await pollUntil(() => asked >= 4, 15_000, "the tab's retries")
    upstream.set(plan('old'))
    const took = await pollUntil(() => tab.getValue<string>('plan', 'none') === 'old', 15_000, "the upstream's value in the tab")
    expect(took).toBeLessThan(2500)
    expect(tab.getStatus().state).toBe('ready')
  })
})
