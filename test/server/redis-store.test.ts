// The shared store on a real redis-server (started per test on a free port): versioned writes,
// TTL renewal, notices, namespaces, the lease, and what every call does while Redis is down or stuck.
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryStore, createRedisStore, storeNamespace, type SharedStore, type StoreNotice } from '@holdfast/server'
import { startRedisServer, type RedisServer } from '../support/redisServer'
import { startTcpProxy } from '../support/tcpProxy'
import { Registry } from 'prom-client'
// The metrics are registered by the relay's option wiring (internal to the server package).
import { registerStoreMetrics } from '../../packages/server/src/store/storeMetrics'
import { waitFor } from './helpers'

// Real processes on a shared, loaded machine: generous limits; every wait polls for its condition.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function redis(): Promise<RedisServer> {
  const server = await startRedisServer()
  cleanups.push(() => server.stop())
  return server
}

function store(server: RedisServer, namespace = 'ns-test', extra: Partial<Parameters<typeof createRedisStore>[0]> = {}): SharedStore {
  const s = createRedisStore({ url: server.url, namespace, commandTimeoutMs: 1000, reconnectMaxMs: 200, ...extra })
  s.open()
  cleanups.push(() => s.close())
  return s
}

function notices(s: SharedStore): StoreNotice[] {
  const seen: StoreNotice[] = []
  s.subscribe((n) => seen.push(n))
  return seen
}

const doc = (version: number, body = `{"v":${version}}`) => ({ version, fetchedAt: 1_700_000_000_000, body })

async function connected(s: SharedStore) {
  await waitFor(() => s.status().state === 'up', 15_000)
}

describe('versioned documents', () => {
  it('an older version never overwrites a newer one; the same version only renews the TTL', async () => {
    const server = await redis()
    const s = store(server, 'ns', { backupTtlMs: 60_000 })
    await connected(s)
    expect(await s.put('definitions', doc(20))).toEqual({ ok: true, value: { outcome: 'written' } })
    expect(await s.put('definitions', doc(10, '{"old":true}'))).toEqual({ ok: true, value: { outcome: 'older', current: 20 } })
    expect(await s.get('definitions')).toEqual({ ok: true, value: doc(20) })

    // A quiet upstream re-publishes the same version: the backup must not expire after a quiet day.
    await server.command('PEXPIRE', 'holdfast:ns:doc:definitions', '1000')
    expect(await s.put('definitions', doc(20))).toEqual({ ok: true, value: { outcome: 'refreshed' } })
    const pttl = Number((await server.command('PTTL', 'holdfast:ns:doc:definitions')).slice(1))
    expect(pttl).toBeGreaterThan(50_000)

    expect(await s.put('definitions', doc(30, '{"new":true}'))).toEqual({ ok: true, value: { outcome: 'written' } })
    expect((await s.get('definitions')).ok && (await s.get('definitions'))).toMatchObject({ value: { version: 30, body: '{"new":true}' } })
  })

  it('keeps the newest of any interleaving of writers (property, same as the memory store)', async () => {
    const server = await redis()
    const redisStore = store(server, 'prop')
    await connected(redisStore)
    let round = 0
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 20 }), async (versions) => {
        const key = `k${round++}`
        const memory = createMemoryStore()
        // Writers race: every put is in flight at once.
        await Promise.all(versions.map((v) => Promise.all([redisStore.put(key, doc(v)), memory.put(key, doc(v))])))
        const newest = Math.max(...versions)
        const [fromRedis, fromMemory] = await Promise.all([redisStore.get(key), memory.get(key)])
        expect(fromRedis).toEqual({ ok: true, value: doc(newest) })
        expect(fromMemory).toEqual({ ok: true, value: doc(newest) })
      }),
      { numRuns: 40 },
    )
  })

  it('tickets only grow, even across a FLUSHALL', async () => {
    const server = await redis()
    const s = store(server)
    await connected(s)
    const tickets: number[] = []
    for (let i = 0; i < 20; i++) {
      const t = await s.ticket()
      if (!t.ok) throw new Error(t.error)
      tickets.push(t.value)
    }
    await server.command('FLUSHALL')
    const after = await s.ticket()
    expect(after.ok && after.value).toBeGreaterThan(tickets.at(-1)!)
    expect([...tickets].sort((a, b) => a - b)).toEqual(tickets)
    expect(new Set(tickets).size).toBe(tickets.length)
  })

  it('a Redis that forgot the scripts (restart, SCRIPT FLUSH) is no failure: they are sent again', async () => {
    const server = await redis()
    const s = store(server, 'scripts')
    await connected(s)
    await s.put('definitions', doc(1))
    expect(await server.command('SCRIPT', 'FLUSH')).toBe('+OK\r\n')
    expect(await s.put('definitions', doc(2))).toEqual({ ok: true, value: { outcome: 'written' } })
    expect(await s.acquireLease('A', 1000)).toEqual({ ok: true, value: { held: true } })
    expect(s.status()).toMatchObject({ state: 'up', failures: 0 })
    expect(s.status().lastError).toBeUndefined()
  })

  it('reads a key that something else wrote as nothing stored', async () => {
    const server = await redis()
    const s = store(server, 'odd')
    await connected(s)
    await server.command('HSET', 'holdfast:odd:doc:definitions', 'version', 'banana')
    expect(await s.get('definitions')).toEqual({ ok: true, value: undefined })
  })
})

