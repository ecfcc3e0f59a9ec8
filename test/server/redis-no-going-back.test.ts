// A relay never goes back to an older version than it already served (CONTRACT §9 --redis: "a
// newer version is never overwritten by an older one"), also when what it serves has no version
// of the store's: a data-dir generation it polled alone while Redis was away, or a --snapshot.
// Real redis-server and fake upstreams on 127.0.0.1, as in redis-relay.test.ts.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createGenerationStore, createRedisStore, createSharedDefinitions, type FlagServerOptions, type RelaySource } from '@holdfast/server'
import { status, useRedisFleet, values } from './redis-fleet'
import { evaluate, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

// The data dir holds a change made upstream at `since` (ms) once a save ended after it. Not
// `lastSavedAt >= fetchedAt`: each poll's 304 moves fetchedAt on and a re-confirmation is saved at
// most every 30 s, so that held only from the change's save to the next poll (under 0.2 s), and a
// waitFor stalled past that window on a loaded machine waited its 10 s out.
const savedSince = (dataDir: { lastSavedAt?: number } | undefined, since: number) => (dataDir?.lastSavedAt ?? 0) >= since

describe('a relay holding newer flags than Redis', () => {
  it('restarted from a data dir it wrote while cut off from Redis, with the upstream down: keeps its newer flags, not the store\'s older copy', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const dataDir = await tempDir()
    const first = await relay(redis, upstream, { dataDir })
    await waitFor(async () => (await values(first.server)).flags.f0 === false && (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes('definitions'), 20_000)

    // Redis stuck: the relay polls alone, takes the upstream's change, and saves it.
    redis.pause()
    await waitFor(async () => (await status(first.server)).redis.role === 'solo', 10_000)
    const changed = Date.now()
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await values(first.server)).flags.f0 === true, 10_000)
    await waitFor(async () => savedSince((await status(first.server)).dataDir, changed), 10_000)
    // The upstream goes down, the relay restarts (a deploy) and Redis answers again with what it
    // held: the flags from before the change.
    upstream.set({ status: 503, text: 'down' })
    await first.server.close()
    redis.resume()
    expect(await redis.command('KEYS', 'holdfast:*:doc:definitions')).toContain('definitions')

    const again = await relay(redis, upstream, { dataDir })
    await waitFor(async () => (await status(again.server)).redis.state === 'up' && (await status(again.server)).redis.role === 'leader', 20_000)
    for (let i = 0; i < 10; i++) {
      expect(await values(again.server)).toMatchObject({ status: 200, flags: { f0: true }, holdfast: { source: 'data-dir', stale: true } })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    // Leading, it writes what it serves back over the store's older copy: a relay started now in
    // the outage (autoscaling) serves what the fleet serves, not the older flags.
    const late = await relay(redis, upstream)
    await waitFor(async () => (await values(late.server)).flags.f0 === true, 10_000)
  })

  it('the same, when the leader, which never saw the change, hears the upstream again and it went back to the older flags: the store\'s copy is what it says now, and is taken', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    // The leader's own way to the upstream, which the test can cut.
    let cut = false
    const leaderFetch: typeof fetch = (input, init) => (cut ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init))
    // `fetch` is the server's hidden test seam (as in redis-fleet.ts).
    const leader = await relay(redis, upstream, { fetch: leaderFetch } as Partial<FlagServerOptions>)
    await waitFor(async () => (await status(leader.server)).redis.role === 'leader' && (await values(leader.server)).flags.f0 === false, 20_000)
    const dataDir = await tempDir()
    const follower = await relay(redis, upstream, { dataDir })
    await waitFor(async () => (await status(follower.server)).redis.role === 'follower' && (await values(follower.server)).flags.f0 === false, 20_000)
    // Cut off from Redis, the follower polls alone and saves the upstream's change (the leader
    // cannot reach the upstream meanwhile); then it stops.
    cut = true
    redis.pause()
    const changed = Date.now()
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await values(follower.server)).flags.f0 === true, 10_000)
    await waitFor(async () => savedSince((await status(follower.server)).dataDir, changed), 10_000)
    await follower.server.close()
    // The change is rolled back upstream; the leader hears it again: for the store, nothing changed.
    upstream.set({ document: booleanFlags(3, 'off') })
    cut = false
    redis.resume()
    await waitFor(async () => (await status(leader.server)).redis.role === 'leader' && (await status(leader.server)).upstream.state === 'ok', 20_000)
    const again = await relay(redis, upstream, { dataDir })
    await waitFor(async () => (await values(again.server)).flags.f0 === false, 10_000)
    expect(await values(again.server)).toMatchObject({ holdfast: { source: 'upstream', stale: false } })
  })

  it('started with a --snapshot newer than the store\'s copy: serves the snapshot until the leader hears the upstream again, then what it says', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const first = await relay(redis, upstream)
    await waitFor(async () => (await values(first.server)).flags.f0 === false && (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes('definitions'), 20_000)
    upstream.set({ status: 503, text: 'down' })
    await waitFor(async () => (await status(first.server)).upstream.state === 'failing', 10_000)
    // A build made since (its snapshot is dated by the file's mtime) and a relay started with it.
    const snapshot = join(await tempDir(), 'flags.snapshot.json')
    await writeFile(snapshot, JSON.stringify(booleanFlags(3, 'on')))
    const late = await relay(redis, upstream, { snapshot })
    for (let i = 0; i < 10; i++) {
      expect(await values(late.server)).toMatchObject({ status: 200, flags: { f0: true }, holdfast: { source: 'snapshot', stale: true } })
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    // The upstream answers again (with what it said before): the leader's report vouches for the store's copy.
    upstream.set({ document: booleanFlags(3, 'off') })
    await waitFor(async () => (await values(late.server)).flags.f0 === false, 10_000)
    expect(await values(late.server)).toMatchObject({ holdfast: { source: 'upstream', stale: false } })
  })
  it('the same, when the relay that published the older copy has a clock hours ahead: the store\'s order decides, not the times', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const dataDir = await tempDir()
    const source = (now: () => number, dir?: string): RelaySource => {
      const s = urlSourceFor(upstream, {
        now,
        ...(dir ? { store: createGenerationStore({ dir }) } : {}),
        share: (hooks) => createSharedDefinitions({ store: createRedisStore({ url: redis.url, namespace: 'ahead', commandTimeoutMs: 300 }), leaseTtlMs: 1500, ...hooks }),
      })
      cleanups.push(() => s.close())
      return s
    }
    const f0 = (s: RelaySource) => (s.current()?.definitions as { flags?: { f0?: { defaultVariant?: string } } } | undefined)?.flags?.f0?.defaultVariant === 'on'
    // The leader's clock runs 3 hours ahead: the copy it publishes says it was fetched in the future.
    const ahead = source(() => Date.now() + 3 * 3600_000)
    await ahead.open()
    await waitFor(() => ahead.relayStatus().redis?.role === 'leader' && ahead.relayStatus().redis?.version !== undefined, 10_000)
    let local = source(Date.now, dataDir)
    await local.open()
    await waitFor(() => local.relayStatus().redis?.role === 'follower' && f0(local) === false && local.relayStatus().dataDir?.lastSavedAt !== undefined, 10_000)
    // Redis stuck: the follower polls alone and saves the upstream's change; then it restarts while
    // the upstream is down, and Redis answers again with the older copy.
    redis.pause()
    await waitFor(() => local.relayStatus().redis?.role === 'solo', 10_000)
    const changed = Date.now()
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(() => f0(local) === true, 10_000)
    await waitFor(() => savedSince(local.relayStatus().dataDir, changed), 10_000)
    upstream.set({ status: 503, text: 'down' })
    await local.close()
    await ahead.close()
    redis.resume()
    local = source(Date.now, dataDir)
    await local.open()
    await waitFor(() => local.relayStatus().redis?.state === 'up' && local.relayStatus().redis?.role === 'leader', 10_000)
    for (let i = 0; i < 10; i++) {
      expect([f0(local), local.relayStatus().source]).toEqual([true, 'data-dir'])
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })
})

