// CONTRACT §8–§10, server side, sentence by sentence where no other file pinned the sentence as
// written: each test names the sentence it holds the server to, and fails if the server breaks it.
import { execFile } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'

const ADMIN = 'admin-secret'

afterEach(() => {
  vi.useRealTimers()
})

function urlRelay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 3600, adminKey: ADMIN, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })
}

function proxyRelay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, adminKey: ADMIN, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })
}

/** POST /holdfast/v1/refresh with `Authorization: Bearer key`; `null` sends no Authorization at all. */
function refresh(server: FlagServer, key: string | null = ADMIN): Promise<Response> {
  return fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: key === null ? {} : { Authorization: `Bearer ${key}` } })
}

async function status(server: FlagServer): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as Record<string, any>
}

async function bulk(server: FlagServer, context: Record<string, unknown> = { targetingKey: 'u' }, headers: Record<string, string> = {}) {
  const response = await evaluate(server, context, headers)
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined }
}

const values = (body: any): Record<string, unknown> => Object.fromEntries((body.flags as Array<{ key: string; value: unknown }>).map((f) => [f.key, f.value]))

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

describe('§9 persistence in proxy mode: a context read back from the data dir against the --snapshot', () => {
  const limit = (value: number) => ({ ofrep: () => ({ flags: [{ key: 'limit', value, reason: 'STATIC' }] }) })
  const bootstrap = (value: number, fetchedAt: number) => JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'limit', value, reason: 'STATIC' }], fetchedAt })
  const definitions = (value: number, fetchedAt: number) =>
    JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt, version: 'build', definitions: { flags: { limit: { state: 'ENABLED', variants: { v: value }, defaultVariant: 'v' } } } })

  /** A data dir holding the upstream's answer for `anonymous` (limit 1), and the answer's fetchedAt. */
  async function savedAnswer() {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const upstream = await startUpstream(limit(1))
    const first = await proxyRelay(upstream, { dataDir })
    const answered = await bulk(first, { targetingKey: 'anonymous' })
    await first.close()
    upstream.set('reset')
    return { dir, dataDir, upstream, fetchedAt: answered.body.metadata.holdfast.fetchedAt as number }
  }

  for (const [kind, snapshotText] of [['a values snapshot (Bootstrap)', bootstrap], ['a definitions snapshot', definitions]] as const) {
    it(`${kind} made after the data dir's answer is served at a restart in an outage, not the older answer`, async () => {
      const { dir, dataDir, upstream, fetchedAt } = await savedAnswer()
      const snapshot = join(dir, 'fallback.json')
      // Built after the answer was saved (a deploy over an old volume), dated no later than now.
      await new Promise((r) => setTimeout(r, 10))
      const takenAt = Date.now()
      expect(takenAt).toBeGreaterThan(fetchedAt)
      await writeFile(snapshot, snapshotText(7, takenAt))
      const server = await proxyRelay(upstream, { dataDir, snapshot })
      const answer = await bulk(server, { targetingKey: 'anonymous' })
      expect(answer.status).toBe(200)
      expect(values(answer.body)).toEqual({ limit: 7 })
      expect(answer.body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
    })

    it(`${kind} made before the data dir's answer loses to it`, async () => {
      const { dir, dataDir, upstream, fetchedAt } = await savedAnswer()
      const snapshot = join(dir, 'fallback.json')
      await writeFile(snapshot, snapshotText(7, fetchedAt - 1000))
      const server = await proxyRelay(upstream, { dataDir, snapshot })
      const answer = await bulk(server, { targetingKey: 'anonymous' })
      expect(values(answer.body)).toEqual({ limit: 1 })
      expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt, stale: true })
    })
  }
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

describe('§9 holdfast-server snapshot (the built binary): exit code 1, the old file untouched', () => {
  const BIN = join(process.cwd(), 'packages/server/dist/bin.js')
  const run = (args: string[]) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'snapshot', ...args], { timeout: 15_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: stdout + stderr }),
      )
    })

  it('--flags FILE: an emptied, an invalid and a gutted file are refused', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    const out = join(dir, 'flags.snapshot.json')
    await writeFile(file, JSON.stringify(booleanFlags(10)))
    expect((await run(['--flags', file, '--out', out])).code).toBe(0)
    const written = await readFile(out, 'utf8')
    for (const text of ['{"flags": {}}', '{"flags": {"f0": {"state": "ENA', '<html>', JSON.stringify(booleanFlags(3))]) {
      await writeFile(file, text)
      const result = await run(['--flags', file, '--out', out])
      expect(result.code, text.slice(0, 30)).toBe(1)
      expect(await readFile(out, 'utf8'), text.slice(0, 30)).toBe(written)
    }
  })

  it('--upstream URL --context JSON: an empty, an HTML, an invalid and a shrunken answer are refused', async () => {
    const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `f${i}`, value: true, reason: 'STATIC' }))
    const upstream = await startUpstream({ ofrep: () => ({ flags: entries(6) }) })
    const out = join(await tempDir(), 'fallback.json')
    const args = ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out]
    expect((await run(args)).code).toBe(0)
    const written = await readFile(out, 'utf8')
    for (const behaviour of [
      { status: 200, json: { flags: [] } },
      { status: 200, text: '<!doctype html><title>Sign in</title>', contentType: 'text/html' },
      { status: 200, text: '{"flags": [', contentType: 'application/json' },
      { status: 200, json: {} },
      { ofrep: () => ({ flags: entries(2) }) },
    ] as const) {
      upstream.set(behaviour)
      const result = await run(args)
      expect(result.code, JSON.stringify(behaviour)).toBe(1)
      expect(await readFile(out, 'utf8')).toBe(written)
    }
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

describe('§9 snapshot --upstream --context writes a Bootstrap usable as fallback', () => {
  it('a client given it as `fallback`, its flag service down, shows its values', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'limit', value: 5, reason: 'STATIC', variant: 'five' }, { key: 'banner', value: { text: 'hi' }, reason: 'STATIC' }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const { runSnapshotCli } = await import('../../packages/server/src/snapshotCli')
    expect(await runSnapshotCli(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out], { out: () => {}, err: () => {} })).toBe(0)
    const { createClient } = await import('@holdfast/core')
    upstream.set({ status: 503, text: 'down' })
    const client = createClient({ url: upstream.url, context: { targetingKey: 'visitor-1' }, storage: 'memory', fallback: JSON.parse(await readFile(out, 'utf8')), refreshOnFocus: false, logger: { warn() {}, error() {} } })
    await client.start()
    expect(client.getValue('limit', 0)).toBe(5)
    expect(client.getConfig('banner')).toEqual({ text: 'hi' })
    expect(client.getDetails('limit', 0)).toMatchObject({ source: 'fallback', variant: 'five' })
    await client.close()
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
})
