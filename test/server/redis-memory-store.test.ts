// The in-process store has the Redis store's semantics (versions, TTL, lease, notices), driven by
// an injected clock so expiry needs no waiting; relays in one process can share it (`sharedStore`).
import { describe, expect, it, vi } from 'vitest'
import { createFlagServer, createMemoryStore, createSharedContexts, type FlagServerOptions, type SharedStore, type StoreNotice } from '@holdfast/server'
import { recordingLogger, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

const doc = (version: number) => ({ version, fetchedAt: 0, body: `{"v":${version}}` })

describe('memory store', () => {
  it('versions, TTL renewal on the same version, and expiry', async () => {
    let now = 1_000_000
    const s = createMemoryStore({ now: () => now, backupTtlMs: 1000 })
    expect(await s.put('k', doc(5))).toEqual({ ok: true, value: { outcome: 'written' } })
    expect(await s.put('k', doc(4))).toEqual({ ok: true, value: { outcome: 'older', current: 5 } })
    expect(await s.peek('k')).toEqual({ ok: true, value: 5 })
    expect(await s.peek('nothing')).toEqual({ ok: true, value: undefined })
    now += 900
    expect(await s.put('k', doc(5))).toEqual({ ok: true, value: { outcome: 'refreshed' } })
    now += 900
    expect(await s.get('k')).toEqual({ ok: true, value: doc(5) })
    now += 200
    expect(await s.get('k')).toEqual({ ok: true, value: undefined })
    // Gone (flushed, expired): the same version is written back.
    expect(await s.put('k', doc(5))).toEqual({ ok: true, value: { outcome: 'written' } })
  })

  it('the lease: one owner, free once its TTL ran out, release announced', async () => {
    let now = 0
    const s = createMemoryStore({ now: () => now })
    const seen: StoreNotice[] = []
    s.subscribe((n) => seen.push(n))
    expect(await s.acquireLease('A', 1000)).toEqual({ ok: true, value: { held: true } })
    expect(await s.acquireLease('B', 1000)).toEqual({ ok: true, value: { held: false, retryInMs: 1000 } })
    now += 999
    expect(await s.renewLease('B', 1000)).toEqual({ ok: true, value: false })
    expect(await s.renewLease('A', 1000)).toEqual({ ok: true, value: true })
    now += 1000
    expect(await s.acquireLease('B', 1000)).toEqual({ ok: true, value: { held: true } })
    expect(await s.releaseLease('A')).toEqual({ ok: true, value: false })
    expect(await s.releaseLease('B')).toEqual({ ok: true, value: true })
    await Promise.resolve()
    expect(seen).toEqual([{ type: 'released' }])
  })

  it('tickets grow even when the clock goes back; a closed store answers failures', async () => {
    let now = 5000
    const s = createMemoryStore({ now: () => now })
    const a = await s.ticket()
    now -= 4000
    const b = await s.ticket()
    expect(a.ok && b.ok && b.value > a.value).toBe(true)
    await s.close()
    expect((await s.get('k')).ok).toBe(false)
    expect((await s.put('k', doc(1))).ok).toBe(false)
  })
})

describe('relays in one process sharing a memory store', () => {
  it('one polls, the other takes its versions; closing one leaves the store to the other', async () => {
    const upstream = await startUpstream({ document: booleanFlags(2, 'off') })
    const shared = createMemoryStore()
    const counts = [0, 0]
    const relays = await Promise.all(
      [0, 1].map((i) =>
        createFlagServer({
          flagsUrl: `${upstream.url}/flags.json`,
          pollIntervalSeconds: 0.1,
          sharedStore: { store: shared, leaseTtlMs: 1000 },
          port: 0,
          logger: recordingLogger(),
          maxEventLoopDelayMs: 0,
          fetch: ((input: RequestInfo | URL, init?: RequestInit) => (counts[i]++, fetch(input, init))) as typeof fetch,
        } as FlagServerOptions),
      ),
    )
    try {
      const status = async (i: number) => (await (await fetch(`${relays[i].url}/holdfast/v1/status`)).json()) as any
      const f0 = async (i: number) =>
        ((await (await fetch(`${relays[i].url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u"}}' })).json()) as any).flags[0].value
      await waitFor(async () => [(await status(0)).redis?.role, (await status(1)).redis?.role].sort().join() === 'follower,leader', 10_000)
      const leader = (await status(0)).redis.role === 'leader' ? 0 : 1
      const follower = 1 - leader
      expect((await status(follower)).redis).toMatchObject({ kind: 'memory', state: 'up' })
      const before = counts[follower]
      upstream.set({ document: booleanFlags(2, 'on') })
      await waitFor(async () => (await f0(follower)) === true, 5000)
      expect(counts[follower]).toBe(before)

      await relays[leader].close()
      await waitFor(async () => (await status(follower)).redis.role === 'leader', 5000)
      await waitFor(() => counts[follower] > before, 5000)
      expect((await shared.get('definitions')).ok).toBe(true)
    } finally {
      await Promise.all(relays.map((r) => r.close()))
    }
  }, 60_000)
})

describe('proxy mode: answers the store cannot take', () => {
  it('are shared again with backoff (1 s, doubling to 30 s) until it takes them, then the count is 0', async () => {
    vi.useFakeTimers()
    try {
      const memory = createMemoryStore()
      let down = true
      let attempts = 0
      // The memory store, refusing every write while `down` (a Redis that times out or refuses).
      const store: SharedStore = {
        ...memory,
        ticket: () => {
          attempts++
          return down ? Promise.resolve({ ok: false, error: 'stuck' }) : memory.ticket()
        },
        put: (key, doc, lease) =>
          down ? Promise.resolve({ ok: false, error: 'stuck' }) : new Promise((resolve) => setTimeout(resolve, writeMs)).then(() => memory.put(key, doc, lease)),
      }
      let writeMs = 0
      const log = recordingLogger()
      const held: Array<[string, { body: string; fetchedAt: number }]> = [['ctx-a', { body: '{"a":1}', fetchedAt: 1 }]]
      const shared = createSharedContexts({ store, take: () => true, held: () => held, log })
      await shared.start()
      shared.answered('ctx-a', held[0][1])
      await vi.advanceTimersByTimeAsync(0)
      expect(shared.status().unshared).toBe(1)
      expect(log.lines.filter((line) => /could not share an answer/.test(line))).toHaveLength(1)
      // Ten minutes of a store refusing: retried at 1, 2, 4, 8, 16, 30, 30, … s, not in a loop.
      await vi.advanceTimersByTimeAsync(600_000)
      expect(shared.status().unshared).toBe(1)
      // At 1, 3, 7, 15, 31 s, then every 30 s up to 601 s: 23 retries after the first attempt,
      // each one ticket.
      expect(attempts).toBe(24)
      expect(await memory.get('context:ctx-a')).toEqual({ ok: true, value: undefined })
      expect(log.lines.filter((line) => /could not share an answer/.test(line))).toHaveLength(1)
      // It takes them again, each write taking 5 s: until one is in the store, it is still owed.
      // Before, the count read 0 from the moment the retry began (/metrics and the status said
      // every answer was shared while the writes were still on their way, or about to fail).
      down = false
      writeMs = 5000
      const counts: number[] = []
      const stored = async () => {
        const result = await memory.get('context:ctx-a')
        return result.ok && result.value !== undefined
      }
      for (let i = 0; i < 60 && !(await stored()); i++) {
        counts.push(shared.status().unshared)
        await vi.advanceTimersByTimeAsync(500)
      }
      expect(new Set(counts)).toEqual(new Set([1]))
      await vi.advanceTimersByTimeAsync(0)
      expect(shared.status().unshared).toBe(0)
      expect(await memory.get('context:ctx-a')).toMatchObject({ ok: true, value: { body: '{"a":1}' } })
      expect(log.lines.some((line) => /shared the 1 answer/.test(line))).toBe(true)
      await shared.stop()
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('proxy mode: an answer shared late', () => {
  it('never goes over a newer one another relay wrote meanwhile, even when this relay missed its notice', async () => {
    vi.useFakeTimers()
    try {
      const memory = createMemoryStore()
      let down = true
      // Relay A's view of the store: refusing writes while `down`, and deaf to notices (its
      // subscription broke), so only a read can tell it what relay B wrote.
      const deaf: SharedStore = {
        ...memory,
        subscribe: () => () => {},
        ticket: () => (down ? Promise.resolve({ ok: false, error: 'stuck' }) : memory.ticket()),
        put: (key, doc, lease) => (down ? Promise.resolve({ ok: false, error: 'stuck' }) : memory.put(key, doc, lease)),
      }
      const heldA = new Map([['ctx', { body: '{"greeting":"v1"}', fetchedAt: 1 }]])
      const takenByA: string[] = []
      const a = createSharedContexts({
        store: deaf,
        closeStore: false,
        take: (key, doc) => {
          takenByA.push(doc.body)
          heldA.set(key, { body: doc.body, fetchedAt: doc.fetchedAt })
          return true
        },
        held: () => [...heldA],
      })
      const b = createSharedContexts({ store: memory, closeStore: false, take: () => true })
      await Promise.all([a.start(), b.start()])
      // A asked the upstream first (v1), but the store could not take it.
      a.answered('ctx', heldA.get('ctx')!)
      await vi.advanceTimersByTimeAsync(0)
      expect(a.status().unshared).toBe(1)
      // The store is back; B asked later (v2) and shared it.
      down = false
      b.answered('ctx', { body: '{"greeting":"v2"}', fetchedAt: 2 })
      await vi.advanceTimersByTimeAsync(0)
      expect(await memory.get('context:ctx')).toMatchObject({ ok: true, value: { body: '{"greeting":"v2"}' } })
      // A's retry reads first: the store holds a version A has not seen, so A takes it and writes nothing over it.
      await vi.advanceTimersByTimeAsync(1000)
      expect(a.status().unshared).toBe(0)
      expect(await memory.get('context:ctx')).toMatchObject({ ok: true, value: { body: '{"greeting":"v2"}' } })
      expect(takenByA).toEqual(['{"greeting":"v2"}'])
      await Promise.all([a.stop(), b.stop()])
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('proxy mode: looking up contexts the upstream failed', () => {
  it('reads the store at most 100 times a second in all, however many users fail (an outage must not become a Redis flood)', async () => {
    vi.useFakeTimers()
    try {
      const memory = createMemoryStore()
      let peeks = 0
      const perSecond: number[] = []
      // A store that answers at once: without a bound in time, 8 look-ups at once is no bound at all.
      const store: SharedStore = { ...memory, peek: (key) => (peeks++, memory.peek(key)) }
      const shared = createSharedContexts({ store, take: () => true, maxContexts: 100 })
      await shared.start()
      // An outage met by 5,000 distinct users, each request failing: 50 failed contexts every 10 ms for 5 s.
      let user = 0
      for (let second = 0; second < 5; second++) {
        const before = peeks
        for (let tick = 0; tick < 100; tick++) {
          for (let i = 0; i < 50; i++) shared.missed!(`ctx-${user++ % 5000}`)
          await vi.advanceTimersByTimeAsync(10)
        }
        perSecond.push(peeks - before)
      }
      expect(Math.max(...perSecond)).toBeLessThanOrEqual(100)
      // It still looks: a notice lost for one of them is found within the outage.
      expect(Math.min(...perSecond)).toBeGreaterThan(0)
      await shared.stop()
    } finally {
      vi.useRealTimers()
    }
  })
})
