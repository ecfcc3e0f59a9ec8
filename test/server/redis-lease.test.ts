// The lease and the replica on a real redis-server: one leader at a time, hand-over on release and
// on expiry, everyone `solo` while Redis is gone, and documents flowing between relays by notice.
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createLeaseKeeper,
  createRedisStore,
  createSharedDefinitions,
  createStoreReplica,
  type LeaseKeeper,
  type SharedStore,
  type StoredDocument,
  type UpstreamReport,
} from '@holdfast/server'
import { startRedisServer, type RedisServer } from '../support/redisServer'
import { timed, waitFor } from './helpers'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function redis(): Promise<RedisServer> {
  const server = await startRedisServer()
  cleanups.push(() => server.stop())
  return server
}

function store(server: RedisServer, namespace = 'fleet'): SharedStore {
  const s = createRedisStore({ url: server.url, namespace, commandTimeoutMs: 300, reconnectMaxMs: 200 })
  s.open()
  cleanups.push(() => s.close())
  return s
}

function keeper(s: SharedStore, ttlMs: number): LeaseKeeper {
  const k = createLeaseKeeper({ store: s, ttlMs })
  k.start()
  cleanups.push(() => k.stop())
  return k
}

describe('the lease keeper', () => {
  it('makes exactly one of several relays the leader, and keeps it so', async () => {
    const server = await redis()
    const keepers = [0, 1, 2].map(() => keeper(store(server), 900))
    await waitFor(() => keepers.filter((k) => k.role() === 'leader').length === 1 && keepers.every((k) => k.role() !== 'solo'), 15_000)
    const leader = keepers.find((k) => k.role() === 'leader')!
    // Several renewals later, still one leader, and the same one.
    const until = Date.now() + 2000
    while (Date.now() < until) {
      expect(keepers.filter((k) => k.role() === 'leader')).toEqual([leader])
      await new Promise((r) => setTimeout(r, 20))
    }
  })

  it('hands over at once when the leader stops, and within one TTL when it just dies', async () => {
    const server = await redis()
    const ttl = 1500
    const stores = [store(server), store(server), store(server)]
    const [a, b, c] = stores.map((s) => keeper(s, ttl))
    await waitFor(() => [a, b, c].filter((k) => k.role() === 'leader').length === 1 && [a, b, c].every((k) => k.role() !== 'solo'), 15_000)
    const first = [a, b, c].find((k) => k.role() === 'leader')!

    // A graceful stop releases the lease: a follower takes it on the notice, well before the TTL.
    // Bounds on time this process ran or waited, not on time a loaded machine froze it (timed).
    const handedOver = await timed(async () => {
      await first.stop()
      await waitFor(() => [a, b, c].some((k) => k !== first && k.role() === 'leader'), 15_000)
    })
    expect(handedOver.ms).toBeLessThan(ttl)
    const second = [a, b, c].find((k) => k !== first && k.role() === 'leader')!
    const third = [a, b, c].find((k) => k !== first && k !== second)!

    // Now the leader dies without a word: its connection is cut and the lease is never renewed
    // again (nor released). The last relay takes over when the lease runs out.
    const takenOver = await timed(async () => {
      await stores[[a, b, c].indexOf(second)].close()
      await waitFor(() => third.role() === 'leader', 15_000)
    })
    expect(takenOver.ms).toBeLessThan(ttl + 1000)
    // The cut-off relay stepped down on its own (it can no longer prove it holds the lease).
    await waitFor(() => second.role() !== 'leader', 15_000)
  })

  it('with Redis gone every relay is solo, with no leader left; once it is back there is one leader again', async () => {
    const server = await redis()
    const ttl = 1200
    const keepers = [keeper(store(server), ttl), keeper(store(server), ttl)]
    await waitFor(() => keepers.some((k) => k.role() === 'leader') && keepers.some((k) => k.role() === 'follower'), 15_000)
    await server.stop({ kill9: true })
    await waitFor(() => keepers.every((k) => k.role() === 'solo'), 15_000)
    await server.start()
    await waitFor(() => keepers.filter((k) => k.role() === 'leader').length === 1 && keepers.some((k) => k.role() === 'follower'), 20_000)
  })

  it('a relay that never reached Redis is solo', async () => {
    const s = createRedisStore({ url: 'redis://127.0.0.1:1', namespace: 'x', commandTimeoutMs: 100, reconnectMaxMs: 100 })
    cleanups.push(() => s.close())
    const k = keeper(s, 1000)
    await waitFor(() => k.role() === 'solo', 10_000)
  })
})

