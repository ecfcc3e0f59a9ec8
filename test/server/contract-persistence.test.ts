// CONTRACT §9 persistence, server side, sentence by sentence: "last known good" (a refused document
// is not saved), the newest valid of data dir and --snapshot at a start, a torn data dir, and a
// clear (--on-upstream-unauthorized) across a restart. Each test fails if the server breaks it.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { tempDir } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'
import { bulk, proxyRelay, refresh, status, urlRelay, values } from './contract-fixtures'

describe('§9 last known good: a refused document is "reported, not applied, not saved"', () => {
  it('--flags-url: an empty and a shrunken document are counted in refused and leave the data dir as it was', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const upstream = await startUpstream({ document: booleanFlags(10) })
    const server = await urlRelay(upstream, { dataDir })
    const good = await bulk(server)
    // The good document's generation is written after it is served: wait for it.
    await vi.waitFor(async () => expect((await readdir(dataDir)).some((name) => name.startsWith('gen-'))).toBe(true), { timeout: 2000 })
    const saved = (await readdir(dataDir)).sort()

    let refused = 0
    for (const document of [{ flags: {} }, booleanFlags(2, 'off')]) {
      upstream.set({ document })
      expect((await refresh(server)).status).toBe(502)
      expect(await status(server)).toMatchObject({ refused: ++refused })
      expect((await bulk(server)).body.flags).toEqual(good.body.flags)
      expect((await readdir(dataDir)).sort(), JSON.stringify(document).slice(0, 40)).toEqual(saved)
    }
    await server.close()
    // A restart with the upstream down serves what was good, not what was refused.
    upstream.set('reset')
    const restarted = await urlRelay(upstream, { dataDir })
    const answer = await bulk(restarted)
    expect(answer.body.flags).toEqual(good.body.flags)
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
  })

  it('--upstream: an empty answer for a held context is refused, counted, and not saved over its last good answer', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const flagsOf = (value: boolean) => ({ flags: [0, 1, 2, 3].map((i) => ({ key: `f${i}`, value, reason: 'STATIC', variant: String(value) })) })
    let answer: unknown = flagsOf(true)
    const upstream = await startUpstream({ ofrep: () => answer })
    const server = await proxyRelay(upstream, { dataDir })
    const user = { targetingKey: 'ann' }
    const good = await bulk(server, user)
    expect(values(good.body)).toEqual({ f0: true, f1: true, f2: true, f3: true })

    answer = { flags: [] }
    const refusedAnswer = await bulk(server, user)
    expect(refusedAnswer.status).toBe(200)
    expect(refusedAnswer.body.flags).toEqual(good.body.flags)
    expect(refusedAnswer.body.metadata.holdfast.stale).toBe(true)
    expect((await status(server)).refused).toBeGreaterThanOrEqual(1)
    await server.close()

    upstream.set('reset')
    const restarted = await proxyRelay(upstream, { dataDir })
    const after = await bulk(restarted, user)
    expect(after.status).toBe(200)
    expect(values(after.body)).toEqual({ f0: true, f1: true, f2: true, f3: true })
    expect(after.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
  })
})

describe('§9 persistence: on start the server serves the newest valid of data dir and snapshot', () => {
  it('a --snapshot newer than the data dir (a fresh build over an old volume) is the one served', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const snapshotFile = join(dir, 'flags.snapshot.json')
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    await (await urlRelay(upstream, { dataDir })).close()

    // Built after the data dir was written: a newer layer.
    await new Promise((r) => setTimeout(r, 20))
    const takenAt = Date.now()
    await writeFile(snapshotFile, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: takenAt, version: 'build-2', definitions: booleanFlags(3, 'on') }))
    upstream.set('reset')
    const server = await urlRelay(upstream, { dataDir, snapshot: snapshotFile })
    const answer = await bulk(server)
    expect(values(answer.body)).toEqual({ f0: true, f1: true, f2: true })
    expect(answer.body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
  })
})

