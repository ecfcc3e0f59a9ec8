// Proxy mode with --redis and a data dir: an answer read back from the data dir is written back to
// the store at the version the data dir recorded for it (453ac24). That version comes from a file:
// written against another Redis (whose clock ran ahead) or edited by hand, it may be one this store
// never handed out. Written at it, the answer is in Redis under a version the store reads as
// nothing (no ticket handed it out): the relay counts it shared (unshared 0), yet no relay can take
// it, and a relay new to the fleet started in the upstream outage has nothing to serve.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { decodeGeneration, encodeGeneration } from '../../packages/server/src/flags/generations'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, recordingLogger, tempDir, waitFor } from './helpers'
import type { RedisServer } from '../support/redisServer'
import { fillRedis, PRO, storedBodies } from './dropFixtures'
import { startTcpProxy } from '../support/tcpProxy'
import { startUpstream, type FakeUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

// A relay in proxy mode on `upstream` with --redis (`more` added), the user's answer and a wait
// until a relay's Redis is up.
function fleetOf(redis: RedisServer, upstream: FakeUpstream, onUpstreamUnauthorized?: 'clear') {
  const start = (more = {}) => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined, ...(onUpstreamUnauthorized && { onUpstreamUnauthorized }), redis: { url: redis.url, commandTimeoutMs: 1000 }, ...more })
  const ask = async (server: { url: string }) => {
    const response = await evaluate(server as never, { targetingKey: 'victim' })
    return { status: response.status, value: ((await response.json()) as any).flags?.[0]?.value }
  }
  const up = (server: { url: string }) => waitFor(async () => (await status(server as never)).redis?.state === 'up', 20_000)
  // A relay with a data dir answers the user and saves the answer with its version; it stops. The
  // file is then made to say a version a day ahead of this Redis' clock (µs).
  const savedADayAhead = async (dataDir: string) => {
    const a = await start({ dataDir })
    await up(a.server)
    expect(await ask(a.server)).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await status(a.server)).redis?.unshared === 0, 10_000)
    await a.server.close()
    const [seconds] = (await redis.command('TIME')).split('\r\n').filter((line) => /^\d+$/.test(line))
    expect(await setStoreVersions(dataDir, (Number(seconds) + 86_400) * 1_000_000)).toBeGreaterThan(0)
  }
  return { start, ask, up, savedADayAhead }
}

// A relay with a data dir saved the user's answer, the file then saying a version a day ahead of
// this Redis's clock; another relay, B, has taken the answer from the store.
async function aDayAheadBesideB() {
  const redis = await redisServer()
  const upstream = await startUpstream(PRO)
  const dataDir = join(await tempDir(), 'data')
  const { start, ask, up, savedADayAhead } = fleetOf(redis, upstream, 'clear')
  await savedADayAhead(dataDir)
  const b = await start()
  await up(b.server)
  await waitFor(async () => (await status(b.server)).contexts === 1, 10_000)
  return { redis, upstream, dataDir, start, ask, up, b }
}

// The upstream refuses the user's credentials: B drops it, and the store holds the drop. Then, in
// the upstream outage, the relay `a2` answers the revoked user 503, twice.
async function bDropsAndTheRelayTakesIt(fleet: Awaited<ReturnType<typeof aDayAheadBesideB>>, a2: { server: { url: string } }) {
  const { upstream, ask, b } = fleet
  upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
  expect((await ask(b.server)).status).toBe(503)
  await waitFor(async () => (await status(b.server)).redis?.unshared === 0, 10_000)
  await waitFor(async () => (await status(a2.server as never)).contexts === 0, 5_000).catch(() => undefined)
  upstream.set({ status: 503, text: 'down' })
  const first = await ask(a2.server)
  await new Promise((resolve) => setTimeout(resolve, 300))
  expect([first.status, (await ask(a2.server)).status]).toEqual([503, 503])
}

