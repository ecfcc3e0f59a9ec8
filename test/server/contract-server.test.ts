// CONTRACT §8–§10, server side, sentence by sentence where no other file pinned the sentence as
// written: each test names the sentence it holds the server to, and fails if the server breaks it.
// Polling, forwarded headers, operations, limits and staleness here; persistence (data dir,
// --snapshot, a clear across a restart) in contract-persistence.test.ts; the snapshot command in
// contract-snapshot-cli.test.ts.
import { join } from 'node:path'
import { rm, writeFile } from 'node:fs/promises'
import { describe, expect, it, vi } from 'vitest'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'
import { bulk, proxyRelay, refresh, status, urlRelay, values } from './contract-fixtures'

describe('§9 --flags-url: polled with If-None-Match every --poll-interval SECONDS (default 10)', () => {
  it('without --poll-interval the next poll goes out 10 s after the first, not before; its 304 changes nothing and is no failure', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'], shouldAdvanceTime: true })
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const server = await urlRelay(upstream, { pollIntervalSeconds: undefined })
    const first = await bulk(server)
    expect(upstream.requests).toHaveLength(1)
    const before = await status(server)

    await vi.advanceTimersByTimeAsync(9_500)
    expect(upstream.requests, 'polled before 10 s').toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1_000)
    await vi.waitFor(() => expect(upstream.requests.length).toBe(2), { timeout: 2000 })
    // The poll revalidates: the upstream's ETag goes back and the unchanged document answers 304.
    expect(upstream.requests[1].headers['if-none-match']).toMatch(/^"/)
    await vi.waitFor(async () => expect((await status(server)).upstream.lastSuccessAt).toBeGreaterThan(before.upstream.lastSuccessAt), { timeout: 2000 })

    const after = await status(server)
    expect(after).toMatchObject({ ready: true, source: 'upstream', version: before.version, refused: 0, upstream: { state: 'ok' } })
    expect(after.upstream.lastError).toBeUndefined()
    const answer = await bulk(server)
    expect(answer.body.flags).toEqual(first.body.flags)
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: false })
  })
})

describe('§9 proxy mode: --forward-header NAME (default Authorization)', () => {
  it('with no --forward-header, Authorization is forwarded and keys the cache; another header is neither', async () => {
    const upstream = await startUpstream({
      ofrep: () => ({ flags: [{ key: 'who', value: 'x', reason: 'STATIC' }] }),
    })
    let seen = 0
    upstream.set((request) => {
      seen++
      return { ofrep: () => ({ flags: [{ key: 'who', value: String(request.headers.authorization ?? 'none'), reason: 'STATIC' }] }) }
    })
    const server = await proxyRelay(upstream)
    const user = { targetingKey: 'ann' }
    const one = await bulk(server, user, { Authorization: 'Bearer one', 'X-API-Key': 'k' })
    expect(values(one.body).who).toBe('Bearer one')
    expect(upstream.requests.at(-1)!.headers['x-api-key']).toBeUndefined()
    upstream.set('reset')
    // The second key was never answered: the first key's values are not served to it.
    const two = await bulk(server, user, { Authorization: 'Bearer two' })
    expect(two.status).toBe(503)
    expect(two.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(seen).toBeGreaterThan(0)
  })
})

describe('§9 operations: POST /holdfast/v1/refresh needs --admin-key', () => {
  it('without an admin key configured it is refused (never open to anyone) and asks nothing; with one, a missing or wrong key is 401', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const open = await urlRelay(upstream, { adminKey: undefined })
    const asked = upstream.requests.length
    for (const key of [null, 'anything', '']) {
      const answer = await refresh(open, key)
      expect(answer.status, String(key)).toBeGreaterThanOrEqual(400)
      expect(answer.status, String(key)).toBeLessThan(500)
    }
    expect(upstream.requests.length).toBe(asked)

    // Clients hold the API key; only operators hold the admin key.
    const guarded = await urlRelay(upstream, { apiKey: 'client-key' })
    const before = upstream.requests.length
    expect((await refresh(guarded, null)).status).toBe(401)
    expect((await refresh(guarded, 'wrong')).status).toBe(401)
    expect((await refresh(guarded, 'client-key')).status).toBe(401)
    expect(upstream.requests.length).toBe(before)
    const ok = await refresh(guarded)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ version: expect.any(String), changed: [] })
  })
})