describe('notices and namespaces', () => {
  it('tells every relay of the namespace about a write, and no relay of another', async () => {
    const server = await redis()
    const a = store(server, storeNamespace('flags-url http://one', { authorization: 'Bearer 1' }))
    const b = store(server, storeNamespace('flags-url http://one', { Authorization: 'Bearer 1' }))
    const other = store(server, storeNamespace('flags-url http://one', { authorization: 'Bearer 2' }))
    const seenB = notices(b)
    const seenOther = notices(other)
    await Promise.all([a, b, other].map(connected))
    await waitFor(() => seenB.some((n) => n.type === 'connected') && seenOther.some((n) => n.type === 'connected'), 15_000)
    await a.put('definitions', doc(5))
    await waitFor(() => seenB.some((n) => n.type === 'changed'), 5000)
    expect(seenB.filter((n) => n.type === 'changed')).toEqual([{ type: 'changed', key: 'definitions', version: 5 }])
    expect(await b.get('definitions')).toEqual({ ok: true, value: doc(5) })
    expect(await other.get('definitions')).toEqual({ ok: true, value: undefined })
    expect(seenOther.filter((n) => n.type === 'changed')).toEqual([])
  })

  it('ignores junk published on the channel', async () => {
    const server = await redis()
    const s = store(server, 'junk')
    const seen = notices(s)
    await waitFor(() => seen.some((n) => n.type === 'connected'), 15_000)
    for (const junk of ['not json', '{"type":"changed","key":1}', '{"type":"changed","key":"k","version":"NaN"}', 'null', '[]'])
      await server.command('PUBLISH', 'holdfast:junk:notices', junk)
    await s.put('k', doc(1))
    await waitFor(() => seen.some((n) => n.type === 'changed'), 5000)
    expect(seen.filter((n) => n.type !== 'connected')).toEqual([{ type: 'changed', key: 'k', version: 1 }])
  })

  it('lists the keys of its namespace only', async () => {
    const server = await redis()
    const a = store(server, 'list-a')
    const b = store(server, 'list-b')
    await Promise.all([a, b].map(connected))
    for (let i = 0; i < 30; i++) await a.put(`context:${i}`, doc(1))
    await a.put('definitions', doc(1))
    await b.put('context:x', doc(1))
    const listed = await a.keys('context:', 1000)
    expect(listed.ok && listed.value.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `context:${i}`).sort())
    const limited = await a.keys('context:', 7)
    expect(limited.ok && limited.value.length).toBe(7)
  })
})