describe('§9 persistence in proxy mode: a torn or corrupt data-dir file is skipped for the previous good one', () => {
  it('the newest generation cut short, then with a byte changed: the previous answer is served, from the data dir', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    let limit = 1
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'limit', value: limit, reason: 'STATIC' }, { key: 'other', value: true, reason: 'STATIC' }] }) })
    const first = await proxyRelay(upstream, { dataDir })
    const generations = async () => (await readdir(dataDir)).filter((name) => name.startsWith('gen-')).sort()
    await bulk(first, { targetingKey: 'ann' })
    await vi.waitFor(async () => expect(await generations()).toHaveLength(1), { timeout: 5000 })
    limit = 2
    await vi.waitFor(async () => expect(values((await bulk(first, { targetingKey: 'ann' })).body).limit).toBe(2), { timeout: 5000 })
    await first.close()
    const [older, newest] = await generations()
    expect(older).toBeDefined()
    expect(newest).toBeDefined()
    upstream.set('reset')

    // Intact, the newest generation is what a restart serves.
    const intact = await proxyRelay(upstream, { dataDir })
    expect(values((await bulk(intact, { targetingKey: 'ann' })).body)).toEqual({ limit: 2, other: true })
    await intact.close()

    const whole = await readFile(join(dataDir, newest!))
    for (const [what, damaged] of [
      ['cut short', whole.subarray(0, Math.floor(whole.length / 2))],
      ['a byte changed', Buffer.from(whole.toString('latin1').replace('"limit"', '"limiT"'), 'latin1')],
    ] as const) {
      await writeFile(join(dataDir, newest!), damaged)
      const server = await proxyRelay(upstream, { dataDir })
      const answer = await bulk(server, { targetingKey: 'ann' })
      expect(answer.status, what).toBe(200)
      expect(values(answer.body), what).toEqual({ limit: 1, other: true })
      expect(answer.body.metadata.holdfast, what).toMatchObject({ source: 'data-dir', stale: true })
      await server.close()
    }
  })
})

describe('§9 --on-upstream-unauthorized clear in proxy mode, across a restart', () => {
  it('a context whose values a 401 dropped is not served from an older --snapshot after a restart in an outage (503), until the upstream answers again', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const snapshot = join(dir, 'fallback.json')
    // Made before the clear, for this very user.
    await writeFile(snapshot, JSON.stringify({ context: { targetingKey: 'x' }, flags: [{ key: 'plan', value: 'old', reason: 'STATIC' }], fetchedAt: Date.now() - 60_000 }))
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) })
    const start = () => proxyRelay(upstream, { dataDir, snapshot, onUpstreamUnauthorized: 'clear' })
    const first = await start()
    expect(values((await bulk(first, { targetingKey: 'x' })).body)).toEqual({ plan: 'pro' })
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await bulk(first, { targetingKey: 'x' })).status).toBe(503)
    await first.close()

    upstream.set({ status: 503, text: 'down' })
    const restarted = await start()
    const answer = await bulk(restarted, { targetingKey: 'x' })
    expect(answer.status, JSON.stringify(answer.body)).toBe(503)
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/)
    // The upstream answers again: served, and after the next restart in an outage the data dir's
    // answer is, as before any clear.
    upstream.set({ ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) })
    // (Once the breaker the outage opened lets a request through: its first probe is within 1.2 s.)
    await vi.waitFor(async () => expect((await bulk(restarted, { targetingKey: 'x' })).status).toBe(200), { timeout: 5000, interval: 100 })
    expect(values((await bulk(restarted, { targetingKey: 'x' })).body)).toEqual({ plan: 'pro' })
    await restarted.close()
    upstream.set({ status: 503, text: 'down' })
    const again = await start()
    expect(values((await bulk(again, { targetingKey: 'x' })).body)).toEqual({ plan: 'pro' })
  })

  it('a 400 for that context does not end its drop: the older --snapshot is not served to it in the outage after, nor after a restart (503)', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const snapshot = join(dir, 'fallback.json')
    await writeFile(snapshot, JSON.stringify({ context: { targetingKey: 'x' }, flags: [{ key: 'plan', value: 'old', reason: 'STATIC' }], fetchedAt: Date.now() - 60_000 }))
    const plan = { ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) }
    const upstream = await startUpstream(plan)
    const start = () => proxyRelay(upstream, { dataDir, snapshot, onUpstreamUnauthorized: 'clear' })
    const first = await start()
    expect(values((await bulk(first, { targetingKey: 'x' })).body)).toEqual({ plan: 'pro' })
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await bulk(first, { targetingKey: 'x' })).status).toBe(503)
    // One request of the revoked user's that the upstream (or a gateway in front of it) refuses as bad.
    upstream.set({ status: 400, json: { errorCode: 'INVALID_CONTEXT' } })
    expect((await bulk(first, { targetingKey: 'x' })).status).toBe(400)
    // Then the upstream goes down: nothing has answered that user's context with values since the drop.
    upstream.set({ status: 503, text: 'down' })
    const during = await bulk(first, { targetingKey: 'x' })
    expect(during.status, JSON.stringify(during.body)).toBe(503)
    // Another user answered meanwhile writes the data dir (with the drops this relay remembers).
    upstream.set(plan)
    await vi.waitFor(async () => expect((await bulk(first, { targetingKey: 'y' })).status).toBe(200), { timeout: 5000, interval: 100 })
    await first.close()

    upstream.set({ status: 503, text: 'down' })
    const restarted = await start()
    const after = await bulk(restarted, { targetingKey: 'x' })
    expect(after.status, JSON.stringify(after.body)).toBe(503)
  })
})

