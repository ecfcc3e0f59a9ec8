// The relay against an upstream that lies or breaks in the ways that do not look like an outage:
// a 304 that confirms something it was not asked about, a relay upstream whose freshness cannot be
// read, answers that inflate to gigabytes. Whatever it does, the relay serves its last known good
// and says honestly, in every answer and in /status and /metrics, how fresh that is.
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { describe, expect, it, vi } from 'vitest'
import { createGenerationStore, createUpstreamSource, makeSnapshot, type FlagServer, type FlagServerOptions } from '@holdfast/server'
import { evaluate, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor, type Behaviour, type FakeUpstream } from './relay-fakes'
import { useRedisFleet } from './redis-fleet'

// Upstreams that hang, drip or inflate take real seconds, more on a loaded machine (a full run in
// CI) than the 5 s default allows; each test's own bounds still hold.
vi.setConfig({ testTimeout: 30_000 })

async function relay(upstream: { url: string }, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger(), ...options })
}

async function bulk(server: FlagServer, context: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await evaluate(server, context, headers)
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined }
}

async function status(server: FlagServer): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as Record<string, any>
}

const { redisServer, relay: fleetRelay } = useRedisFleet()

const answers: Behaviour = {
  ofrep: (context) => ({ flags: [{ key: 'limit', value: 10, reason: 'STATIC' }, { key: 'greeting', value: `hi ${String(context.targetingKey)}`, reason: 'STATIC' }] }),
}

describe('the relay against an upstream that answers 304 for what it was not asked', () => {
  it('proxy mode: a 304 to a request that sent no If-None-Match (after a restart) does not make the data dir look fresh', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream(answers)
    const first = await relay(upstream, { dataDir: dir })
    const saved = await bulk(first, { targetingKey: 'u' })
    await first.close()
    // A confused cache in front of the upstream answers 304 to everything.
    upstream.set({ status: 304, text: '' })
    const second = await relay(upstream, { dataDir: dir })
    const answer = await bulk(second, { targetingKey: 'u' })
    expect(upstream.requests.at(-1)!.headers['if-none-match']).toBeUndefined()
    expect(answer.status).toBe(200)
    expect(answer.body.flags).toEqual(saved.body.flags)
    // Before: { source: 'upstream', fetchedAt: now, stale: false } for values nobody vouched for.
    expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt: saved.body.metadata.holdfast.fetchedAt, stale: true })
    expect(await status(second)).toMatchObject({ stale: true, upstream: { state: 'failing', lastError: { kind: 'invalid' } } })
  })

  it('proxy mode: a 304 naming another ETag than the one asked about confirms nothing', async () => {
    const upstream = await startUpstream(answers)
    const server = await relay(upstream)
    const fresh = await bulk(server, { targetingKey: 'u' })
    const asked = upstream.requests.length
    upstream.set({ status: 304, text: '', headers: { ETag: '"some-other-snapshot"' } })
    const answer = await bulk(server, { targetingKey: 'u' })
    expect(upstream.requests.length).toBe(asked + 1)
    expect(upstream.requests.at(-1)!.headers['if-none-match']).toMatch(/^"[0-9a-f]+"$/)
    expect(answer.body.flags).toEqual(fresh.body.flags)
    expect(answer.body.metadata.holdfast).toEqual({ source: 'upstream', fetchedAt: fresh.body.metadata.holdfast.fetchedAt, stale: true })
    // The same tag, weak or strong, still confirms.
    const tag = upstream.requests.at(-1)!.headers['if-none-match'] as string
    upstream.set({ status: 304, text: '', headers: { ETag: `W/${tag}` } })
    expect((await bulk(server, { targetingKey: 'u' })).body.metadata.holdfast.stale).toBe(false)
  })

  it('--flags-url: a 304 to a poll that sent no If-None-Match does not make a --snapshot look fresh', async () => {
    const dir = await tempDir()
    const snapshot = join(dir, 'flags.snapshot.json')
    const takenAt = Date.now() - 3_600_000
    await writeFile(snapshot, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: takenAt, version: 'x', definitions: booleanFlags(3, 'off') }))
    const upstream = await startUpstream({ status: 304, text: '' })
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 3600, snapshot, upstreamTimeoutMs: 2000, logger: recordingLogger() })
    // The first poll goes out at start; the snapshot is served meanwhile.
    await waitFor(async () => (await status(server)).upstream.lastAttemptAt !== undefined, 5000)
    expect(upstream.requests[0]!.headers['if-none-match']).toBeUndefined()
    const answer = await bulk(server, { targetingKey: 'u' })
    // Before: { source: 'url', fetchedAt: now, stale: false }.
    expect(answer.body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
    expect(await status(server)).toMatchObject({ source: 'snapshot', stale: true, upstream: { state: 'failing' } })
  })
})

