// A follower restarted from an old data dir while the fleet moved on in steps, each within
// --max-shrink (CONTRACT §9 --redis): the leader publishes with each version the steps it applied
// (the lineage), and the follower takes the store's copy when every step from what it holds is
// within its own rule, refuses it (and says why) when one is not or its flags are not in the
// lineage. Real redis-server and a fake upstream on 127.0.0.1, as in redis-hostile.test.ts.
import { describe, expect, it, vi } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import type { RedisServer } from '../support/redisServer'
import { role, status, useRedisFleet, values, type Relay } from './redis-fleet'
import { tempDir, waitFor } from './helpers'
import type { FakeUpstream } from './relay-fakes'
import { startUpstream } from './relay-fakes'
import { startTcpProxy } from '../support/tcpProxy'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()
const ADMIN = 'admin-key-for-tests'

/** `count` flags f0…, every one a string flag whose value is `tag` (so each tag is another document). */
function tagged(count: number, tag: string): { flags: Record<string, unknown> } {
  const flags: Record<string, unknown> = {}
  for (let i = 0; i < count; i++) flags[`f${i}`] = { state: 'ENABLED', variants: { v: tag }, defaultVariant: 'v' }
  return { flags }
}

/** The relays' `doc:definitions` key in Redis. */
async function definitionsKey(redis: RedisServer): Promise<string> {
  let key = ''
  await waitFor(async () => {
    key = (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2] ?? ''
    return key !== ''
  }, 10_000)
  return key
}

/** The body the store holds for the definitions (RESP bulk string, decoded). */
async function storedBody(redis: RedisServer): Promise<string> {
  const reply = await redis.command('HGET', await definitionsKey(redis), 'body')
  return reply.startsWith('$-1') ? '' : reply.slice(reply.indexOf('\r\n') + 2, reply.lastIndexOf('\r\n'))
}

/** Sets the upstream to `document` and waits until the leader serves it and the store holds it. */
async function step(redis: RedisServer, upstream: FakeUpstream, leader: Relay, document: { flags: Record<string, unknown> }) {
  upstream.set({ document })
  const text = JSON.stringify(document)
  const first = Object.keys(document.flags)[0]
  const value = (document.flags[first] as { variants: { v: string } }).variants.v
  await waitFor(async () => {
    const served = await values(leader.server)
    return Object.keys(served.flags).length === Object.keys(document.flags).length && served.flags[first] === value
  }, 10_000)
  await waitFor(async () => (await storedBody(redis)) === text, 10_000)
}

async function refresh(server: FlagServer, body: unknown) {
  const response = await fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/**
 * A leader and a follower (each its own data dir) serving `tagged(10, 'a')`; the follower stopped
 * once its data dir holds them. Returns the leader, the follower's data dir and a way to start it again.
 */
async function fleetWithStoppedFollower(options: { followerMaxShrink?: number } = {}) {
  const redis = await redisServer()
  const upstream = await startUpstream({ document: tagged(10, 'a') })
  const leader = await relay(redis, upstream, { dataDir: await tempDir(), adminKey: ADMIN })
  await waitFor(async () => (await role(leader.server)) === 'leader' && Object.keys((await values(leader.server)).flags).length === 10, 20_000)
  const dataDir = await tempDir()
  const followerOptions = { dataDir, adminKey: ADMIN, ...(options.followerMaxShrink === undefined ? {} : { maxShrinkPercent: options.followerMaxShrink }) }
  const follower = await relay(redis, upstream, followerOptions)
  await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === 'a', 20_000)
  // Its one save: the flags it took (the leader's reports move `fetchedAt` on every poll, a re-save waits 30 s).
  await waitFor(async () => (await status(follower.server)).dataDir.lastSavedAt !== undefined, 10_000)
  await follower.server.close()
  return { redis, upstream, leader, restart: () => relay(redis, upstream, followerOptions) }
}