describe('the replica', () => {
  function replica(s: SharedStore, accepted: Array<[string, StoredDocument]>, refuse?: (doc: StoredDocument) => boolean) {
    const r = createStoreReplica({
      store: s,
      accept: (key, doc) => {
        if (refuse?.(doc)) return false
        accepted.push([key, doc])
        return true
      },
    })
    cleanups.push(() => r.stop())
    return r
  }

  it('carries a published document to the other relays within 2 s, once per change', async () => {
    const server = await redis()
    const writer = replica(store(server), [])
    const seenB: Array<[string, StoredDocument]> = []
    const reader = replica(store(server), seenB)
    await Promise.all([writer.start(), reader.start()])

    const carried = await timed(async () => {
      expect(await waitForPublish(writer, 'definitions', { body: '{"v":1}', fetchedAt: 1 })).toBe('written')
      await waitFor(() => seenB.length === 1, 10_000)
    })
    expect(carried.ms).toBeLessThan(2000)
    expect(seenB[0][1]).toMatchObject({ body: '{"v":1}', version: writer.version('definitions') })

    // An unchanged poll renews the TTL and tells nobody anything.
    expect(await writer.publish('definitions', { body: '{"v":1}', fetchedAt: 2 })).toBe('refreshed')
    expect(await writer.publish('definitions', { body: '{"v":2}', fetchedAt: 3 })).toBe('written')
    await waitFor(() => seenB.length === 2, 2000)
    expect(seenB.map(([, d]) => d.body)).toEqual(['{"v":1}', '{"v":2}'])
    expect(reader.taken()).toBe(2)
  })

  it('a relay that starts later reads what the store holds; an older version arriving late is ignored', async () => {
    const server = await redis()
    const s = store(server)
    const writer = replica(s, [])
    await writer.start()
    await waitForPublish(writer, 'definitions', { body: '{"v":"new"}', fetchedAt: 1 })
    const seen: Array<[string, StoredDocument]> = []
    const late = replica(store(server), seen)
    await late.start()
    await waitFor(() => seen.length > 0, 15_000)
    expect(seen.map(([, d]) => d.body)).toEqual(['{"v":"new"}'])
    // A cut-off relay's write from before: refused by the store, and never offered to anyone.
    const old = await s.put('definitions', { version: 1, fetchedAt: 0, body: '{"v":"old"}' })
    expect(old).toEqual({ ok: true, value: { outcome: 'older', current: writer.version('definitions') } })
    await new Promise((r) => setTimeout(r, 300))
    expect(seen.map(([, d]) => d.body)).toEqual(['{"v":"new"}'])
  })

  it('a flushed Redis is repopulated by the next publish, and the others do not re-apply what they hold', async () => {
    const server = await redis()
    const writer = replica(store(server), [])
    const seen: Array<[string, StoredDocument]> = []
    const reader = replica(store(server), seen)
    await Promise.all([writer.start(), reader.start()])
    await waitForPublish(writer, 'definitions', { body: '{"v":1}', fetchedAt: 1 })
    await waitFor(() => seen.length === 1, 5000)
    await server.command('FLUSHALL')
    expect(await writer.publish('definitions', { body: '{"v":1}', fetchedAt: 2 })).toBe('written')
    expect(await createRedisStoreGet(server, 'definitions')).toContain('{"v":1}')
    await new Promise((r) => setTimeout(r, 300))
    expect(seen.length).toBe(1)
  })

  it('a lost notice is made up for by the periodic version check', async () => {
    const server = await redis()
    const seen: Array<[string, StoredDocument]> = []
    const reader = createStoreReplica({ store: store(server), accept: (key, doc) => (seen.push([key, doc]), true), checkEveryMs: 200 })
    cleanups.push(() => reader.stop())
    await reader.start()
    // Written behind the relays' backs, with no notice published.
    await server.command('HSET', 'holdfast:fleet:doc:definitions', 'version', '42', 'fetchedAt', '1', 'body', '{"silent":true}')
    await waitFor(() => seen.length === 1, 10_000)
    expect(seen[0][1]).toMatchObject({ version: 42, body: '{"silent":true}' })
  })

  it('a document the relay refuses is not counted as seen', async () => {
    const server = await redis()
    const writer = replica(store(server), [])
    const seen: Array<[string, StoredDocument]> = []
    let refusing = true
    const reader = replica(store(server), seen, () => refusing)
    await Promise.all([writer.start(), reader.start()])
    await waitForPublish(writer, 'definitions', { body: '{"v":"bad"}', fetchedAt: 1 })
    await new Promise((r) => setTimeout(r, 300))
    expect(seen).toEqual([])
    expect(reader.version('definitions')).toBeUndefined()
    refusing = false
    await writer.publish('definitions', { body: '{"v":"good"}', fetchedAt: 2 })
    await waitFor(() => seen.length === 1, 5000)
    expect(seen[0][1].body).toBe('{"v":"good"}')
  })
})