describe('a relay in front of a relay whose answers are stale', () => {
  it('a 304 from the stale inner relay keeps the true age instead of moving it to now', async () => {
    const upstream = await startUpstream(answers)
    const inner = await relay(upstream)
    const outer = await relay(inner)
    const user = { targetingKey: 'g' }
    const fresh = await bulk(outer, user)
    upstream.set({ status: 503, text: '' })
    const first = await bulk(outer, user)
    expect(first.body.metadata.holdfast).toMatchObject({ stale: true })
    await new Promise((resolve) => setTimeout(resolve, 30))
    // The inner relay's held answer is the same body with the same tag: it answers 304.
    const second = await bulk(outer, user)
    expect(second.body.metadata.holdfast.stale).toBe(true)
    // Before: fetchedAt moved to the time of the 304, as if the inner relay had just vouched.
    expect(second.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(fresh.body.metadata.holdfast.fetchedAt)
    // /status and /metrics say what every answer says: stale.
    expect(await status(outer)).toMatchObject({ stale: true })
    expect(await (await fetch(`${outer.url}/metrics`)).text()).toMatch(/^holdfast_relay_stale 1$/m)
  })

  it('--redis: a stale answer one relay shares stays stale (and keeps its age) on the relay that takes it, through a 304', async () => {
    const upstream = await startUpstream(answers)
    const inner = await relay(upstream)
    const user = { targetingKey: 'r' }
    const first = await bulk(inner, user)
    upstream.set({ status: 503, text: '' })
    const redis = await redisServer()
    const proxy = () => fleetRelay(redis, { url: inner.url } as FakeUpstream, { flagsUrl: undefined, upstream: inner.url, pollIntervalSeconds: undefined })
    const a = await proxy()
    const b = await proxy()
    // a gets the inner relay's stale answer and shares it; b takes it from Redis.
    expect((await bulk(a.server, user)).body.metadata.holdfast).toMatchObject({ stale: true, fetchedAt: first.body.metadata.holdfast.fetchedAt })
    await waitFor(async () => (await status(b.server)).redis?.taken >= 1, 10_000)
    const asked = b.polls()
    // b asks the inner relay with the shared ETag; it answers 304 (the same stale body).
    const fromB = await bulk(b.server, user)
    expect(b.polls()).toBe(asked + 1)
    // Before: { stale: false, fetchedAt: now }, since the record carried no stale bit.
    expect(fromB.body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: true, fetchedAt: first.body.metadata.holdfast.fetchedAt })
  }, 60_000)

  it('holdfast-server snapshot --upstream of a stale relay dates the Bootstrap by that relay\'s fetchedAt, not the CI run', async () => {
    const upstream = await startUpstream(answers)
    const inner = await relay(upstream)
    const fresh = await bulk(inner, { targetingKey: 'anonymous' })
    upstream.set({ status: 503, text: '' })
    const out = join(await tempDir(), 'fallback.json')
    const result = await makeSnapshot({ upstream: inner.url, context: { targetingKey: 'anonymous' }, out, now: () => fresh.body.metadata.holdfast.fetchedAt + 86_400_000 })
    expect(result.ok).toBe(true)
    const bootstrap = JSON.parse(await readFile(out, 'utf8'))
    expect(bootstrap.flags.map((f: { value: unknown }) => f.value)).toEqual([10, 'hi anonymous'])
    // Before: the CI run's time, a day younger than the values, which the relay serving this
    // Bootstrap would then pass on as their fetchedAt.
    expect(bootstrap.fetchedAt).toBe(fresh.body.metadata.holdfast.fetchedAt)
    for (const flag of bootstrap.flags) expect(flag.updatedAt).toBeLessThanOrEqual(bootstrap.fetchedAt)
  })

  it('an unreadable fetchedAt or stale bit never turns a stale answer fresh, nor into a date before 1970', async () => {
    const cases: Array<[string, unknown]> = [
      ['fetchedAt a string', { source: 'upstream', stale: true, fetchedAt: 'yesterday' }],
      ['fetchedAt null (NaN in JSON)', { source: 'upstream', stale: true, fetchedAt: null }],
      ['fetchedAt negative', { source: 'upstream', stale: true, fetchedAt: -1000 }],
      ['stale a string', { source: 'upstream', stale: 'true', fetchedAt: 1_700_000_000_000 }],
    ]
    for (const [what, holdfast] of cases) {
      const upstream = await startUpstream({ status: 200, json: { flags: [{ key: 'limit', value: 10, reason: 'STATIC' }], metadata: { holdfast } } })
      const server = await relay(upstream)
      const before = Date.now()
      const answer = await bulk(server, { targetingKey: 'z' })
      expect(answer.status, what).toBe(200)
      expect(answer.body.metadata.holdfast.stale, what).toBe(true)
      expect(answer.body.metadata.holdfast.fetchedAt, what).toBeGreaterThan(0)
      expect(answer.body.metadata.holdfast.fetchedAt, what).toBeLessThanOrEqual(Date.now())
      if (what === 'stale a string') expect(answer.body.metadata.holdfast.fetchedAt, what).toBe(1_700_000_000_000)
      else expect(answer.body.metadata.holdfast.fetchedAt, what).toBeGreaterThanOrEqual(before)
      const s = await status(server)
      expect(s.stale, what).toBe(true)
      expect(s.ageSeconds, what).toBeLessThan(if1970(what))
    }
  })
})