// A relay without --redis answers the user and saves the answer in its data dir: no place in the
// store's order is known for it (no storeVersion). Another relay, B (reaching Redis through a link
// that can be cut), answers the user later; then the upstream refuses the user's credentials: B
// drops the user and the store holds the drop. B is cut off from Redis, which restarts empty; the
// upstream is down.
async function droppedBesideAnUnversionedSave() {
  const redis = await redisServer()
  const link = await startTcpProxy(redis.port)
  cleanups.push(() => link.close())
  const upstream = await startUpstream(PRO)
  const dataDir = join(await tempDir(), 'data')
  const { start, ask, up } = fleetOf(redis, upstream, 'clear')
  const a0 = await start({ dataDir, redis: undefined })
  expect(await ask(a0.server)).toEqual({ status: 200, value: 'pro' })
  await waitFor(async () => (await status(a0.server)).dataDir?.lastSavedAt !== undefined, 10_000)
  await a0.server.close()
  const b = await start({ redis: { url: link.url, commandTimeoutMs: 1000, reconnectMaxMs: 100 } })
  await up(b.server)
  expect(await ask(b.server)).toEqual({ status: 200, value: 'pro' })
  upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
  expect((await ask(b.server)).status).toBe(503)
  await waitFor(async () => (await status(b.server)).redis?.unshared === 0, 10_000)
  link.cut()
  await redis.stop()
  await redis.start()
  upstream.set({ status: 503, text: 'down' })
  return { redis, upstream, dataDir, start, ask, up, b, link }
}

// B comes back and writes back the drop it remembers, at the drop's place. Then the store holds
// the drop, and B and a relay new to the fleet answer the revoked user 503 in the outage.
async function dropHoldsOnceBIsBack(fleet: Awaited<ReturnType<typeof droppedBesideAnUnversionedSave>>) {
  const { redis, start, ask, up, b, link } = fleet
  link.restore()
  await up(b.server)
  await waitFor(async () => (await status(b.server)).redis?.unshared === 0, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  expect((await storedBodies(redis, '*:doc:context:*')).map((body) => body.startsWith('{"kind":"dropped"'))).toEqual([true])
  const c = await start()
  await up(c.server)
  const first = [(await ask(b.server)).status, (await ask(c.server)).status]
  await new Promise((resolve) => setTimeout(resolve, 300))
  expect([first, [(await ask(b.server)).status, (await ask(c.server)).status]]).toEqual([
    [503, 503],
    [503, 503],
  ])
}

// Rewrites every saved context's storeVersion in the data dir's generations (checksums made anew).
async function setStoreVersions(dir: string, version: number) {
  let changed = 0
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (entry.name.endsWith('.json')) {
        const decoded = decodeGeneration(await readFile(path, 'utf8'))
        if (!decoded.ok || !decoded.payload.includes('"kind":"contexts"')) continue
        const payload = decoded.payload.replace(/"storeVersion":\d+/g, () => {
          changed++
          return `"storeVersion":${version}`
        })
        await writeFile(path, encodeGeneration(payload, decoded.source))
      }
    }
  }
  await walk(dir)
  return changed
}