/** The newest step of the lineage the store holds with its definitions. */
async function firstLineageStep(redis: RedisServer): Promise<{ h: string; n: number; d: number }> {
  const reply = await redis.command('HGET', await definitionsKey(redis), 'lineage')
  return (JSON.parse(reply.slice(reply.indexOf('\r\n') + 2, reply.lastIndexOf('\r\n'))) as Array<{ h: string; n: number; d: number }>)[0]!
}

/** A restarted follower refuses the store's copy, its status saying why (`reason`), and keeps serving its own 10 flags, stale. */
async function expectCopyRefused(follower: Relay, reason: RegExp) {
  let refused: { message?: string } | undefined
  await waitFor(async () => {
    refused = (await status(follower.server)).redis.refusedCopy
    return refused !== undefined
  }, 10_000)
  expect(refused!.message).toMatch(reason)
  expect(await values(follower.server)).toMatchObject({ flags: { f0: 'a', f9: 'a' }, holdfast: { source: 'data-dir', stale: true } })
  return refused!.message!
}

/** The upstream shrinks to `document`; the leader refuses it twice (the first poll's whole course, asking the fleet included, is over). */
async function refusedTwice(upstream: FakeUpstream, leader: Relay, document: unknown) {
  const before = (await status(leader.server)).refused as number
  upstream.set({ document })
  await waitFor(async () => (await status(leader.server)).refused > before + 1, 10_000)
}