// The age is bounded by when the answer was taken, unless the upstream named an older true time.
const if1970 = (what: string) => (what === 'stale a string' ? Infinity : 60)

describe('the relay reads what the browser client reads', () => {
  it('an OFREP answer that starts with a UTF-8 byte order mark is an answer (fetch().json() in the browser skips it too)', async () => {
    const upstream = await startUpstream({ status: 200, text: `\ufeff${JSON.stringify({ flags: [{ key: 'limit', value: 10, reason: 'STATIC' }] })}`, contentType: 'application/json; charset=utf-8' })
    const server = await relay(upstream)
    const answer = await bulk(server, { targetingKey: 'bom' })
    // Before: 503, "the body is not JSON", for every context, with the upstream up.
    expect(answer.status).toBe(200)
    expect(answer.body.flags).toEqual([{ key: 'limit', value: 10, reason: 'STATIC' }])
    expect(answer.body.metadata.holdfast.stale).toBe(false)
  })

  it('a value no JSON can carry (1e400) is that flag\'s PARSE_ERROR, and one nested metadata entry costs only itself', async () => {
    const good = { flags: [{ key: 'limit', value: 10, reason: 'STATIC' }, { key: 'owner', value: true, reason: 'STATIC', metadata: { team: 'a', weight: 1 } }] }
    const upstream = await startUpstream({ status: 200, text: JSON.stringify(good), contentType: 'application/json' })
    const server = await relay(upstream)
    expect((await bulk(server, { targetingKey: 'u' })).body.flags).toEqual(good.flags)
    // 1e400 parses as Infinity; served as is, JSON.stringify wrote null: every browser got its
    // default (the last known good lost). The metadata's one nested entry (a vendor's rules) took
    // `team` and `weight` with it.
    upstream.set({
      status: 200,
      text: '{"flags":[{"key":"limit","value":1e400,"reason":"STATIC"},{"key":"owner","value":true,"reason":"STATIC","metadata":{"team":"a","rules":{"x":1},"weight":1,"huge":-1e400}}]}',
      contentType: 'application/json',
    })
    // A user held: the flag's last known good value stays. A new user: the flag's error (the
    // browser keeps its own last known good, or shows the caller's default), never null as a value.
    const held = await bulk(server, { targetingKey: 'u' })
    expect(held.status).toBe(200)
    expect(held.body.flags).toEqual([{ key: 'limit', value: 10, reason: 'STALE', metadata: { errorCode: 'PARSE_ERROR' } }, good.flags[1]])
    const fresh = await bulk(server, { targetingKey: 'v' })
    expect(fresh.body.flags).toEqual([{ key: 'limit', errorCode: 'PARSE_ERROR' }, good.flags[1]])
  })

  // CONTRACT §9 (proxy mode merges as the client does, §4: per-flag errors keep values).
  it('a failure entry whose errorCode is not a string (a numeric 404) is that flag\'s PARSE_ERROR, not a success with no value', async () => {
    const good = { flags: [{ key: 'limit', value: 10, reason: 'STATIC' }, { key: 'owner', value: true, reason: 'STATIC' }] }
    const upstream = await startUpstream({ status: 200, text: JSON.stringify(good), contentType: 'application/json' })
    const server = await relay(upstream)
    expect((await bulk(server, { targetingKey: 'u' })).body.flags).toEqual(good.flags)
    // Before: the 404 was dropped as a field of the wrong type, leaving `{ key }`: the relay held
    // and served `limit` without a value (every browser's default, fresh), its 10 lost.
    upstream.set({ status: 200, text: '{"flags":[{"key":"limit","errorCode":404},{"key":"owner","value":true,"reason":"STATIC"}]}', contentType: 'application/json' })
    const held = await bulk(server, { targetingKey: 'u' })
    expect(held.body.flags).toEqual([{ key: 'limit', value: 10, reason: 'STALE', metadata: { errorCode: 'PARSE_ERROR' } }, good.flags[1]])
    const fresh = await bulk(server, { targetingKey: 'v' })
    expect(fresh.body.flags).toEqual([{ key: 'limit', errorCode: 'PARSE_ERROR' }, good.flags[1]])
  })

  it('an upstream that writes every optional field empty (errorCode "", metadata null: Go, Java) is read as success; with no value, as PARSE_ERROR', async () => {
    const empty = { reason: 'STATIC', variant: '', errorCode: '', errorDetails: '', metadata: null }
    const upstream = await startUpstream({ status: 200, json: { flags: [{ key: 'limit', value: 10, ...empty }, { key: 'owner', value: true, ...empty }] } })
    const server = await relay(upstream)
    // Before: both entries were failures with the code "": a 200 with no values for a new user, and
    // nothing the upstream changed ever reached a user already held.
    const first = await bulk(server, { targetingKey: 'u' })
    expect(first.body.flags.map((f: Record<string, unknown>) => [f.key, f.value, f.errorCode])).toEqual([['limit', 10, undefined], ['owner', true, undefined]])
    upstream.set({ status: 200, json: { flags: [{ key: 'limit', value: 20, ...empty, metadata: {} }, { key: 'owner', ...empty }] } })
    const held = await bulk(server, { targetingKey: 'u' })
    expect(held.body.flags.find((f: { key: string }) => f.key === 'limit')).toMatchObject({ value: 20, reason: 'STATIC' })
    expect(held.body.flags.find((f: { key: string }) => f.key === 'limit').errorCode).toBeUndefined()
    // `errorCode: ""` with no value: the value held stays, as the browser client keeps its own.
    expect(held.body.flags.find((f: { key: string }) => f.key === 'owner')).toEqual({ key: 'owner', value: true, reason: 'STALE', variant: '', metadata: { errorCode: 'PARSE_ERROR' } })
    const fresh = await bulk(server, { targetingKey: 'v' })
    expect(fresh.body.flags.find((f: { key: string }) => f.key === 'owner')).toMatchObject({ key: 'owner', errorCode: 'PARSE_ERROR' })
  })
})