describe('§9 last known good "holds for --flags FILE too": an emptied or gutted file is not served', () => {
  it('each refused edit counts in the status (refused) the operator reads, which says file and upstream none', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(6)))
    const server = await startServer({ flags: file, logger: recordingLogger() })
    const good = await bulk(server)
    const before = await status(server)
    expect(before).toMatchObject({ ready: true, source: 'file', refused: 0, upstream: { state: 'none' } })

    let refused = 0
    for (const document of [{ flags: {} }, booleanFlags(2, 'off')]) {
      await writeFile(file, JSON.stringify(document))
      refused++
      await vi.waitFor(async () => expect((await status(server)).refused).toBe(refused), { timeout: 3000 })
      const answer = await bulk(server)
      expect(answer.body.flags).toEqual(good.body.flags)
      expect(answer.body.metadata.holdfast).toMatchObject({ source: 'file' })
      expect(await status(server)).toMatchObject({ ready: true, source: 'file', version: before.version, upstream: { state: 'none' } })
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
  })
})

describe('§9 "an emptied or gutted file is not served", §8 "never answers with an empty set because its own input broke"', () => {
  it.each([
    ['no data dir', false],
    ['a data dir with nothing in it yet', true],
  ])('--flags FILE emptied before a restart (%s): not ready, 503 with Retry-After (never an empty 200), until the file has flags again', async (_, withDataDir) => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify({ flags: {} }))
    const logger = recordingLogger()
    const server = await startServer({ flags: file, logger, ...(withDataDir ? { dataDir: join(dir, 'data') } : {}) })
    for (const answer of [await evaluate(server, { targetingKey: 'u' }), await fetch(`${server.url}/ofrep/v1/evaluate/flags/f0`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: 'u' } }) })]) {
      expect(answer.status, answer.url).toBe(503)
      expect(answer.headers.get('retry-after'), answer.url).toMatch(/^\d+$/)
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    expect(await status(server)).toMatchObject({ ready: false, refused: 1 })
    expect(logger.lines.join('\n')).toMatch(/flags\.json defines no flags/)

    // Written again with flags: served within 2 s, as any valid edit.
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    await vi.waitFor(async () => expect((await bulk(server)).status).toBe(200), { timeout: 3000 })
    expect(values((await bulk(server)).body)).toEqual({ f0: true, f1: true, f2: true })
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
    expect(await status(server)).toMatchObject({ ready: true, source: 'file', stale: false })
  })

  it('--flags FILE that defines no flags at start, then broken or removed: the log and the status never say "still serving the previous flags" while nothing is served', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify({ flags: {} }))
    const logger = recordingLogger()
    const server = await startServer({ flags: file, logger })
    expect((await bulk(server)).status).toBe(503)
    // A save caught broken (not half written: the same bytes a moment later), then the file gone.
    await writeFile(file, '{"flags": {')
    await vi.waitFor(async () => expect((await status(server)).refused).toBe(2), { timeout: 3000 })
    await rm(file)
    await vi.waitFor(async () => expect((await status(server)).upstream.lastError?.message).toMatch(/cannot read/), { timeout: 3000 })
    expect((await bulk(server)).status).toBe(503)
    // Before: "flags.json is invalid, still serving the previous flags" and "cannot read flags.json
    // (ENOENT); still serving the previous flags", while every OFREP request got 503.
    const said = logger.lines.filter((line) => /is invalid|cannot read/.test(line))
    expect(said).toHaveLength(2)
    for (const line of said) {
      expect(line).not.toMatch(/previous flags/)
      expect(line).toMatch(/503/)
    }
    expect((await status(server)).upstream.lastError.message).not.toMatch(/previous flags/)
  })
})

describe('§9 --on-upstream-unauthorized clear-after=SECONDS: what an upstream 401/403 does to what is held', () => {
  it('--flags-url: the definitions go SECONDS after the first 401, not at the next poll an --poll-interval later', async () => {
    const upstream = await startUpstream({ document: booleanFlags(2) })
    // Polled hourly: only the refresh below asks the upstream.
    const server = await urlRelay(upstream, { onUpstreamUnauthorized: 'clear-after=0.5' })
    expect((await bulk(server)).status).toBe(200)
    upstream.set({ status: 401, text: '' })
    expect((await refresh(server)).status).toBe(502)
    const asked = upstream.requests.length
    const held = await bulk(server)
    expect(held.status).toBe(200)
    expect(held.body.metadata.holdfast.stale).toBe(true)

    await vi.waitFor(async () => expect((await bulk(server)).status).toBe(503), { timeout: 2000, interval: 50 })
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
    expect(await status(server)).toMatchObject({ ready: false, upstream: { state: 'unauthorized' } })
    // Nothing asked the upstream meanwhile: the drop was timed, not found by a poll.
    expect(upstream.requests.length).toBe(asked)
  })
})

