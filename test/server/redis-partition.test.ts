// One relay of a fleet cut off from Redis (a network partition: Redis stays up for the others)
// while the others go on, then healed. What it serves converges to the newest, and nothing older
// than what the store holds ever wins there. A TCP proxy in front of redis-server stands for that
// relay's network; each test starts its own redis-server, proxy and fake upstream on 127.0.0.1.
import { describe, expect, it, vi } from 'vitest'
import { startTcpProxy } from '../support/tcpProxy'
import { role, useRedisFleet, values } from './redis-fleet'
import { waitFor } from './helpers'
import { booleanFlags, holdingFetch, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

describe('a relay partitioned from Redis, then healed', () => {
  it('takes the lease with an older copy than the store holds: it takes the newer one and never writes its own over it', async () => {
    const redis = await redisServer()
    const proxy = await startTcpProxy(redis.port)
    cleanups.push(() => proxy.close())
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const a = await relay(redis, upstream)
    await waitFor(async () => (await role(a.server)) === 'leader', 10_000)
    // C's own way to the upstream, which the test can break while the leader's still works.
    let reachable = true
    const c = await relay({ ...redis, url: proxy.url }, upstream, {
      fetch: (input: Parameters<typeof fetch>[0], init?: RequestInit) => (reachable ? fetch(input, init) : Promise.reject(new Error('unreachable'))),
    } as never)
    await waitFor(async () => (await role(c.server)) === 'follower', 10_000)

    proxy.cut()
    await waitFor(async () => (await role(c.server)) === 'solo', 10_000)
    // C polls on its own: it serves D2, but cannot share it.
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await values(c.server)).flags.f0 === true && (await values(a.server)).flags.f0 === true, 10_000)
    // Then C loses the upstream too; the leader publishes D3 and goes away (a deploy).
    reachable = false
    upstream.set({ document: booleanFlags(4, 'on') })
    const body = async () => (await redis.command('EVAL', "return redis.call('HGET', KEYS[1], 'body')", '1', (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2]!)).toString()
    await waitFor(async () => (await body()).includes('"f3"'), 10_000)
    await a.server.close()

    // Healed: C is the only relay left, so it leads at once; it holds D2, the store D3.
    proxy.restore()
    await waitFor(async () => (await role(c.server)) === 'leader', 10_000)
    await waitFor(async () => 'f3' in (await values(c.server)).flags, 5000)
    const deadline = Date.now() + 2000
    while (Date.now() < deadline) {
      expect(await body()).toContain('"f3"')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect('f3' in (await values(c.server)).flags).toBe(true)
  })

  // The moment a write-back (a subscription reconnecting) can land in, between the late D2 going
  // into service and its publish losing to D3, is forced in redis-writeback-race.test.ts.
  it('an answer it asked for while cut off, which comes back once it leads, does not go over what the leader published after', async () => {
    const redis = await redisServer()
    const proxy = await startTcpProxy(redis.port)
    cleanups.push(() => proxy.close())
    // No ETag: every poll is a 200 with the document, which the test can hold back.
    const upstream = await startUpstream({ document: booleanFlags(3, 'off'), etag: false })
    const a = await relay(redis, upstream)
    await waitFor(async () => (await role(a.server)) === 'leader', 10_000)
    const answers = holdingFetch()
    const c = await relay({ ...redis, url: proxy.url }, upstream, { fetch: answers.fetch } as never)
    await waitFor(async () => (await role(c.server)) === 'follower', 10_000)

    proxy.cut()
    await waitFor(async () => (await role(c.server)) === 'solo', 10_000)
    // C asks the upstream on its own and gets D2; the answer is slow to come back.
    upstream.set({ document: booleanFlags(3, 'on'), etag: false })
    answers.hold()
    await waitFor(() => answers.held() > 0, 5000)
    // Meanwhile the leader polls D3, publishes it and goes away; then the upstream goes down.
    upstream.set({ document: booleanFlags(4, 'on'), etag: false })
    const body = async () => (await redis.command('EVAL', "return redis.call('HGET', KEYS[1], 'body')", '1', (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2]!)).toString()
    await waitFor(async () => (await body()).includes('"f3"'), 10_000)
    await a.server.close()
    upstream.set({ status: 503, text: 'down' })

    // Healed: C leads and takes D3; then the answer it asked for before (D2) comes back.
    proxy.restore()
    await waitFor(async () => (await role(c.server)) === 'leader' && 'f3' in (await values(c.server)).flags, 10_000)
    answers.release()
    const deadline = Date.now() + 2000
    while (Date.now() < deadline) {
      expect(await body()).toContain('"f3"')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await waitFor(async () => 'f3' in (await values(c.server)).flags, 5000)
  })
})
