// --upstream --redis, a relay started in an upstream outage: the answers the store holds (another
// relay's, or its own before a restart) against what the data dir records (a 401 drop, 6ff4d53) and
// against a --snapshot made after them (f200fe9). A real redis-server.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { dropWhileRedisFull, PRO, proxyClear } from './dropFixtures'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, recordingLogger, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

describe('--upstream --redis --data-dir: a context dropped for a 401, restarted in an outage', () => {
  it('is not served the answer the store holds from before the drop (503), until the upstream answers it again', async () => {
    const redis = await redisServer()
    const dataDir = join(await tempDir(), 'data')
    const upstream = await startUpstream(PRO)
    const start = () => relay(redis, upstream, { ...proxyClear(upstream), dataDir })
    const ask = async (server: { url: string }) => {
      const response = await evaluate(server as never, { targetingKey: 'x' })
      return { status: response.status, body: (await response.json()) as any }
    }
    const first = await start()
    await waitFor(async () => (await status(first.server)).redis?.state === 'up', 20_000)
    expect((await ask(first.server)).body.flags).toEqual([{ key: 'plan', value: 'pro', reason: 'STATIC' }])
    // Shared: the store holds the answer.
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).includes('context:'), 5000, 20)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await ask(first.server)).status).toBe(503)
    await first.server.close()

    upstream.set({ status: 503, text: 'down' })
    const restarted = await start()
    await waitFor(async () => (await status(restarted.server)).redis?.state === 'up', 20_000)
    // The failure makes the relay look the context up in the store (a request, then the next one).
    const answers = [await ask(restarted.server)]
    await new Promise((r) => setTimeout(r, 300))
    answers.push(await ask(restarted.server))
    expect(answers.map((a) => a.status), JSON.stringify(answers.map((a) => a.body))).toEqual([503, 503])

    upstream.set(PRO)
    await vi.waitFor(async () => expect((await ask(restarted.server)).status).toBe(200), { timeout: 5000, interval: 100 })
  })
})

describe('--upstream --redis --snapshot: a relay started in an outage', () => {
  it('serves a --snapshot made after the answer the store holds, not the store\'s older answer once it has read it, and its status says so', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'limit', value: 1, reason: 'STATIC' }] }) })
    const proxy = { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined }
    const ask = async (server: { url: string }) => {
      const response = await evaluate(server as never, { targetingKey: 'anonymous' })
      return { status: response.status, body: (await response.json()) as any }
    }
    const a = await relay(redis, upstream, proxy)
    await waitFor(async () => (await status(a.server)).redis?.state === 'up', 20_000)
    expect((await ask(a.server)).body.flags).toEqual([{ key: 'limit', value: 1, reason: 'STATIC' }])
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).includes('context:'), 5000, 20)
    upstream.set({ status: 503, text: 'down' })
    // Built after that answer (a deploy during the outage), dated no later than now.
    await new Promise((r) => setTimeout(r, 10))
    const takenAt = Date.now()
    const snapshot = join(await tempDir(), 'fallback.json')
    await writeFile(snapshot, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: takenAt, version: 'build', definitions: { flags: { limit: { state: 'ENABLED', variants: { v: 7 }, defaultVariant: 'v' } } } }))
    const b = await relay(redis, upstream, { ...proxy, snapshot })
    // The store read: the context is held (taken from it).
    await waitFor(async () => (await status(b.server)).contexts === 1, 10_000)
    for (let i = 0; i < 2; i++) {
      const answer = await ask(b.server)
      expect(answer.body.flags, JSON.stringify(answer.body.metadata)).toEqual([{ key: 'limit', value: 7, reason: 'STATIC', variant: 'v' }])
      expect(answer.body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
    }
    expect(await status(b.server)).toMatchObject({ source: 'snapshot', fetchedAt: takenAt, stale: true })
  })

  it('serves the store\'s answer when another relay got it after the --snapshot was made', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'limit', value: 1, reason: 'STATIC' }] }) })
    const proxy = { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined }
    const snapshot = join(await tempDir(), 'fallback.json')
    await writeFile(snapshot, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: Date.now() - 60_000, version: 'build', definitions: { flags: { limit: { state: 'ENABLED', variants: { v: 7 }, defaultVariant: 'v' } } } }))
    const a = await relay(redis, upstream, proxy)
    await waitFor(async () => (await status(a.server)).redis?.state === 'up', 20_000)
    const fetchedAt = ((await (await evaluate(a.server, { targetingKey: 'anonymous' })).json()) as any).metadata.holdfast.fetchedAt as number
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).includes('context:'), 5000, 20)
    // This relay cannot reach the upstream at all (its own outage): only the store has news.
    const unreachable: typeof fetch = () => Promise.reject(new TypeError('fetch failed'))
    const b = await relay(redis, upstream, { ...proxy, snapshot, fetch: unreachable })
    await waitFor(async () => (await status(b.server)).contexts === 1, 10_000)
    const answer = (await (await evaluate(b.server, { targetingKey: 'anonymous' })).json()) as any
    expect(answer.flags).toEqual([{ key: 'limit', value: 1, reason: 'STATIC' }])
    expect(answer.metadata.holdfast).toEqual({ source: 'upstream', fetchedAt, stale: true })
  })
})

