// The in-process store has the Redis store's semantics (versions, TTL, lease, notices), driven by
// an injected clock so expiry needs no waiting.
import { describe, expect, it } from 'vitest'
import { createMemoryStore, type StoreNotice } from '@holdfast/server'

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
