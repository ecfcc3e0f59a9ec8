// A torn `--snapshot` (a deploy cut short, a disk that filled while it was copied: truncated JSON,
// zero bytes): the relay must not refuse to start when it has good values elsewhere (its data dir,
// the upstream). It serves those and says loudly that the snapshot was unusable (an error line
// naming the file and why, `snapshot` in /holdfast/v1/status, `holdfast_relay_snapshot_usable 0`).
// With no usable layer at all it still refuses to start, naming the file.
import { utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import { evaluate, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'
import { startRedisServer } from '../support/redisServer'

const TORN = [
  ['truncated JSON', '{"holdfastSnapshot":1,"kind":"definitions","fetchedAt":17', /not valid JSON/],
  ['zero bytes', '', /empty \(0 bytes/],
] as const

async function status(server: FlagServer): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as Record<string, any>
}

async function bulk(server: FlagServer, targetingKey = 'user-1') {
  const response = await evaluate(server, { targetingKey })
  return { status: response.status, body: (await response.json()) as any }
}

async function tornSnapshot(text: string): Promise<{ dir: string; snapshot: string }> {
  const dir = await tempDir()
  const snapshot = join(dir, 'flags.snapshot.json')
  await writeFile(snapshot, text)
  return { dir, snapshot }
}

const flagsUrl = (upstream: FakeUpstream, options: Partial<FlagServerOptions>) =>
  startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 3600, upstreamTimeoutMs: 400, ...options })

/**
 * Fills `dataDir` with the upstream's definitions: a relay on it, closed once it has written them.
 * Its first fetch has the default timeout: at the tests' 400 ms it timed out once on a loaded
 * machine, that relay started not ready and wrote nothing, and the relay under test found no data
 * dir to serve ("neither the data dir nor … gave flags to serve").
 */
async function filledDataDir(upstream: FakeUpstream, dataDir: string): Promise<void> {
  const relay = await flagsUrl(upstream, { dataDir, upstreamTimeoutMs: undefined })
  await waitFor(async () => ((await status(relay)).dataDir?.lastGeneration ?? 0) > 0, 10_000)
  await relay.close()
}

describe('a torn --snapshot with good values elsewhere', () => {
  for (const [name, text, why] of TORN) {
    it(`--flags-url (${name}): the data dir is served, and the snapshot is reported unusable`, async () => {
      const { dir, snapshot } = await tornSnapshot(text)
      const dataDir = join(dir, 'data')
      const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
      await filledDataDir(upstream, dataDir)
      upstream.set('reset')
      const logger = recordingLogger()
      const server = await flagsUrl(upstream, { dataDir, snapshot, logger })
      const answer = await bulk(server)
      expect(answer.status).toBe(200)
      expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
      expect(logger.lines.some((l) => l.includes(snapshot) && why.test(l))).toBe(true)
      expect((await status(server)).snapshot).toEqual({ path: snapshot, usable: false, error: expect.stringMatching(why) })
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      expect(metrics).toMatch(/^holdfast_relay_snapshot_usable 0$/m)
    })

    it(`--flags-url (${name}): no data dir, the upstream answers: started and served`, async () => {
      const { snapshot } = await tornSnapshot(text)
      const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
      const server = await flagsUrl(upstream, { snapshot })
      const answer = await bulk(server)
      expect(answer.status).toBe(200)
      expect(answer.body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: false })
      expect((await status(server)).snapshot).toMatchObject({ usable: false })
    })
  }

  it('--upstream (proxy mode): the upstream answers: started and served', async () => {
    const { snapshot } = await tornSnapshot('{"context":{"targetingKey":"anonymous"},"flags":[{"key":"a","val')
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'a', value: true, reason: 'STATIC' }] }) })
    const logger = recordingLogger()
    const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, snapshot, logger })
    const answer = await bulk(server)
    expect(answer.status).toBe(200)
    expect(answer.body.flags).toEqual([expect.objectContaining({ key: 'a', value: true })])
    expect(logger.lines.some((l) => l.includes(snapshot) && /not valid JSON/.test(l))).toBe(true)
    expect((await status(server)).snapshot).toMatchObject({ path: snapshot, usable: false })
  })

  it('--flags FILE: the file is good: started and served, the snapshot reported unusable', async () => {
    const { dir, snapshot } = await tornSnapshot('')
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(2, 'on')))
    const logger = recordingLogger()
    const server = await startServer({ flags: file, snapshot, logger })
    expect((await bulk(server)).body.flags).toHaveLength(2)
    expect(logger.lines.some((l) => l.includes(snapshot) && /empty/.test(l))).toBe(true)
    expect((await status(server)).snapshot).toMatchObject({ path: snapshot, usable: false })
  })
})