describe('--upstream --redis without --data-dir: a context dropped for a 401', () => {
  it('is served neither by the relay restarted in an outage nor by a new relay of the fleet (503), and the answer got after the drop is', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const start = () => relay(redis, upstream, proxyClear(upstream))
    const ask = async (server: { url: string }) => {
      const response = await evaluate(server as never, { targetingKey: 'x' })
      return { status: response.status, body: (await response.json()) as any }
    }
    // Two requests in an outage, the second after the first's look-up in the store had time to land.
    const twice = async (server: { url: string }) => {
      const first = await ask(server)
      await new Promise((r) => setTimeout(r, 300))
      const answers = [first, await ask(server)]
      return { statuses: answers.map((a) => a.status), bodies: JSON.stringify(answers.map((a) => a.body)) }
    }
    const first = await start()
    await waitFor(async () => (await status(first.server)).redis?.state === 'up', 20_000)
    expect((await ask(first.server)).body.flags).toEqual([{ key: 'plan', value: 'pro', reason: 'STATIC' }])
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).includes('context:'), 5000, 20)
    // A relay of the fleet running all along, holding the answer it took from the store.
    const peer = await start()
    await waitFor(async () => (await status(peer.server)).contexts === 1, 10_000)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await ask(first.server)).status).toBe(503)
    // The drop reached the store (or not at all, on the previous code) before the relay goes.
    await new Promise((r) => setTimeout(r, 300))
    await first.server.close()

    upstream.set({ status: 503, text: 'down' })
    const restarted = await start()
    const fresh = await start()
    for (const server of [restarted, fresh]) await waitFor(async () => (await status(server.server)).redis?.state === 'up', 20_000)
    for (const server of [peer, restarted, fresh]) {
      const { statuses, bodies } = await twice(server.server)
      expect(statuses, bodies).toEqual([503, 503])
    }

    // The upstream accepts the user again: that answer is taken by the fleet, a relay started after it included.
    upstream.set(PRO)
    await vi.waitFor(async () => expect((await ask(restarted.server)).status).toBe(200), { timeout: 5000, interval: 100 })
    upstream.set({ status: 503, text: 'down' })
    const later = await start()
    await waitFor(async () => (await status(later.server)).redis?.state === 'up', 20_000)
    await vi.waitFor(async () => expect((await ask(later.server)).body.flags).toEqual([{ key: 'plan', value: 'pro', reason: 'STATIC' }]), { timeout: 5000, interval: 100 })
    for (const server of [peer, fresh]) await vi.waitFor(async () => expect((await ask(server.server)).status).toBe(200), { timeout: 5000, interval: 100 })
  })

  it('a drop Redis refused (OOM) is written once it takes writes again: a relay started in the outage after that does not serve the answer from before it', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const start = () => relay(redis, upstream, proxyClear(upstream))
    const ask = async (server: { url: string }) => (await evaluate(server as never, { targetingKey: 'x' })).status
    const log = recordingLogger()
    const first = await relay(redis, upstream, { ...proxyClear(upstream), logger: log })
    // Another tenant fills Redis past its limit (every write refused, OOM) when the user is dropped;
    // memory frees: the drop reaches the store.
    await dropWhileRedisFull(redis, upstream, first.server, cleanups, log)
    upstream.set({ status: 503, text: 'down' })
    const fresh = await start()
    await waitFor(async () => (await status(fresh.server)).redis?.state === 'up', 20_000)
    const answers = [await ask(fresh.server)]
    await new Promise((r) => setTimeout(r, 300))
    answers.push(await ask(fresh.server))
    expect(answers).toEqual([503, 503])
  })
})
