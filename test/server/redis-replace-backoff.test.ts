// A Redis that stays stuck (accepts connections, never answers: SIGSTOP, a proxy whose backend is
// gone) must not be hammered by the fleet. Each relay lets a silent connection go and connects a
// fresh one; the wait before the next keeps growing while they go unanswered (jittered, 30 s at
// most) and starts small again once one answers. Before, it stayed at 2 s at most: every relay
// opened a connection every 1.2-3 s for as long as Redis was stuck, and a SIGSTOPped Redis' listen
// queue filled with them. Time is fake here (the store's timers and clock); the sockets are real,
// through a TCP proxy in front of a real redis-server.
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRedisStore, type SharedStore } from '@holdfast/server'
import { startRedisServer } from '../support/redisServer'
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy'

vi.setConfig({ testTimeout: 120_000 })

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  vi.useRealTimers()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

// Fake time moves on in small steps; between them real I/O (a connect, a reply) gets its turn.
async function pass(ms: number) {
  for (let t = 0; t < ms; t += 50) {
    await vi.advanceTimersByTimeAsync(50)
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * Fake time moves on until `done()`, at most `ms`; each connection the proxy accepts gets 300 ms of
 * real time with the fake clock stopped, so its handshake with the real Redis (slow on a loaded
 * machine) is not cut short by the fake handshake bound.
 */
async function passUntil(done: () => boolean, ms: number, proxy: TcpProxy) {
  let seen = proxy.accepted()
  for (let t = 0; t < ms && !done(); t += 50) {
    await pass(50)
    if (proxy.accepted() === seen) continue
    seen = proxy.accepted()
    await sleep(300)
  }
}

describe('Redis stuck for minutes', () => {
  it('connections are replaced ever less often (30 s at most between them), and often again once Redis answers', async () => {
    const redis = await startRedisServer()
    cleanups.push(() => redis.stop())
    const proxy = await startTcpProxy(redis.port)
    cleanups.push(() => proxy.close())
    proxy.blackHole()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] })
    // Two connections (commands, subscription), each bounded to a 1 s handshake here.
    const store: SharedStore = createRedisStore({ url: proxy.url, namespace: 'stuck', commandTimeoutMs: 100 })
    cleanups.push(() => store.close())
    store.open()
    await pass(5 * 60_000)
    const inFiveMinutes = proxy.accepted()
    await pass(60_000)
    const inTheSixthMinute = proxy.accepted() - inFiveMinutes
    // At 2 s at most between them: ~240 in five minutes, ~48 in a minute. Growing to 30 s: about
    // 10 each to reach it, then one every 16-31 s each.
    expect(inFiveMinutes).toBeLessThan(60)
    expect(inTheSixthMinute).toBeLessThanOrEqual(10)
    expect(store.status().state).toBe('down')

    // Redis answers again: the waiting connections get through within the longest wait (each 30 s at most).
    proxy.restore()
    await passUntil(() => store.status().state === 'up', 70_000, proxy)
    expect(store.status().state).toBe('up')
    // Stuck again: replaced at the first wait again (0.1 s), not at 30 s.
    proxy.blackHole()
    const before = proxy.accepted()
    await pass(10_000)
    expect(proxy.accepted() - before).toBeGreaterThanOrEqual(4)
  })
})