describe('a torn --snapshot and nothing else usable', () => {
  for (const [name, text, why] of TORN) {
    it(`--flags-url (${name}), no data dir, the upstream down: refuses to start, naming the snapshot`, async () => {
      const { snapshot } = await tornSnapshot(text)
      const upstream = await startUpstream('reset')
      await expect(flagsUrl(upstream, { snapshot })).rejects.toThrow(new RegExp(`snapshot ${snapshot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} .*${why.source}`))
    })
  }

  it('--upstream, the upstream down: refuses to start', async () => {
    const { snapshot } = await tornSnapshot('')
    const upstream = await startUpstream('reset')
    await expect(startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, snapshot })).rejects.toThrow(/snapshot .* is empty/)
  })

  it('--upstream --redis, the upstream down but Redis holding the fleet\'s answers: started and served from Redis', async () => {
    // Before: with the upstream down, a relay restarted with a torn snapshot refused to start (a
    // crash loop in a rolling deploy) while the store held every answer its fleet had got, and the
    // same relay without any --snapshot started and served them.
    const redis = await startRedisServer()
    try {
      const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'banner', value: 'fleet', reason: 'STATIC' }] }) })
      const common = { flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, redis: { url: redis.url, commandTimeoutMs: 300 } }
      const a = await startServer(common)
      expect((await bulk(a, 'u1')).body.flags[0].value).toBe('fleet')
      await waitFor(async () => (await status(a)).redis?.unshared === 0, 5000)
      upstream.set('reset')
      const { snapshot } = await tornSnapshot('')
      const b = await startServer({ ...common, snapshot })
      await waitFor(async () => (await status(b)).redis?.taken >= 1, 5000)
      expect(await bulk(b, 'u1')).toMatchObject({ status: 200, body: { flags: [{ key: 'banner', value: 'fleet' }] } })
      expect((await status(b)).snapshot).toMatchObject({ usable: false })
    } finally {
      await redis.stop()
    }
  }, 30_000)

  it('--flags FILE, the file unreadable too: refuses to start', async () => {
    const { dir, snapshot } = await tornSnapshot('{"flags":')
    await expect(startServer({ flags: join(dir, 'missing.json'), snapshot })).rejects.toThrow(/snapshot .* not valid JSON/)
  })
})