describe('flags raised for a while (streams open somewhere in the fleet)', () => {
  it('a flag one relay raises is seen by the relays of its namespace until its TTL runs out, by no other namespace, and is no document', async () => {
    const server = await redis()
    const a = store(server, 'flag-a')
    const b = store(server, 'flag-a')
    const other = store(server, 'flag-b')
    await Promise.all([a, b, other].map(connected))
    expect(await b.raised!('streams-open')).toEqual({ ok: true, value: false })
    expect((await a.raise!('streams-open', 400)).ok).toBe(true)
    expect(await b.raised!('streams-open')).toEqual({ ok: true, value: true })
    expect(await other.raised!('streams-open')).toEqual({ ok: true, value: false })
    expect(await b.keys('', 100)).toEqual({ ok: true, value: [] })
    await waitFor(async () => {
      const raised = await b.raised!('streams-open')
      return raised.ok && !raised.value
    }, 5000)
    // The memory store (relays sharing one process) says the same, on its injected clock.
    let now = 1000
    const memory = createMemoryStore({ now: () => now })
    await memory.raise!('streams-open', 400)
    expect(await memory.raised!('streams-open')).toEqual({ ok: true, value: true })
    now += 400
    expect(await memory.raised!('streams-open')).toEqual({ ok: true, value: false })
  })

  it('lowering a flag answers whether it was raised: of two relays lowering it, one hears true; an expired one, none', async () => {
    const server = await redis()
    const a = store(server, 'flag-lower')
    const b = store(server, 'flag-lower')
    await Promise.all([a, b].map(connected))
    await a.raise!('accept-shrink:x', 60_000)
    const both = await Promise.all([a.lower!('accept-shrink:x'), b.lower!('accept-shrink:x')])
    expect(both.map((r) => r.ok && r.value).sort()).toEqual([false, true])
    expect(await a.raised!('accept-shrink:x')).toEqual({ ok: true, value: false })
    let now = 1000
    const memory = createMemoryStore({ now: () => now })
    await memory.raise!('accept-shrink:x', 400)
    expect(await memory.lower!('accept-shrink:x')).toEqual({ ok: true, value: true })
    expect(await memory.lower!('accept-shrink:x')).toEqual({ ok: true, value: false })
    await memory.raise!('accept-shrink:x', 400)
    now += 400
    expect(await memory.lower!('accept-shrink:x')).toEqual({ ok: true, value: false })
  })

  it('a Redis that is down says "not raised" as a failure, never throws', async () => {
    const server = await redis()
    const s = store(server, 'flag-down', { commandTimeoutMs: 300 })
    await connected(s)
    await server.stop({ kill9: true })
    expect((await s.raise!('streams-open', 1000)).ok).toBe(false)
    expect((await s.raised!('streams-open')).ok).toBe(false)
  })
})

describe('the lease', () => {
  it('belongs to one owner at a time; only the owner renews or releases it; a release is announced', async () => {
    const server = await redis()
    const a = store(server, 'lease')
    const b = store(server, 'lease')
    const seenB = notices(b)
    await Promise.all([a, b].map(connected))
    await waitFor(() => seenB.some((n) => n.type === 'connected'), 15_000)
    expect(await a.acquireLease('A', 10_000)).toEqual({ ok: true, value: { held: true } })
    const contested = await b.acquireLease('B', 10_000)
    expect(contested.ok && !contested.value.held && contested.value.retryInMs).toBeGreaterThan(5000)
    expect(await b.renewLease('B', 10_000)).toEqual({ ok: true, value: false })
    expect(await b.releaseLease('B')).toEqual({ ok: true, value: false })
    expect(await a.renewLease('A', 10_000)).toEqual({ ok: true, value: true })
    expect(await a.releaseLease('A')).toEqual({ ok: true, value: true })
    await waitFor(() => seenB.some((n) => n.type === 'released'), 5000)
    expect(await b.acquireLease('B', 10_000)).toEqual({ ok: true, value: { held: true } })
  })

  it('is free again once its TTL runs out', async () => {
    const server = await redis()
    const s = store(server, 'ttl')
    await connected(s)
    expect(await s.acquireLease('A', 300)).toEqual({ ok: true, value: { held: true } })
    await waitFor(async () => {
      const r = await s.acquireLease('B', 300)
      return r.ok && r.value.held
    }, 5000)
    expect(await s.renewLease('A', 300)).toEqual({ ok: true, value: false })
  })
})