describe('proxy mode (--upstream): a relay holding a newer answer than Redis', () => {
  it('restarted from a data dir it wrote while Redis was stuck, with the upstream down: answers with its newer answer, not the store\'s older one', async () => {
    const redis = await redisServer()
    let greeting = 'v1'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: greeting, reason: 'STATIC' }] }) })
    const dataDir = await tempDir()
    const proxy = () => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined, dataDir })
    const ask = async (r: Awaited<ReturnType<typeof proxy>>) => {
      const body = (await (await evaluate(r.server, { targetingKey: 'u' })).json()) as { flags?: Array<{ value: unknown }>; metadata?: { holdfast?: Record<string, unknown> } }
      return { value: body.flags?.[0]?.value, holdfast: body.metadata?.holdfast }
    }
    const first = await proxy()
    await waitFor(async () => (await status(first.server)).redis?.state === 'up', 20_000)
    expect((await ask(first)).value).toBe('v1')
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:context:*')).includes('context'), 10_000)
    // Redis stuck: the relay answers the user with the upstream's change and saves it.
    redis.pause()
    const changed = Date.now()
    greeting = 'v2'
    expect((await ask(first)).value).toBe('v2')
    await waitFor(async () => savedSince((await status(first.server)).dataDir, changed), 10_000)
    upstream.set({ status: 503, text: 'down' })
    await first.server.close()
    redis.resume()

    const again = await proxy()
    await waitFor(async () => (await status(again.server)).redis?.state === 'up', 20_000)
    for (let i = 0; i < 10; i++) {
      expect(await ask(again)).toMatchObject({ value: 'v2', holdfast: { source: 'data-dir', stale: true } })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    // It writes its answer back over the store's older one: a relay started now in the outage
    // (no data dir) answers that user with it too.
    const late = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined })
    await waitFor(async () => (await ask(late)).value === 'v2', 10_000)
  })
})