// A snapshot's `fetchedAt` and its file's mtime. A reproducible build sets every mtime to a fixed
// time (1970, 1980 in a zip, SOURCE_DATE_EPOCH = the commit's time, maybe weeks old); capped at that
// mtime, a snapshot taken an hour ago counted as taken then: served with a decades-old fetchedAt
// (every age alert fires) and beaten by any older data dir. The mtime caps only a fetchedAt that
// this host's clock proves wrong (in the future), and only when the mtime is plausible.
describe('a --snapshot of a reproducible build (mtime normalised)', () => {
  const definitionsSnapshot = (fetchedAt: number) => JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt, version: 'x', definitions: booleanFlags(3, 'off') })
  const alone = async (fetchedAt: number, mtime: Date) => {
    const { snapshot } = await tornSnapshot(definitionsSnapshot(fetchedAt))
    await utimes(snapshot, mtime, mtime)
    return (await bulk(await flagsUrl(await startUpstream('reset'), { snapshot }))).body.metadata.holdfast
  }
  const commitAWeekAgo = new Date(Math.floor(Date.now() / 1000 - 7 * 86_400) * 1000)

  for (const [name, mtime] of [['1970 (epoch 0)', new Date(0)], ['1980 (zip)', new Date(Date.UTC(1980, 0, 1))], ['SOURCE_DATE_EPOCH a week ago', commitAWeekAgo]] as const) {
    it(`mtime ${name}: a fetchedAt in the past is believed`, async () => {
      const takenAt = Date.now() - 3_600_000
      expect(await alone(takenAt, mtime)).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
    })
  }

  it('and a data dir older than the snapshot does not win over it', async () => {
    const { dir, snapshot } = await tornSnapshot('')
    const dataDir = join(dir, 'data')
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    await filledDataDir(upstream, dataDir)
    // Built since the data dir was written, and shipped with a normalised mtime.
    await writeFile(snapshot, definitionsSnapshot(Date.now()))
    await utimes(snapshot, new Date(0), new Date(0))
    await new Promise((r) => setTimeout(r, 5))
    upstream.set('reset')
    const answer = await bulk(await flagsUrl(upstream, { dataDir, snapshot }))
    expect(answer.body.metadata.holdfast.source).toBe('snapshot')
  })

  it('a fetchedAt in the future is still capped: at a plausible mtime, else at now (never at 1970)', async () => {
    const ahead = Date.now() + 365 * 86_400_000
    expect(await alone(ahead, commitAWeekAgo)).toMatchObject({ fetchedAt: commitAWeekAgo.getTime() })
    const before = Date.now()
    const capped = await alone(ahead, new Date(0))
    expect(capped.fetchedAt).toBeGreaterThanOrEqual(before)
    expect(capped.fetchedAt).toBeLessThanOrEqual(Date.now())
  })
})

// A snapshot that reads as one but cannot be served (no flags, invalid definitions) was only a
// warning line: the status said nothing, so the operator believed the relay had its build-time
// layer to fall back on. It is reported like a torn one; with nothing else to serve the relay
// starts not ready (503) as before, rather than refusing to start.
describe('a --snapshot that reads but cannot be served', () => {
  const emptied = JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: Date.now(), version: 'x', definitions: { flags: {} } })

  it('--flags-url: reported in the status and the metrics, the data dir served', async () => {
    const { dir, snapshot } = await tornSnapshot(emptied)
    const dataDir = join(dir, 'data')
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    await filledDataDir(upstream, dataDir)
    upstream.set('reset')
    // Newer than the data dir, so it is the one offered first.
    await writeFile(snapshot, JSON.stringify({ ...JSON.parse(emptied), fetchedAt: Date.now() }))
    const logger = recordingLogger()
    const server = await flagsUrl(upstream, { dataDir, snapshot, logger })
    expect((await bulk(server)).body.metadata.holdfast.source).toBe('data-dir')
    expect((await status(server)).snapshot).toEqual({ path: snapshot, usable: false, error: expect.stringMatching(/cannot be served: .*no flags/) })
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^holdfast_relay_snapshot_usable 0$/m)
  })

  it('--flags-url with nothing else: starts, not ready (503), the snapshot reported', async () => {
    const { snapshot } = await tornSnapshot(emptied)
    const server = await flagsUrl(await startUpstream('reset'), { snapshot })
    expect((await bulk(server)).status).toBe(503)
    expect((await status(server)).snapshot).toMatchObject({ usable: false })
  })

  it('--flags FILE: the file served, the snapshot reported; with the file missing too, refused as before', async () => {
    const { dir, snapshot } = await tornSnapshot(emptied)
    await expect(startServer({ flags: join(dir, 'missing.json'), snapshot })).rejects.toThrow(/missing\.json/)
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(2)))
    const good = await startServer({ flags: file, snapshot })
    expect((await bulk(good)).body.flags).toHaveLength(2)
    expect((await status(good)).snapshot).toEqual({ path: snapshot, usable: false, error: expect.stringMatching(/cannot be served/) })
  })
})