// The store connects in the background; the first publish may find it still connecting.
async function waitForPublish(r: ReturnType<typeof createStoreReplica>, key: string, doc: { body: string; fetchedAt: number }) {
  let outcome = await r.publish(key, doc)
  const until = Date.now() + 15_000
  while (outcome === 'unavailable' && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 50))
    outcome = await r.publish(key, doc)
  }
  return outcome
}

async function createRedisStoreGet(server: RedisServer, key: string): Promise<string> {
  return server.command('HGET', `holdfast:fleet:doc:${key}`, 'body')
}

describe('shared definitions', () => {
  it('one relay polls; the other takes what it publishes and the leader’s upstream report; on stop the other leads', async () => {
    const server = await redis()
    const made = [0, 1].map(() => {
      const taken: StoredDocument[] = []
      const reports: UpstreamReport[] = []
      const roles: string[] = []
      const shared = createSharedDefinitions({
        store: createRedisStore({ url: server.url, namespace: 'defs', commandTimeoutMs: 300, reconnectMaxMs: 200 }),
        leaseTtlMs: 1500,
        take: (doc) => (taken.push(doc), true),
        report: (r) => void reports.push(r),
        onRole: (r) => void roles.push(r),
      })
      cleanups.push(() => shared.stop())
      return { shared, taken, reports, roles }
    })
    await Promise.all(made.map((m) => m.shared.start()))
    await waitFor(() => made.filter((m) => m.shared.shouldPoll()).length === 1 && made.some((m) => m.shared.role() === 'follower'), 15_000)
    const leader = made.find((m) => m.shared.role() === 'leader')!
    const follower = made.find((m) => m !== leader)!

    leader.shared.polled({ ok: true, text: '{"flags":{"a":1}}', fetchedAt: 10, etag: '"e1"' }, { state: 'ok', lastSuccessAt: 10, lastAttemptAt: 10 })
    await waitFor(() => follower.taken.length === 1 && follower.reports.length === 1, 2000)
    expect(follower.taken[0]).toMatchObject({ body: '{"flags":{"a":1}}', fetchedAt: 10, etag: '"e1"' })
    expect(follower.reports[0]).toEqual({ state: 'ok', lastSuccessAt: 10, lastAttemptAt: 10 })
    expect(follower.shared.status()).toMatchObject({ kind: 'redis', state: 'up', role: 'follower', taken: 1, version: leader.shared.status().version })

    // A failing upstream: nothing new to take, but followers learn that the leader's polls fail.
    const failing = { state: 'failing' as const, lastSuccessAt: 10, lastAttemptAt: 20, lastError: { kind: 'http', message: 'HTTP 503' } }
    leader.shared.polled({ ok: false }, failing)
    await waitFor(() => follower.reports.length === 2, 2000)
    expect(follower.reports[1]).toEqual(failing)
    expect(follower.taken).toHaveLength(1)
    // A follower's polls are not published (it should not have polled).
    follower.shared.polled({ ok: true, text: '{"flags":{"b":1}}', fetchedAt: 30 }, { state: 'ok' })
    await new Promise((r) => setTimeout(r, 300))
    expect(leader.taken).toHaveLength(0)

    await leader.shared.stop()
    await waitFor(() => follower.shared.role() === 'leader', 5000)
    expect(follower.roles.at(-1)).toBe('leader')
  })
})