/**
 * A proxy relay with a data dir and `policy`, its user `x` answered 'pro', then the key revoked:
 * `x`'s next request gets the held values (200, stale) and the run of 401s begins.
 */
async function refusedOnce(policy: `clear-after=${number}`) {
  const dataDir = join(await tempDir(), 'data')
  const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) })
  const start = () => proxyRelay(upstream, { dataDir, onUpstreamUnauthorized: policy })
  const first = await start()
  expect(values((await bulk(first, { targetingKey: 'x' })).body)).toEqual({ plan: 'pro' })
  upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
  const held = await bulk(first, { targetingKey: 'x' })
  expect(held.status).toBe(200)
  expect(held.body.metadata.holdfast.stale).toBe(true)
  return { upstream, start, first }
}

/** The upstream down and the relay restarted: `x` is answered 503 (the answer returned), never from the data dir. */
async function xInAnOutage(upstream: Awaited<ReturnType<typeof startUpstream>>, start: () => ReturnType<typeof proxyRelay>) {
  upstream.set({ status: 503, text: 'down' })
  const answer = await bulk(await start(), { targetingKey: 'x' })
  expect(answer.status, JSON.stringify(answer.body)).toBe(503)
  return answer
}

describe('§9 --on-upstream-unauthorized clear-after=SECONDS in proxy mode, across a restart', () => {
  it('a context refused once is dropped SECONDS later without another request: a restart after that in an outage answers its user 503, not the values from the data dir', async () => {
    const { upstream, start, first } = await refusedOnce('clear-after=0.5')
    // Nobody asks again; SECONDS later the values are gone all the same.
    await vi.waitFor(async () => expect((await status(first)).contexts).toBe(0), { timeout: 2000, interval: 50 })
    await first.close()

    const answer = await xInAnOutage(upstream, start)
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/)
  })

  it('a restart before SECONDS goes on with the run: the context refused before it is dropped SECONDS after its 401, though nobody asks again, and a restart in an outage after that answers 503', async () => {
    const { upstream, start, first } = await refusedOnce('clear-after=1')
    // Restarted (a deploy) well before the second is up; the key is still refused, nobody asks.
    await first.close()
    const second = await start()
    // Before: the run was forgotten at the restart, the context held (and saved) for good.
    await vi.waitFor(async () => expect((await status(second)).contexts).toBe(0), { timeout: 3000, interval: 50 })
    await second.close()

    await xInAnOutage(upstream, start)
  })
})