describe('the relay against answers nested deeper than a schema can recurse', () => {
  // 3,000 levels: JSON.parse reads it (100,000 would already fail there), zod's recursion does not.
  const deep = `{"flags":[{"key":"limit","value":${'['.repeat(3000)}${']'.repeat(3000)}},{"key":"greeting","value":"hi"}]}`

  it('starts (not ready, 503) instead of failing to start when its probe gets one', async () => {
    const upstream = await startUpstream({ status: 200, text: deep, contentType: 'application/json' })
    // Before: createFlagServer rejected with "RangeError: Maximum call stack size exceeded".
    const server = await relay(upstream)
    expect((await bulk(server, { targetingKey: 'new' })).status).toBe(503)
    expect(await status(server)).toMatchObject({ ready: false, upstream: { state: 'failing', lastError: { kind: 'too-large' } } })
  })

  it('keeps serving what it holds, through a restart from the data dir and a refresh round', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream(answers)
    const first = await relay(upstream, { dataDir: dir })
    const good = await bulk(first, { targetingKey: 'd' })
    upstream.set({ status: 200, text: deep, contentType: 'application/json' })
    expect((await bulk(first, { targetingKey: 'd' })).body).toMatchObject({ flags: good.body.flags, metadata: { holdfast: { stale: true } } })
    await first.close()
    // Before: the start-up probe's rejection went unhandled (a crash under Node's default).
    const second = await relay(upstream, { dataDir: dir, adminKey: 'admin' })
    const refresh = await fetch(`${second.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin' } })
    expect(refresh.status).toBe(502)
    expect((await bulk(second, { targetingKey: 'd' })).body).toMatchObject({ flags: good.body.flags, metadata: { holdfast: { source: 'data-dir', stale: true } } })
  })
})

describe('a data dir holding a value nested deeper than a schema can recurse', () => {
  it('is skipped for the previous good generation instead of stopping the relay from starting', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir })
    const record = (value: string) => `{"kind":"contexts","contexts":[{"key":"k","fetchedAt":1700000000000,"flags":[{"key":"limit","value":${value},"stale":false}]}]}`
    await store.save(record('10'))
    // Written by hand, a peer's bug or a relay whose reader allowed one level more than this one.
    await store.save(record(`${'['.repeat(5000)}${']'.repeat(5000)}`))
    const upstream = await startUpstream({ status: 503, text: '' })
    const logger = recordingLogger()
    const server = await relay(upstream, { dataDir: dir, logger })
    // Before: the schema's RangeError gave up the whole data dir ("cannot read the data dir"):
    // nothing served, 503 for every context while the upstream is down.
    expect(await status(server)).toMatchObject({ ready: true, contexts: 1 })
    expect((await bulk(server, { targetingKey: 'anyone' })).status).toBe(503)
    expect(logger.lines.join('\n')).toMatch(/skipped data-dir generation/)
  })
})

describe('the relay against compressed answers', () => {
  it('a decompression bomb (gzip, br, deflate) is cut at the body cap while it inflates; a body that is not what its encoding says is refused', async () => {
    // 64 MiB of spaces inside a JSON string: a few hundred kB (gzip) or bytes (br) on the wire.
    const inflated = Buffer.concat([Buffer.from('{"flags":[{"key":"limit","value":"'), Buffer.alloc(64 * 1024 * 1024, 0x20), Buffer.from('"}]}')])
    const bombs: Record<string, Buffer> = { gzip: gzipSync(inflated), br: brotliCompressSync(inflated), deflate: deflateSync(inflated) }
    let mode = 'good'
    const upstream = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        const good = JSON.stringify({ flags: [{ key: 'limit', value: 10, reason: 'STATIC' }] })
        if (mode === 'good') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(good)
        // Says gzip, sends plain JSON.
        if (mode === 'lie') return void res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }).end(good)
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': mode }).end(bombs[mode])
      })
    })
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done))
    try {
      const server = await relay({ url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` })
      const good = await bulk(server, { targetingKey: 'q' })
      for (const encoding of ['gzip', 'br', 'deflate', 'lie']) {
        mode = encoding
        const rss = process.memoryUsage().rss
        const answer = await bulk(server, { targetingKey: 'q' })
        expect(answer.status, encoding).toBe(200)
        expect(answer.body.flags, encoding).toEqual(good.body.flags)
        expect(answer.body.metadata.holdfast.stale, encoding).toBe(true)
        // Never the 64 MiB (and its copies: the joined buffer, the string) in memory: cut at 16 MiB as it streams.
        expect(process.memoryUsage().rss - rss, encoding).toBeLessThan(64 * 1024 * 1024)
      }
      expect((await status(server)).refusedBy).toMatchObject({ 'too-large': 3 })
    } finally {
      upstream.closeAllConnections()
      upstream.close()
    }
  }, 30_000)
})