/** The upstream shrinks to `document`, the leader refuses it, and an operator accepts it on the follower. */
async function acceptedOnFollower(upstream: FakeUpstream, leader: Relay, follower: Relay, document: unknown) {
  upstream.set({ document })
  await waitFor(async () => (await status(leader.server)).refused >= 1, 10_000)
  expect((await refresh(follower.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
}

/** A leader and a follower on 10 flags (`a`), the follower with `followerOptions`. */
async function leaderAndFollower(followerOptions: Partial<FlagServerOptions> = {}, leaderOptions: Partial<FlagServerOptions> = {}) {
  const redis = await redisServer()
  const upstream = await startUpstream({ document: tagged(10, 'a') })
  const leader = await relay(redis, upstream, leaderOptions)
  await waitFor(async () => (await role(leader.server)) === 'leader', 20_000)
  const follower = await relay(redis, upstream, followerOptions)
  await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === 'a', 20_000)
  return { redis, upstream, leader, follower }
}

/** A lax leader published 10 → 2 flags; a stricter follower (`--max-shrink 10`, with `strictOptions`) refused it by its rule. */
async function strictFollowerRefused(strictOptions: Partial<FlagServerOptions> = {}) {
  const { redis, upstream, leader: lax, follower: strict } = await leaderAndFollower({ maxShrinkPercent: 10, ...strictOptions }, { maxShrinkPercent: 100 })
  await step(redis, upstream, lax, tagged(2, 'b'))
  await waitFor(async () => (await status(strict.server)).redis.refusedCopy !== undefined, 10_000)
  return { redis, upstream, lax, strict }
}

describe('a follower restarted from an old data dir after the fleet shrank in steps', () => {
  it('10 → 6 → 4 flags, each step within --max-shrink 50%: the follower serves the fleet\'s 4 flags, fresh, without an operator', async () => {
    const { redis, upstream, leader, restart } = await fleetWithStoppedFollower()
    await step(redis, upstream, leader, tagged(6, 'b'))
    await step(redis, upstream, leader, tagged(4, 'c'))

    const follower = await restart()
    await waitFor(async () => (await role(follower.server)) === 'follower', 10_000)
    // On main it served its 10 old flags (data-dir, stale) until someone forced it.
    await waitFor(async () => Object.keys((await values(follower.server)).flags).length === 4, 10_000)
    expect(await values(follower.server)).toMatchObject({ status: 200, flags: { f0: 'c', f3: 'c' }, holdfast: { source: 'upstream', stale: false } })
    expect((await status(follower.server)).redis.refusedCopy).toBeUndefined()
    expect(await (await fetch(`${follower.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_copy_refused 0$/m)

    // Restarted once more, from what it saved since, and then leading: the lineage it publishes
    // with its next step goes back as far as the one it took (its data dir kept it), so a relay
    // stopped even earlier still finds its flags in it.
    await follower.server.close()
    const again = await restart()
    await waitFor(async () => (await role(again.server)) === 'follower' && (await values(again.server)).flags.f0 === 'c', 10_000)
    await leader.server.close()
    await waitFor(async () => (await role(again.server)) === 'leader', 10_000)
    await step(redis, upstream, again, tagged(3, 'd'))
    const reply = await redis.command('HGET', await definitionsKey(redis), 'lineage')
    const lineage = JSON.parse(reply.slice(reply.indexOf('\r\n') + 2, reply.lastIndexOf('\r\n'))) as Array<{ n: number; d: number }>
    expect(lineage.map((s) => [s.n, s.d])).toEqual([[10, 4], [6, 2], [4, 1]])
  })

  it('a follower with a stricter --max-shrink (30%) refuses the same steps (40%, 33%) and its status says why and what to do', async () => {
    const { redis, upstream, leader, restart } = await fleetWithStoppedFollower({ followerMaxShrink: 30 })
    await step(redis, upstream, leader, tagged(6, 'b'))
    await step(redis, upstream, leader, tagged(4, 'c'))

    const follower = await restart()
    expect(await expectCopyRefused(follower, /drops 4 of 10 flags \(40%/)).toMatch(/acceptShrink/)
    expect(await (await fetch(`${follower.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_copy_refused 1$/m)
    // The remedy it names works: the operator takes the upstream's flags on this relay.
    expect((await refresh(follower.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
    expect(Object.keys((await values(follower.server)).flags)).toHaveLength(4)
  })

  it('a lineage that does not reach back to the follower\'s flags (more than 16 steps since): refused as before, with the reason', async () => {
    const { redis, upstream, leader, restart } = await fleetWithStoppedFollower()
    for (let i = 0; i < 17; i++) await step(redis, upstream, leader, tagged(10, `t${i}`))
    await step(redis, upstream, leader, tagged(6, 'b'))
    await step(redis, upstream, leader, tagged(4, 'c'))

    const follower = await restart()
    await expectCopyRefused(follower, /lineage does not reach back/)
  })

  // What the store holds under `lineage`: nothing (written by an older relay), or junk no relay
  // writes. Either way the copy is judged as before lineages: refused, nothing thrown.
  const tampered: Array<[string, string | undefined]> = [
    ['without a lineage (written by an older relay)', undefined],
    ['with a lineage of NaN and negative counts', '[{"h":"x","n":NaN,"d":0},{"h":"y","n":-4,"d":-9}]'],
    ['with an unbounded lineage (100,000 steps)', JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ h: `v${i}`, n: 10, d: 0 })))],
  ]
  for (const [what, lineage] of tampered) {
    it(`a store copy ${what} is refused as before`, async () => {
      const { redis, upstream, leader, restart } = await fleetWithStoppedFollower()
      await step(redis, upstream, leader, tagged(6, 'b'))
      await step(redis, upstream, leader, tagged(4, 'c'))
      const key = await definitionsKey(redis)
      expect(await redis.command('HEXISTS', key, 'lineage')).toBe(':1\r\n')
      if (lineage === undefined) await redis.command('HDEL', key, 'lineage')
      else await redis.command('HSET', key, 'lineage', lineage)

      await expectCopyRefused(await restart(), /no lineage/)
    })
  }

  it('a store lineage whose counts lie (it names the follower\'s flags but says nothing was dropped since) is refused', async () => {
    const { redis, upstream, leader, restart } = await fleetWithStoppedFollower()
    await step(redis, upstream, leader, tagged(6, 'b'))
    await step(redis, upstream, leader, tagged(4, 'c'))
    const first = await firstLineageStep(redis)
    // 10 flags, none dropped, then a document of 4: the step the lineage skips dropped 6 (60%).
    await redis.command('HSET', await definitionsKey(redis), 'lineage', JSON.stringify([{ h: first.h, n: first.n, d: 0 }]))

    await expectCopyRefused(await restart(), /contradicts/)
  })

  it('a store lineage that hides a step renaming every flag (the counts add up, the keys do not) is refused', async () => {
    const { redis, upstream, leader, restart } = await fleetWithStoppedFollower()
    // The operator forces 10 flags f0… → 10 other flags g0… on the leader: a step dropping all 10.
    const renamed = { flags: Object.fromEntries(Object.entries(tagged(10, 'g').flags).map(([key, flag]) => [key.replace('f', 'g'), flag])) }
    upstream.set({ document: renamed })
    await waitFor(async () => (await status(leader.server)).refused >= 1, 10_000)
    expect((await refresh(leader.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
    await waitFor(async () => (await storedBody(redis)) === JSON.stringify(renamed), 10_000)
    const first = await firstLineageStep(redis)
    expect(first.d).toBe(10)
    // Rewritten to say that step dropped nothing (and no operator forced it): 10 flags → 10 flags.
    await redis.command('HSET', await definitionsKey(redis), 'lineage', JSON.stringify([{ h: first.h, n: first.n, d: 0 }]))

    await expectCopyRefused(await restart(), /contradicts/)
  })

  it('the lease changes hands between the steps: the new leader carries the lineage it took on', async () => {
    const { redis, upstream, leader, restart } = await fleetWithStoppedFollower()
    const next = await relay(redis, upstream)
    await waitFor(async () => (await role(next.server)) === 'follower' && (await values(next.server)).flags.f0 === 'a', 20_000)
    await step(redis, upstream, leader, tagged(6, 'b'))
    await waitFor(async () => (await values(next.server)).flags.f0 === 'b', 10_000)
    // The leader stops (a deploy): the other relay leads and applies the next step.
    await leader.server.close()
    await waitFor(async () => (await role(next.server)) === 'leader', 10_000)
    await step(redis, upstream, next, tagged(4, 'c'))

    const follower = await restart()
    await waitFor(async () => (await values(follower.server)).flags.f0 === 'c', 10_000)
    expect(Object.keys((await values(follower.server)).flags)).toHaveLength(4)
  })
})

describe('an operator\'s acceptShrink on the leader', () => {
  it('reaches the followers: they take the step the operator forced instead of each refusing it', async () => {
    const { redis, upstream, leader, follower } = await leaderAndFollower({ maxShrinkPercent: 10 }, { adminKey: ADMIN })

    upstream.set({ document: tagged(2, 'b') })
    await waitFor(async () => (await status(leader.server)).refused >= 1, 10_000)
    expect((await refresh(leader.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
    await waitFor(async () => (await storedBody(redis)) === JSON.stringify(tagged(2, 'b')), 10_000)
    await waitFor(async () => (await values(follower.server)).flags.f0 === 'b', 10_000)
    expect(Object.keys((await values(follower.server)).flags)).toHaveLength(2)
  })
})

describe('an operator\'s acceptShrink on a follower (a refresh behind a load balancer reaches any relay)', () => {
  it('reaches the leader: it applies and publishes the same document, so the fleet does not serve two flag sets', async () => {
    const { redis, upstream, leader, follower } = await leaderAndFollower({ adminKey: ADMIN })

    await acceptedOnFollower(upstream, leader, follower, tagged(4, 'b'))
    expect(Object.keys((await values(follower.server)).flags)).toHaveLength(4)
    // On main the leader went on refusing it (and the store held the 10 flags): two flag sets behind one load balancer.
    await waitFor(async () => (await values(leader.server)).flags.f0 === 'b', 10_000)
    await waitFor(async () => (await storedBody(redis)) === JSON.stringify(tagged(4, 'b')), 10_000)
    const late = await relay(redis, upstream)
    await waitFor(async () => (await values(late.server)).flags.f0 === 'b', 10_000)
    // Only that document: the upstream's next shrink (4 → 1) is guarded again.
    await refusedTwice(upstream, leader, tagged(1, 'c'))
    expect(await values(leader.server)).toMatchObject({ flags: { f0: 'b', f3: 'b' } })
    expect(await storedBody(redis)).toBe(JSON.stringify(tagged(4, 'b')))
  })
})

describe('an operator\'s acceptShrink recorded for the fleet', () => {
  it('is honoured once: the same shrink again (the upstream back to that document within 10 minutes) is guarded again', async () => {
    const { redis, upstream, leader, follower } = await leaderAndFollower({ adminKey: ADMIN })

    await acceptedOnFollower(upstream, leader, follower, tagged(4, 'b'))
    await waitFor(async () => (await storedBody(redis)) === JSON.stringify(tagged(4, 'b')), 10_000)
    // Used: nothing of it is left in Redis.
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*accept-shrink*')) === '*0\r\n', 5_000)
    await step(redis, upstream, leader, tagged(10, 'c'))
    await refusedTwice(upstream, leader, tagged(4, 'b'))
    expect(await values(leader.server)).toMatchObject({ flags: { f0: 'c', f9: 'c' } })
    expect(await storedBody(redis)).toBe(JSON.stringify(tagged(10, 'c')))
  })
})

describe('an operator\'s acceptShrink on a stricter follower, for the store\'s copy', () => {
  it('is not told to the fleet: the leader serves that copy already (an acceptance left in Redis would pass the same shrink later)', async () => {
    const { redis, strict } = await strictFollowerRefused({ adminKey: ADMIN })
    expect((await refresh(strict.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
    expect((await values(strict.server)).flags).toEqual({ f0: 'b', f1: 'b' })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await redis.command('KEYS', 'holdfast:*accept-shrink*')).toBe('*0\r\n')
  })
})

describe('a stricter relay that comes to lead', () => {
  /** A lax leader published 10 → 2 flags, the strict follower refused it (its rule); the lax leader stopped and the strict relay leads. */
  async function strictLeading() {
    const { redis, upstream, lax, strict } = await strictFollowerRefused()
    await lax.server.close()
    await waitFor(async () => (await role(strict.server)) === 'leader', 10_000)
    return { redis, upstream, strict }
  }

  it('the upstream goes back to the flags it serves: it publishes them over the copy it kept (the fleet follows the upstream)', async () => {
    const { redis, upstream } = await strictLeading()
    upstream.set({ document: tagged(10, 'a') })
    // Its poll says the upstream holds its 10 flags again: that is news, not an old copy written back.
    await waitFor(async () => (await storedBody(redis)) === JSON.stringify(tagged(10, 'a')), 10_000)
    const late = await relay(redis, upstream, { maxShrinkPercent: 100 })
    await waitFor(async () => (await values(late.server)).flags.f0 === 'a', 10_000)
  })

  it('Redis restarted empty: it puts the fleet\'s copy back, never its own older flags, so a relay started then serves the fleet\'s', async () => {
    const { redis, upstream, strict } = await strictLeading()
    const stale = JSON.stringify(tagged(10, 'a'))
    await redis.stop()
    await redis.start()
    await waitFor(async () => (await status(strict.server)).redis.state === 'up' && (await role(strict.server)) === 'leader', 20_000)
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2] !== undefined, 10_000)
    for (let i = 0; i < 10; i++) {
      expect(await storedBody(redis)).toBe(JSON.stringify(tagged(2, 'b')))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(await storedBody(redis)).not.toBe(stale)
    // A relay started now (a cold start with nothing on disk) serves the fleet's flags at once.
    const late = await relay(redis, upstream, { maxShrinkPercent: 100 })
    await waitFor(async () => Object.keys((await values(late.server)).flags).length > 0, 10_000)
    expect((await values(late.server)).flags).toEqual({ f0: 'b', f1: 'b' })
    expect(await values(strict.server)).toMatchObject({ flags: { f0: 'a', f9: 'a' } })
  })

  it('does not write its older flags back over the step a laxer leader published: the fleet keeps the upstream\'s flags', async () => {
    // 10 → 2: the lax leader applies and publishes it; the strict follower refuses it (its rule).
    const { redis, upstream, lax, strict } = await strictFollowerRefused()
    // The lax leader stops; the strict relay leads. It keeps its own flags (its rule), but the
    // store keeps the upstream's 2 flags: a relay started now serves them, not the deleted ones.
    await lax.server.close()
    await waitFor(async () => (await role(strict.server)) === 'leader', 10_000)
    const late = await relay(redis, upstream, { maxShrinkPercent: 100 })
    await waitFor(async () => Object.keys((await values(late.server)).flags).length > 0, 10_000)
    for (let i = 0; i < 10; i++) {
      expect(await storedBody(redis)).toBe(JSON.stringify(tagged(2, 'b')))
      expect((await values(late.server)).flags).toEqual({ f0: 'b', f1: 'b' })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(await values(strict.server)).toMatchObject({ flags: { f0: 'a', f9: 'a' } })
  })
})

describe('an operator\'s acceptShrink on a follower, against an upstream whose bytes differ on every fetch (a generation timestamp)', () => {
  it('reaches the leader all the same: the acceptance names the flags kept, not the bytes the follower happened to fetch', async () => {
    let stamp = 0
    // Each fetch stamps the document anew: no two relays ever fetch the same bytes.
    const stamped = (document: { flags: Record<string, unknown> }) => () => ({ document: { ...document, metadata: { generatedAt: ++stamp } } })
    const redis = await redisServer()
    const upstream = await startUpstream(stamped(tagged(10, 'a')))
    const leader = await relay(redis, upstream)
    await waitFor(async () => (await role(leader.server)) === 'leader' && (await values(leader.server)).flags.f0 === 'a', 20_000)
    const follower = await relay(redis, upstream, { adminKey: ADMIN })
    await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === 'a', 20_000)

    upstream.set(stamped(tagged(4, 'b')))
    await waitFor(async () => (await status(leader.server)).refused >= 1, 10_000)
    expect((await refresh(follower.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
    expect(Object.keys((await values(follower.server)).flags)).toHaveLength(4)
    // Before: the acceptance named the hash of the follower's bytes; the leader's next fetch had
    // another stamp, so it went on refusing: the fleet served two flag sets behind one balancer.
    await waitFor(async () => (await values(leader.server)).flags.f0 === 'b', 10_000)
    expect(Object.keys((await values(leader.server)).flags)).toHaveLength(4)
  })
})

describe('an operator\'s acceptShrink on a follower, when Redis restarts empty before the leader asks the upstream again', () => {
  it('still reaches the leader: the follower tells the fleet again once the store is back', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: tagged(10, 'a') })
    // The leader asks the upstream only when told to (an hour's interval): the test says when.
    const leader = await relay(redis, upstream, { adminKey: ADMIN, pollIntervalSeconds: 3600 })
    await waitFor(async () => (await role(leader.server)) === 'leader' && (await values(leader.server)).flags.f0 === 'a', 20_000)
    const follower = await relay(redis, upstream, { adminKey: ADMIN })
    await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === 'a', 20_000)
    upstream.set({ document: tagged(4, 'b') })
    expect((await refresh(leader.server, {})).body).toMatchObject({ outcome: 'refused' })
    expect((await refresh(follower.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*accept-shrink*')) !== '*0\r\n', 5000)

    // Redis restarts empty (the leader's lease put back at once, so that it still leads after).
    const leaseKey = (await redis.command('KEYS', 'holdfast:*lease')).split('\r\n')[2]!
    const owner = (await redis.command('GET', leaseKey)).split('\r\n')[1]!
    await redis.stop()
    await redis.start()
    await redis.command('SET', leaseKey, owner, 'PX', '5000')
    await waitFor(async () => (await status(leader.server)).redis?.state === 'up' && (await status(follower.server)).redis?.state === 'up', 20_000)
    expect(await role(leader.server)).toBe('leader')
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*accept-shrink*')) !== '*0\r\n', 5000).catch(() => undefined)
    // Before: the acceptance lived only in Redis: the leader refused the same shrink again and the
    // fleet served two flag sets (the follower 4 flags, the leader and the store 10) for good.
    // Applied by this refresh, or already by the poll the leader makes when it takes the lease back
    // (a restart longer than the lease TTL makes it solo meanwhile): either way it serves the shrink.
    expect(['applied', 'unchanged']).toContain((await refresh(leader.server, {})).body.outcome)
    expect(Object.keys((await values(leader.server)).flags)).toHaveLength(4)
  })
})

describe('an operator\'s acceptShrink on a follower, used by the leader while the follower was cut off from Redis', () => {
  it('is not told to the fleet again once the fleet has moved past it: a later shrink to the same flags is refused', async () => {
    const redis = await redisServer()
    const cutoff = await startTcpProxy(redis.port)
    const upstream = await startUpstream({ document: tagged(10, 'a') })
    // Both ask the upstream only when told to (an hour's interval): the test says when.
    const leader = await relay(redis, upstream, { adminKey: ADMIN, pollIntervalSeconds: 3600 })
    await waitFor(async () => (await role(leader.server)) === 'leader' && (await values(leader.server)).flags.f0 === 'a', 20_000)
    const follower = await relay({ ...redis, url: cutoff.url }, upstream, { adminKey: ADMIN, pollIntervalSeconds: 3600 })
    try {
      await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === 'a', 20_000)
      upstream.set({ document: tagged(4, 'b') })
      expect((await refresh(leader.server, {})).body).toMatchObject({ outcome: 'refused' })
      expect((await refresh(follower.server, { acceptShrink: true })).body).toMatchObject({ outcome: 'applied' })
      await waitFor(async () => (await redis.command('KEYS', 'holdfast:*accept-shrink*')) !== '*0\r\n', 5000)

      // The follower is cut off from Redis; meanwhile the leader uses the acceptance (10 → 4 flags),
      // then the upstream adds a flag (5), and the leader publishes that.
      cutoff.cut()
      await waitFor(async () => (await status(follower.server)).redis?.state !== 'up', 10_000)
      expect((await refresh(leader.server, {})).body).toMatchObject({ outcome: 'applied' })
      expect(await redis.command('KEYS', 'holdfast:*accept-shrink*')).toBe('*0\r\n')
      upstream.set({ document: tagged(5, 'c') })
      expect((await refresh(leader.server, {})).body).toMatchObject({ outcome: 'applied' })
      await waitFor(async () => (await storedBody(redis)) === JSON.stringify(tagged(5, 'c')), 10_000)

      // The follower comes back, and takes the fleet's 5 flags.
      cutoff.restore()
      await waitFor(async () => (await status(follower.server)).redis?.state === 'up' && (await values(follower.server)).flags.f0 === 'c', 20_000)
      await new Promise((resolve) => setTimeout(resolve, 1000))

      // Later the fleet is back to 10 flags, and then the upstream breaks down to the same 4 keys.
      upstream.set({ document: tagged(10, 'd') })
      expect((await refresh(leader.server, {})).body).toMatchObject({ outcome: 'applied' })
      upstream.set({ document: tagged(4, 'e') })
      // Before: the follower, which never saw the 4 flags in the store, told the fleet of its
      // acceptance again when Redis came back: the leader applied a 60% shrink no one accepted.
      expect((await refresh(leader.server, {})).body).toMatchObject({ outcome: 'refused' })
      expect(Object.keys((await values(leader.server)).flags)).toHaveLength(10)
    } finally {
      await follower.server.close()
      await cutoff.close()
    }
  })
})