describe('proxy mode, --redis, data dir: the version recorded for an answer', () => {
  it('one this store never handed out (a day ahead of its clock) is not written: the answer is shared at a version the fleet can read', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const dataDir = join(await tempDir(), 'data')
    const { start, ask, up, savedADayAhead } = fleetOf(redis, upstream)
    // A relay with a data dir saves the user's answer; the file then says a version a day ahead of
    // this Redis' clock: as a data dir written against another Redis says, or a hand-edited one.
    await savedADayAhead(dataDir)
    // Redis restarts empty; the upstream is down.
    await redis.stop()
    await redis.start()
    upstream.set({ status: 503, text: 'down' })
    // The relay restarts from its data dir and writes its answer back.
    const log = recordingLogger()
    const a2 = await start({ dataDir, logger: log })
    await up(a2.server)
    expect(await ask(a2.server)).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await status(a2.server)).redis?.unshared === 0, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The operator is told the data dir held a version from the future, once for the write-back,
    // with the count, and the status counts it. Before: not a word.
    expect(log.lines.filter((line) => /ahead of/.test(line)), log.lines.join('\n')).toEqual([expect.stringMatching(/1 answer\(s\) read back from the data dir .*ahead of .*written back at a new version/)])
    expect((await status(a2.server)).redis.aheadOfStore).toBe(1)
    expect(await (await fetch(`${a2.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_places_ahead_total 1$/m)
    // A relay new to the fleet serves the user that answer in the outage. Before: the answer was in
    // Redis at the day-ahead version, read as nothing: it answered 503.
    const c = await start()
    await up(c.server)
    const first = await ask(c.server)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect([first, await ask(c.server)]).toEqual([
      { status: 200, value: 'pro' },
      { status: 200, value: 'pro' },
    ])
  })

  it("one this store never handed out does not outrank another relay's drop got after it: the relay drops the user too", async () => {
    const fleet = await aDayAheadBesideB()
    const { dataDir, start, up } = fleet
    // The relay restarts from that data dir.
    const a2 = await start({ dataDir })
    await up(a2.server)
    await waitFor(async () => (await status(a2.server)).redis?.unshared === 0, 10_000)
    // B drops the user; the relay from the data dir takes the drop: in the upstream outage after
    // it answers 503. Before: it held its answer as a day ahead of the drop in the store's order,
    // kept it, and served the revoked user 200 'pro'.
    await bDropsAndTheRelayTakesIt(fleet, a2)
  })
  it("one the data dir has no version for does not outrank another relay's drop in a Redis restarted empty: it goes at the oldest place, and the drop written back after it wins", async () => {
    const fleet = await droppedBesideAnUnversionedSave()
    const { redis, dataDir, start, up } = fleet
    // The relay restarts from its data dir and writes its answer back into the empty store first;
    // then B comes back and writes back the drop it remembers, at the drop's place.
    const a = await start({ dataDir })
    await up(a.server)
    await waitFor(async () => (await storedBodies(redis, '*:doc:context:*')).length === 1, 10_000)
    await waitFor(async () => (await status(a.server)).redis?.unshared === 0, 10_000)
    // The store holds the drop; B and a relay new to the fleet answer the revoked user 503 in the
    // outage. Before: the answer went at a new place, after the drop's; B's write-back of the drop
    // was refused as older, B took the answer, and both served the revoked user 200 'pro'.
    await dropHoldsOnceBIsBack(fleet)
  })

  it("one the data dir has no version for, refused by a full Redis at the start and written again once it frees, still goes at the oldest place: the drop written back after it wins", async () => {
    const fleet = await droppedBesideAnUnversionedSave()
    const { redis, dataDir, start, up } = fleet
    // Another tenant fills Redis (every write refused, OOM).
    const tenant = await fillRedis(redis.url, cleanups)
    // The relay restarts from its data dir: its write-back is refused, owed; then Redis frees and
    // the answer is written again.
    const log = recordingLogger()
    const a = await start({ dataDir, logger: log })
    await waitFor(async () => log.lines.some((line) => /could not share an answer through the store/.test(line)) && (await status(a.server)).redis?.unshared === 1, 10_000)
    await tenant.free()
    await waitFor(async () => (await status(a.server)).redis?.unshared === 0 && (await storedBodies(redis, '*:doc:context:*')).length === 1, 15_000)
    // B and a relay new to the fleet answer the revoked user 503 in the outage; the store holds the
    // drop. Before: written again at a new place (after the drop's), the answer won over B's drop,
    // B took it back, and both served the revoked user 200 'pro'.
    await dropHoldsOnceBIsBack(fleet)
  })

  it("one this store never handed out, refused by a full Redis at the start and written again once it frees, does not outrank another relay's drop got after it", async () => {
    const fleet = await aDayAheadBesideB()
    const { redis, dataDir, start } = fleet
    // Another tenant fills Redis (every write refused, OOM): the relay restarts from that data dir,
    // its write-back is refused, owed; Redis frees and the answer is written again.
    const tenant = await fillRedis(redis.url, cleanups)
    const log = recordingLogger()
    const a2 = await start({ dataDir, logger: log })
    await waitFor(async () => log.lines.some((line) => /could not share an answer through the store/.test(line)) && (await status(a2.server)).redis?.unshared === 1, 10_000)
    await tenant.free()
    await waitFor(async () => (await status(a2.server)).redis?.unshared === 0, 15_000)
    // B drops the user; the relay takes the drop: in the upstream outage after it answers 503, and
    // it said and counted the version ahead. Before: the retry wrote the answer at a new version but
    // the relay kept ordering it by the day-ahead one, ignored the drop, and served the revoked
    // user 200 'pro'.
    await bDropsAndTheRelayTakesIt(fleet, a2)
    expect(log.lines.filter((line) => /ahead of/.test(line)), log.lines.join('\n')).toEqual([expect.stringMatching(/1 answer\(s\) read back from the data dir .*ahead of/)])
    expect((await status(a2.server)).redis.aheadOfStore).toBe(1)
  })
})