describe('the relay against an upstream that rate-limits it', () => {
  it('a 429 with Retry-After pauses asking with those credentials (held answers go out stale), at most a minute, and never another key', async () => {
    const upstream = await startUpstream(answers)
    let clock = 1_800_000_000_000
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    await source.open()
    try {
      const ask = (targetingKey: string, key: string) => source.evaluate!({ context: { targetingKey }, headers: { authorization: `Bearer ${key}` } })
      const fresh = await ask('u', 'limited')
      expect(fresh.status).toBe(200)
      expect(await ask('u', 'other')).toMatchObject({ status: 200 })
      // Ten years, as a rate limiter with a bug might say.
      const limit: Behaviour = { status: 429, text: '', headers: { 'Retry-After': String(10 * 365 * 86_400) } }
      upstream.set((request) => (request.headers.authorization === 'Bearer limited' ? limit : answers))
      expect(await ask('u', 'limited')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
      const asked = upstream.requests.length
      // Before: each of these was one more upstream request, each answered 429.
      for (let i = 0; i < 10; i++) {
        clock += 1000
        const held = await ask('u', 'limited')
        expect(held.status).toBe(200)
        expect((held.body as any).flags).toEqual((fresh.body as any).flags)
        expect((held.body as any).metadata.holdfast.stale).toBe(true)
        expect((await ask(`never-seen-${i}`, 'limited')).status).toBe(503)
      }
      expect(upstream.requests.length).toBe(asked)
      // Another key is not rate limited.
      expect(await ask('u', 'other')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
      expect(upstream.requests.length).toBe(asked + 1)
      // A minute after the 429, whatever it said, the upstream is asked again.
      clock += 50_000
      await ask('u', 'limited')
      expect(upstream.requests.length).toBe(asked + 2)
      // `Retry-After: 0` is no pause (and, with requests driven by clients, no loop either).
      upstream.set((request) => (request.headers.authorization === 'Bearer limited' ? { ...limit, headers: { 'Retry-After': '0' } } : answers))
      clock += 60_000
      await ask('u', 'limited')
      await ask('u', 'limited')
      const limited = upstream.requests.slice(asked + 2)
      expect(limited.filter((request) => request.headers.authorization === 'Bearer limited')).toHaveLength(2)
      // Beside them at most one canary (no other key accepted within the minute, the 429 could be
      // the upstream's own: another key's context, answered, says it is not).
      expect(limited.length).toBeLessThanOrEqual(3)
    } finally {
      await source.close()
    }
  })

  it('a user with nothing held gets a 503 whose Retry-After says when the relay will ask again, not 5 s during a 30 s pause', async () => {
    const upstream = await startUpstream(answers)
    let clock = 1_800_000_000_000
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    await source.open()
    try {
      const ask = (targetingKey: string, key: string) => source.evaluate!({ context: { targetingKey }, headers: { authorization: `Bearer ${key}` } })
      upstream.set((request) => (request.headers.authorization === 'Bearer limited' ? { status: 429, text: '', headers: { 'Retry-After': '30' } } : { status: 503, text: 'down' }))
      // Before: "Retry-After: 5" while nothing would be asked for 30 s, so a client honouring it
      // came back five more times to 503s the relay answered without asking anyone.
      expect(await ask('new-1', 'limited')).toMatchObject({ status: 503, headers: { 'Retry-After': '30' } })
      clock += 10_000
      expect(await ask('new-2', 'limited')).toMatchObject({ status: 503, headers: { 'Retry-After': '20' } })
      // Another key is not paused: the usual 5 s.
      expect(await ask('new-3', 'other')).toMatchObject({ status: 503, headers: { 'Retry-After': '5' } })
      // A clock that went back an hour: the pause is not an hour long now (it ends, and the
      // upstream is asked again), and no Retry-After says an hour either.
      clock -= 3_600_000
      const asked = upstream.requests.length
      expect(await ask('new-5', 'limited')).toMatchObject({ status: 503, headers: { 'Retry-After': '30' } })
      expect(upstream.requests.length).toBe(asked + 1)
      clock += 3_600_000 - 10_000
      // Past the pause, the usual again.
      clock += 20_000
      upstream.set({ status: 503, text: 'down' })
      expect(await ask('new-4', 'limited')).toMatchObject({ status: 503, headers: { 'Retry-After': '5' } })
    } finally {
      await source.close()
    }
  })
})

describe('--flags-url against an upstream that asks for a pause', () => {
  it('a 429 or 503 with Retry-After holds the scheduled polls back (at most a minute); the values held are served meanwhile', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3) })
    let clock = 1_800_000_000_000
    // Each answer reaches the relay 100 ms after the upstream took its request (a loaded machine, a
    // slow network), so the moment the upstream has a request is never taken for the moment the
    // relay has its answer: the clock moves only once the answer is taken (see below).
    const lateFetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      const response = await fetch(input, init)
      const text = await response.text()
      await new Promise((resolve) => setTimeout(resolve, 100))
      return new Response(response.status === 304 ? null : text, { status: response.status, headers: response.headers })
    }) as typeof fetch
    const source = urlSourceFor(upstream, { pollIntervalMs: 20, now: () => clock, fetch: lateFetch })
    await source.open()
    try {
      expect(source.current()?.flagCount).toBe(3)
      for (const status of [429, 503]) {
        upstream.set({ status, text: '', headers: { 'Retry-After': String(10 * 365 * 86_400) } })
        // (Past the pause the previous round left.)
        clock += 60_000
        await waitFor(() => (source.relayStatus().upstream.lastError as { httpStatus?: number } | undefined)?.httpStatus === status, 15_000)
        const asked = upstream.requests.length
        // Twenty-odd poll intervals. Before: a request every 20 ms, each answered with the same pause.
        await new Promise((resolve) => setTimeout(resolve, 500))
        expect(upstream.requests.length, String(status)).toBe(asked)
        expect(source.current()?.flagCount).toBe(3)
        // A minute later, whatever it said, the polls go out again.
        clock += 60_000
        await waitFor(() => upstream.requests.length > asked, 15_000)
        // And that poll's answer (the same pause) is taken before the clock moves again: the upstream
        // had the request, the relay may not have its answer yet. Taken after the next move (a
        // loaded machine), it set its pause from the moved clock: the 503 step waited for a poll a
        // minute away that never came, and the final step likewise (53905e3 moved the clock at
        // each look there instead, which here would end the pause the 500 ms check watches).
        await waitFor(() => source.relayStatus().upstream.lastAttemptAt === clock, 15_000)
      }
      upstream.set({ document: booleanFlags(3) })
      clock += 60_000
      await waitFor(() => source.relayStatus().upstream.state === 'ok', 15_000)
    } finally {
      await source.close()
    }
  })
})