describe('Redis down or stuck', () => {
  it('every call answers a failure within its timeout, the status says down, and all is well once Redis is back', async () => {
    const server = await redis()
    const s = store(server, 'down', { commandTimeoutMs: 300 })
    const seen = notices(s)
    await connected(s)
    await s.put('definitions', doc(1))
    await server.stop({ kill9: true })

    const started = Date.now()
    const results = await Promise.all([s.get('definitions'), s.put('definitions', doc(2)), s.ticket(), s.acquireLease('A', 1000), s.keys('', 10)])
    expect(Date.now() - started).toBeLessThan(5000)
    for (const r of results) expect(r.ok).toBe(false)
    await waitFor(() => s.status().state === 'down', 5000)
    expect(s.status()).toMatchObject({ kind: 'redis', state: 'down', lastError: expect.any(String) })

    const before = seen.filter((n) => n.type === 'connected').length
    await server.start() // empty: it keeps nothing on disk
    await waitFor(() => s.status().state === 'up' || false, 20_000).catch(() => undefined)
    await waitFor(async () => (await s.get('definitions')).ok, 20_000)
    await waitFor(() => seen.filter((n) => n.type === 'connected').length > before, 20_000)
    expect(await s.get('definitions')).toEqual({ ok: true, value: undefined })
    // Notices flow again on the re-established subscription.
    const other = store(server, 'down')
    await connected(other)
    await other.put('definitions', doc(7))
    await waitFor(() => seen.some((n) => n.type === 'changed' && n.version === 7), 5000)
  })

  it('a Redis that accepts connections but never answers (SIGSTOP) costs each call its timeout, no more', async () => {
    const server = await redis()
    const s = store(server, 'stuck', { commandTimeoutMs: 200 })
    await connected(s)
    server.pause()
    try {
      const started = Date.now()
      const results = await Promise.all(Array.from({ length: 50 }, () => s.get('definitions')))
      expect(Date.now() - started).toBeLessThan(3000)
      expect(results.every((r) => !r.ok)).toBe(true)
      expect(s.status().state).toBe('down')
    } finally {
      server.resume()
    }
    // No command from here on: the store's own heartbeat finds Redis answering again.
    await waitFor(() => s.status().state === 'up', 10_000)
    expect((await s.get('definitions')).ok).toBe(true)
  })

  it('a command connection gone half-open while nothing is asked is found by the heartbeat, also after the wall clock was set back an hour', async () => {
    const server = await redis()
    const proxy = await startTcpProxy(server.port)
    cleanups.push(() => proxy.close())
    const s = store({ ...server, url: proxy.url }, 'half-open', { commandTimeoutMs: 200, heartbeatMs: 100 })
    const seen = notices(s)
    await connected(s)
    await waitFor(() => seen.some((n) => n.type === 'connected'), 10_000)
    const failures = s.status().failures
    const wall = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => wall() - 3_600_000)
    try {
      proxy.silenceCommands()
      // Before, the last answer looked an hour ahead, so no PING went out for the hour: the status
      // said up (holdfast_store_up 1) however long Redis stopped answering the relay. Now the PING
      // goes unanswered (a failure) and the silent connection is replaced by a fresh one (the proxy
      // silences only the one open now), which says `connected` again: whoever listens re-reads.
      await waitFor(() => seen.filter((n) => n.type === 'connected').length === 2, 10_000)
      expect(s.status().failures).toBeGreaterThan(failures)
      expect(s.status().lastError).toBe('no answer from redis within 200 ms')
    } finally {
      vi.restoreAllMocks()
    }
    await connected(s)
    expect((await s.get('definitions')).ok).toBe(true)
  })

  it("the age of Redis's last answer grows while it does not answer, also after the wall clock was set back an hour", async () => {
    const server = await redis()
    const s = store(server, 'age', { commandTimeoutMs: 200, heartbeatMs: 100 })
    await connected(s)
    const registry = new Registry()
    let clock = Date.now()
    registerStoreMetrics(registry, { status: () => ({ ...s.status(), taken: 0 }), now: () => clock })
    const age = async () => (await registry.getSingleMetric('holdfast_redis_last_ok_age_seconds')!.get()).values[0]?.value
    server.pause()
    try {
      await waitFor(() => s.status().state === 'down', 5000)
      clock -= 3_600_000
      await new Promise((resolve) => setTimeout(resolve, 1500))
      // Before, Redis's last answer looked an hour ahead: 0 s ago, for the hour it did not answer
      // (an alert on holdfast_redis_last_ok_age_seconds never fired).
      expect(await age()).toBeGreaterThanOrEqual(1.5)
    } finally {
      server.resume()
    }
    await waitFor(() => s.status().state === 'up', 10_000)
    expect(await age()).toBeLessThan(1)
  })

  it('an event loop stalled past the command timeout (a long GC, a big parse) is not Redis failing: the answer that came meanwhile counts, the status stays up, the subscription is kept', async () => {
    const server = await redis()
    const s = store(server, 'stall', { commandTimeoutMs: 200, heartbeatMs: 20 })
    const seen = notices(s)
    await connected(s)
    await waitFor(() => seen.some((n) => n.type === 'connected'), 10_000)
    const busy = (ms: number) => {
      const until = performance.now() + ms
      while (performance.now() < until);
    }
    const failures = s.status().failures
    for (let i = 0; i < 15; i++) {
      // The command is on the wire (and, now and then, a heartbeat PING on each connection: every
      // 20 ms), then the loop stalls for twice the timeout: Redis answers long before it ends.
      await new Promise((resolve) => setTimeout(resolve, 5 + (i % 5) * 7))
      const pending = s.peek('definitions')
      await new Promise((resolve) => setImmediate(resolve))
      busy(400)
      expect((await pending).ok).toBe(true)
    }
    expect(s.status()).toMatchObject({ state: 'up', failures })
    expect(seen.filter((n) => n.type === 'connected')).toHaveLength(1)
  })

  it('a store that was never reachable answers failures and never throws', async () => {
    const s = createRedisStore({ url: 'redis://127.0.0.1:1', namespace: 'none', commandTimeoutMs: 100, reconnectMaxMs: 100 })
    s.open()
    cleanups.push(() => s.close())
    expect((await s.get('definitions')).ok).toBe(false)
    await waitFor(() => s.status().state === 'down', 5000)
    await s.close()
    expect(await s.ticket()).toEqual({ ok: false, error: 'store closed' })
  })
})