describe('§8 request bodies over 1 MiB (1,048,576 bytes) get 413', () => {
  it('POST /holdfast/v1/events: a body of exactly 1,048,576 bytes is read (202), one byte more is 413', async () => {
    const dir = await tempDir()
    const server = await startServer({ eventsFile: join(dir, 'events.jsonl') })
    const batch = (id: string, size: number) => {
      const json = JSON.stringify({ events: [{ id, type: 'custom', name: 'checkout', time: Date.now() }] })
      // JSON allows whitespace anywhere between tokens: pad the batch to the exact byte count.
      return json.slice(0, -1) + ' '.repeat(size - json.length) + '}'
    }
    const post = (body: string) => fetch(`${server.url}/holdfast/v1/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    const exact = batch('00000000-0000-4000-8000-000000000001', 1_048_576)
    expect(Buffer.byteLength(exact)).toBe(1_048_576)
    const at = await post(exact)
    expect(at.status).toBe(202)
    expect(await at.json()).toEqual({ accepted: 1, duplicates: 0 })
    const over = await post(batch('00000000-0000-4000-8000-000000000002', 1_048_577))
    expect(over.status).toBe(413)
  })
})

describe('§9 staleness reaches the browser: a client holding the fresh ETag is not told 304 once the answer is stale', () => {
  it('--flags-url: after a failed poll the fresh tag gets a 200 saying stale; the stale tag then gets 304; the recovery a 200 saying fresh', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const server = await urlRelay(upstream)
    const fresh = await evaluate(server, { targetingKey: 'u' })
    const freshTag = fresh.headers.get('etag')!
    expect(freshTag).toBeTruthy()
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': freshTag })).status).toBe(304)

    upstream.set({ status: 503, text: 'down' })
    expect((await refresh(server)).status).toBe(502)
    const stale = await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': freshTag })
    expect(stale.status).toBe(200)
    expect(((await stale.json()) as any).metadata.holdfast.stale).toBe(true)
    const staleTag = stale.headers.get('etag')!
    expect(staleTag).not.toBe(freshTag)
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': staleTag })).status).toBe(304)

    upstream.set({ document: booleanFlags(3) })
    await refresh(server)
    const recovered = await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': staleTag })
    expect(recovered.status).toBe(200)
    expect(((await recovered.json()) as any).metadata.holdfast.stale).toBe(false)
  })
})

describe('§9 with nothing to serve and the upstream down: not ready, OFREP requests 503 with Retry-After', () => {
  it('--flags-url and --upstream: the bulk and the single-flag request both get 503 + Retry-After; /healthz (alive) 200, /readyz 503', async () => {
    const upstream = await startUpstream({ status: 503, text: 'down' })
    for (const server of [await urlRelay(upstream, { apiKey: 'client-key' }), await proxyRelay(upstream, { apiKey: 'client-key' })]) {
      const key = { Authorization: 'Bearer client-key' }
      const answers = [
        await evaluate(server, { targetingKey: 'u' }, key),
        await fetch(`${server.url}/ofrep/v1/evaluate/flags/f0`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...key }, body: JSON.stringify({ context: { targetingKey: 'u' } }) }),
      ]
      for (const answer of answers) {
        expect(answer.status, answer.url).toBe(503)
        expect(answer.headers.get('retry-after'), answer.url).toMatch(/^\d+$/)
      }
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
    }
  })
})

describe('§9 --max-shrink PERCENT (default 50): a document dropping more than that share of the flags held is refused', () => {
  it('--flags-url: by default 10 → 4 is refused and 10 → 5 applied; with maxShrinkPercent 80, 5 → 1 applied', async () => {
    const upstream = await startUpstream({ document: booleanFlags(10) })
    const server = await urlRelay(upstream)
    upstream.set({ document: booleanFlags(4) })
    expect((await refresh(server)).status).toBe(502)
    expect(Object.keys(values((await bulk(server)).body))).toHaveLength(10)
    upstream.set({ document: booleanFlags(5) })
    expect((await refresh(server)).status).toBe(200)
    expect(Object.keys(values((await bulk(server)).body))).toHaveLength(5)

    const lax = await urlRelay(upstream, { maxShrinkPercent: 80 })
    upstream.set({ document: booleanFlags(1) })
    expect((await refresh(lax)).status).toBe(200)
    expect(Object.keys(values((await bulk(lax)).body))).toHaveLength(1)
  })

  it('--upstream, per context: by default 10 → 4 is refused (the 10 served, stale) and 10 → 5 applied', async () => {
    let count = 10
    const upstream = await startUpstream({ ofrep: () => ({ flags: Array.from({ length: count }, (_, i) => ({ key: `f${i}`, value: true, reason: 'STATIC' })) }) })
    const server = await proxyRelay(upstream)
    expect(Object.keys(values((await bulk(server)).body))).toHaveLength(10)
    count = 4
    const refused = await bulk(server)
    expect(Object.keys(values(refused.body))).toHaveLength(10)
    expect(refused.body.metadata.holdfast.stale).toBe(true)
    count = 5
    const applied = await bulk(server)
    expect(Object.keys(values(applied.body))).toHaveLength(5)
    expect(applied.body.metadata.holdfast.stale).toBe(false)
  })
})