describe('the relay against a slow upstream and a burst of new contexts', () => {
  /** A fake upstream answering after `delayMs` (a targetingKey starting `quick` at once), counting the requests it holds at once. */
  async function slowUpstream(delayMs: number) {
    const seen = { inFlight: 0, max: 0, total: 0 }
    const server = createServer((req, res) => {
      let text = ''
      req.on('data', (chunk) => (text += chunk))
      req.on('end', () => {
        seen.total++
        seen.max = Math.max(seen.max, ++seen.inFlight)
        // Answered, or given up by the relay (a timeout): no longer held open.
        res.on('close', () => seen.inFlight--)
        const context = (JSON.parse(text) as { context: { targetingKey: string } }).context
        setTimeout(() => {
          if (!res.destroyed) res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ flags: [{ key: 'greeting', value: `hi ${context.targetingKey}`, reason: 'STATIC' }] }))
        }, context.targetingKey.startsWith('quick') ? 0 : delayMs)
      })
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', 1024, done))
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => (server.closeAllConnections(), server.close()) }
  }

  it('asks the upstream at most maxUpstreamRequests at a time; every context still gets its own values', async () => {
    const upstream = await slowUpstream(50)
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 20_000, maxUpstreamRequests: 8, log: recordingLogger() })
    await source.open()
    try {
      const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => source.evaluate!({ context: { targetingKey: `u${i}` }, headers: {} })))
      answers.forEach((answer, i) => expect((answer.body as any).flags).toEqual([{ key: 'greeting', value: `hi u${i}`, reason: 'STATIC' }]))
      expect(upstream.seen.total).toBe(401)
      // Before: 400 requests at once.
      expect(upstream.seen.max).toBeLessThanOrEqual(8)
    } finally {
      await source.close()
      upstream.close()
    }
  })

  it('many upstream requests at once are no "possible memory leak" warning in the operator\'s log', async () => {
    const upstream = await slowUpstream(50)
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`)
    process.on('warning', onWarning)
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 20_000, log: recordingLogger() })
    await source.open()
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => source.evaluate!({ context: { targetingKey: `w${i}` }, headers: {} })))
      expect(upstream.seen.max).toBeGreaterThan(10)
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve))
      // Before: "MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]".
      expect(warnings.filter((w) => w.includes('MaxListenersExceeded'))).toEqual([])
    } finally {
      process.off('warning', onWarning)
      await source.close()
      upstream.close()
    }
  })

  it('a context waiting for a turn gets its answer (or 503) within the upstream timeout, not a timeout of its own after the wait', async () => {
    const upstream = await slowUpstream(60_000)
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 400, maxUpstreamRequests: 1, log: recordingLogger() })
    await source.open()
    try {
      const started = Date.now()
      const timed = (key: string) => source.evaluate!({ context: { targetingKey: key }, headers: {} }).then((answer) => ({ answer, ms: Date.now() - started }))
      const [first, second] = await Promise.all([timed('a'), timed('b')])
      expect([first.answer.status, second.answer.status]).toEqual([503, 503])
      // The one that waited for the turn is answered about when the first is (each caller waits the
      // timeout at most), not a whole timeout later: compared with the first, so a loaded machine
      // that slows both cannot fail it, and the old wait-then-time-out (2 × 400 ms) cannot pass.
      expect(second.ms).toBeLessThan(first.ms + 300)
      // Not `seen.max`: the relay frees the slot when it gives the first request up, and the
      // upstream may see the second before the first connection's close reaches it (a full run's
      // load made that 2). The bound itself is the test above.
      expect(upstream.seen.total).toBeLessThanOrEqual(2)
    } finally {
      await source.close()
      upstream.close()
    }
  })

  // Set back: NTP steps the relay's clock back an hour just before the third minute's burst.
  // Before, the warning was silent for the hour (the last one looked an hour ahead); the minute is
  // now on the steady clock (a step back counts as no time).
  it.each([
    ['', undefined],
    [' (the clock set back an hour in the third minute)', 2],
  ])('every slot taken for minutes: warns once a minute while it lasts, not once ever, not once per request%s', async (_, stepBackAt) => {
    const upstream = await slowUpstream(60_000)
    let clock = 1_000_000
    const log = recordingLogger()
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 100, maxUpstreamRequests: 1, log, now: () => clock })
    await source.open()
    const warnings = () => log.lines.filter((line) => line.includes('no upstream request could start')).length
    try {
      // Five minutes of steady overload: each minute, three users at once where one slot is free.
      for (let minute = 0; minute < 5; minute++) {
        // The timeouts of the minute before opened the breaker (relay-breaker.test.ts): nothing but
        // its probe would go upstream. A user the upstream answers at once, asked as the probe once
        // the others have given up (and past the longest wait), closes it, so each minute's burst
        // meets the slots again.
        if (minute > 0) {
          await waitFor(() => upstream.seen.inFlight === 0 && source.relayStatus().upstream.breaker?.probing !== true, 2000)
          clock += 31_000
          expect((await source.evaluate!({ context: { targetingKey: `quick${minute}` }, headers: {} })).status).toBe(200)
        }
        if (minute === stepBackAt) clock -= 3600_000
        const answers = await Promise.all(['a', 'b', 'c'].map((key) => source.evaluate!({ context: { targetingKey: `${key}${minute}` }, headers: {} })))
        for (const answer of answers) expect(answer.status).toBe(503)
        expect(warnings(), `minute ${minute}`).toBe(minute + 1)
        clock += 20_000
        await Promise.all(['d', 'e'].map((key) => source.evaluate!({ context: { targetingKey: `${key}${minute}` }, headers: {} })))
        expect(warnings(), `minute ${minute}, 20 s later`).toBe(minute + 1)
        clock += 41_000
      }
      expect((await source.relayStatus()).upstream.state).not.toBe('ok')
    } finally {
      await source.close()
      upstream.close()
    }
  })
})

describe('the relay against an upstream that guts one context', () => {
  it('FLAG_NOT_FOUND for most of the flags held is refused like a clean answer that drops them (--max-shrink)', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `kill-switch-${i}`)
    const upstream = await startUpstream({ status: 200, json: { flags: keys.map((key) => ({ key, value: true, reason: 'STATIC' })) } })
    const server = await relay(upstream)
    const user = { targetingKey: 'k' }
    const good = await bulk(server, user)
    expect(good.body.flags).toHaveLength(10)
    // A rules engine that lost most of its configuration: one flag answered, nine "not found".
    upstream.set({ status: 200, json: { flags: keys.map((key, i) => (i === 0 ? { key, value: true, reason: 'STATIC' } : { key, errorCode: 'FLAG_NOT_FOUND' })) } })
    const gutted = await bulk(server, user)
    // Before: one flag served, fresh; the other nine fell back to the callers' defaults.
    expect(gutted.body.flags.map((f: { key: string }) => f.key)).toEqual(keys)
    expect(gutted.body.metadata.holdfast.stale).toBe(true)
    expect((await status(server)).refusedBy).toMatchObject({ shrink: 1 })
    // Removing a few flags the upstream no longer has is still applied.
    upstream.set({ status: 200, json: { flags: keys.map((key, i) => (i < 8 ? { key, value: true, reason: 'STATIC' } : { key, errorCode: 'FLAG_NOT_FOUND' })) } })
    const trimmed = await bulk(server, user)
    expect(trimmed.body.flags).toHaveLength(8)
    expect(trimmed.body.metadata.holdfast.stale).toBe(false)
  })
})

describe('two credentials, one context', () => {
  it('never see each other\'s values: not after a restart from the data dir, not through the last-known-good path', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream((request) => ({ status: 200, json: { flags: [{ key: 'plan', value: `plan of ${String(request.headers.authorization)}`, reason: 'STATIC' }] } }))
    const first = await relay(upstream, { dataDir: dir })
    const user = { targetingKey: 'same-user' }
    expect((await bulk(first, user, { Authorization: 'Bearer A' })).body.flags[0].value).toBe('plan of Bearer A')
    expect((await bulk(first, user, { Authorization: 'Bearer B' })).body.flags[0].value).toBe('plan of Bearer B')
    await first.close()
    upstream.set({ status: 503, text: '' })
    const second = await relay(upstream, { dataDir: dir })
    expect((await bulk(second, user, { Authorization: 'Bearer A' })).body).toMatchObject({ flags: [{ value: 'plan of Bearer A' }], metadata: { holdfast: { source: 'data-dir', stale: true } } })
    expect((await bulk(second, user, { Authorization: 'Bearer B' })).body).toMatchObject({ flags: [{ value: 'plan of Bearer B' }], metadata: { holdfast: { source: 'data-dir', stale: true } } })
    expect((await bulk(second, user, { Authorization: 'Bearer C' })).status).toBe(503)
    expect((await bulk(second, user)).status).toBe(503)
  })
})