// A failover behind one name (a DNS record, a Kubernetes Service, a cloud primary endpoint): the
// old primary becomes a replica of the new one and keeps the connections made to it. Every write
// on them is refused READONLY, and node-redis never connects again by itself: before, a relay wrote
// nothing more (no lease, no shared answer, `down`) until it was restarted.
describe('a failover that leaves the connection on the old primary (now a replica)', () => {
  it('the relay connects again after READONLY, through the name, to the new primary, and writes there', async () => {
    const [oldPrimary, newPrimary] = [await redis(), await redis()]
    const proxy = await startTcpProxy(oldPrimary.port)
    cleanups.push(() => proxy.close())
    const s = store(oldPrimary, 'failover', { url: proxy.url, commandTimeoutMs: 300 })
    await connected(s)
    expect((await s.put('definitions', doc(1))).ok).toBe(true)
    // The failover: the name now leads to the new primary; the old one follows it.
    proxy.retarget(newPrimary.port)
    // Loaded from disk, the replica's sync would leave a dump.rdb in the cwd, which the next
    // redis-server started there loads.
    expect(await oldPrimary.command('CONFIG', 'SET', 'repl-diskless-load', 'swapdb')).toBe('+OK\r\n')
    await oldPrimary.command('REPLICAOF', '127.0.0.1', String(newPrimary.port))
    // The relay keeps writing (a leader's next poll); before, none of it ever reached the new primary.
    expect(await s.put('definitions', doc(2))).toMatchObject({ ok: false, error: expect.stringMatching(/^READONLY/) })
    await waitFor(async () => (await s.put('definitions', doc(3))).ok, 10_000)
    expect(await newPrimary.command('KEYS', '*failover*definitions*')).not.toBe('*0\r\n')
    await waitFor(() => s.status().state === 'up', 5000)
  })
})
