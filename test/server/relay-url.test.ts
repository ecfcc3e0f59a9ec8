// --flags-url: flagd definitions over HTTP, polled with If-None-Match. Nothing the upstream does
// can wipe what is served; every refusal is counted and visible; a restart serves the data dir
// at once; with nothing to serve the relay says 503, never an empty 200 or a 401.
import { readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import { encodeGeneration } from '../../packages/server/src/flags/generations'
import { evaluate, flagsByKey, recordingLogger, startServer, tempDir } from './helpers'
import { booleanFlags, startUpstream, type Behaviour, type FakeUpstream } from './relay-fakes'

const ADMIN = 'admin-secret'

/** A relay on --flags-url that polls only when told to (refresh), so each step is deterministic. */
async function relay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 3600, adminKey: ADMIN, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })
}

async function refresh(server: FlagServer, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}/holdfast/v1/refresh`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

async function status(server: FlagServer): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as Record<string, any>
}

async function bulk(server: FlagServer, targetingKey = 'user-1'): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await evaluate(server, { targetingKey })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined }
}

const values = (body: any) => Object.fromEntries((body.flags as Array<{ key: string; value: unknown }>).map((f) => [f.key, f.value]))


/** A flags file and a data dir holding one generation of it (a server was started on them once). */
async function savedGeneration(count: number, variant: 'on' | 'off' = 'on'): Promise<{ dir: string; file: string; dataDir: string }> {
  const dir = await tempDir()
  const file = join(dir, 'flags.json')
  const dataDir = join(dir, 'data')
  await writeFile(file, JSON.stringify(booleanFlags(count, variant)))
  await (await startServer({ flags: file, dataDir, logger: recordingLogger() })).close()
  return { dir, file, dataDir }
}
describe('--flags-url', () => {
  it('serves the definitions, revalidates with If-None-Match, and applies a change', async () => {
    const upstream = await startUpstream({ document: booleanFlags(4) })
    const server = await relay(upstream)
    const first = await bulk(server)
    expect(first.status).toBe(200)
    expect(values(first.body)).toEqual({ f0: true, f1: true, f2: true, f3: true })
    expect(first.body.metadata.holdfast).toEqual({ source: 'upstream', fetchedAt: expect.any(Number), stale: false })
    expect(upstream.requests).toHaveLength(1)
    expect(upstream.requests[0].headers['if-none-match']).toBeUndefined()

    // Unchanged: the upstream's ETag goes back and a 304 confirms what is held.
    expect(await refresh(server)).toMatchObject({ status: 200, body: { outcome: 'unchanged', changed: [] } })
    expect(upstream.requests[1].headers['if-none-match']).toMatch(/^"/)
    const confirmed = await bulk(server)
    expect(confirmed.body.metadata.holdfast.fetchedAt).toBeGreaterThanOrEqual(first.body.metadata.holdfast.fetchedAt)

    upstream.set({ document: { flags: { ...booleanFlags(4).flags, f2: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off' } } } })
    const changed = await refresh(server)
    expect(changed).toMatchObject({ status: 200, body: { outcome: 'applied', changed: ['f2'], version: expect.any(String) } })
    expect(values((await bulk(server)).body).f2).toBe(false)
    expect((await status(server)).version).toBe(changed.body.version)
  })

  it('polls on its own every --poll-interval', async () => {
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const server = await relay(upstream, { pollIntervalSeconds: 0.05 })
    upstream.set({ document: booleanFlags(2, 'off') })
    const started = Date.now()
    while (values((await bulk(server)).body).f0 !== false) {
      if (Date.now() - started > 10_000) throw new Error('the change was never polled')
      await new Promise((r) => setTimeout(r, 25))
    }
    expect(upstream.requests.length).toBeGreaterThanOrEqual(2)
  })

  it('keeps serving through every kind of upstream failure, counts each refusal, and says it is stale', async () => {
    const upstream = await startUpstream({ document: booleanFlags(10) })
    const server = await relay(upstream)
    const good = await bulk(server)
    const failures: Array<[string, Behaviour, string, string]> = [
      ['503', { status: 503, text: 'down' }, 'http', 'failing'],
      ['500 with a JSON body', { status: 500, json: { flags: {} } }, 'http', 'failing'],
      ['a hang', 'hang', 'timeout', 'failing'],
      ['a connection reset', 'reset', 'network', 'failing'],
      ['an HTML login page', { status: 200, text: '<!doctype html><title>Sign in</title>', contentType: 'text/html' }, 'invalid', 'failing'],
      ['truncated JSON', { status: 200, text: '{"flags": {"f0": {"state": "ENA', contentType: 'application/json' }, 'invalid', 'failing'],
      ['{}', { status: 200, json: {} }, 'invalid', 'failing'],
      ['{"flags": {}}', { status: 200, json: { flags: {} } }, 'empty', 'failing'],
      ['a document dropping 90% of the flags', { document: booleanFlags(1) }, 'shrink', 'failing'],
      ['a flag with an unknown state', { document: { flags: { ...booleanFlags(10).flags, f0: { state: 'ON', variants: { on: true }, defaultVariant: 'on' } } } }, 'invalid', 'failing'],
      ['a variant nested 100,000 deep', { status: 200, text: `{"flags":{"f0":{"state":"ENABLED","variants":{"on":${'['.repeat(100_000)}${']'.repeat(100_000)}},"defaultVariant":"on"}}}`, contentType: 'application/json' }, 'invalid', 'failing'],
      ['401', { status: 401, json: { error: 'expired token' } }, 'unauthorized', 'unauthorized'],
      ['403', { status: 403, text: '' }, 'unauthorized', 'unauthorized'],
    ]
    let refused = 0
    for (const [what, behaviour, kind, state] of failures) {
      upstream.set(behaviour)
      const result = await refresh(server)
      expect(result.status, what).toBe(502)
      expect(result.body, what).toMatchObject({ error: { kind } })
      const answer = await bulk(server)
      expect(answer.status, what).toBe(200)
      expect(answer.body.flags, what).toEqual(good.body.flags)
      expect(answer.body.metadata.holdfast, what).toEqual({ source: 'upstream', fetchedAt: good.body.metadata.holdfast.fetchedAt, stale: true })
      const now = await status(server)
      expect(now, what).toMatchObject({ ready: true, stale: true, refused: ++refused, upstream: { state, lastError: { kind } } })
      expect((await fetch(`${server.url}/readyz`)).status, what).toBe(200)
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/holdfast_relay_upstream_state\{state="unauthorized"\} 1/)
    expect(metrics).toMatch(/holdfast_relay_refused_total\{reason="shrink"\} 1/)
    expect(metrics).toMatch(/holdfast_relay_stale 1/)
    expect(metrics).toMatch(/holdfast_relay_served_age_seconds \d/)

    // Recovery: fresh again, nothing lost on the way.
    upstream.set({ document: booleanFlags(10) })
    expect((await refresh(server)).body).toMatchObject({ outcome: 'unchanged' })
    const recovered = await bulk(server)
    expect(recovered.body.metadata.holdfast.stale).toBe(false)
    expect((await status(server)).upstream).toMatchObject({ state: 'ok', lastSuccessAt: expect.any(Number) })
  })

  it('with nothing to serve and the upstream down: 503 + Retry-After, not ready, never an empty 200 or a 401', async () => {
    const upstream = await startUpstream({ status: 401, text: 'no' })
    const server = await relay(upstream, { apiKey: 'client-key' })
    const answer = await evaluate(server, { targetingKey: 'u' }, { Authorization: 'Bearer client-key' })
    expect(answer.status).toBe(503)
    expect(answer.headers.get('retry-after')).toMatch(/^\d+$/)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
    expect((await fetch(`${server.url}/holdfast/v1/status`, { headers: { 'X-API-Key': 'client-key' } }).then((r) => r.json())) as object).toMatchObject({ ready: false, source: 'none', upstream: { state: 'unauthorized' } })
    for (const behaviour of [{ status: 200, json: { flags: {} } }, { status: 200, json: {} }] as Behaviour[]) {
      upstream.set(behaviour)
      await refresh(server)
      expect((await evaluate(server, { targetingKey: 'u' }, { Authorization: 'Bearer client-key' })).status).toBe(503)
    }
    upstream.set({ document: booleanFlags(3) })
    expect((await refresh(server)).body).toMatchObject({ outcome: 'applied', changed: ['f0', 'f1', 'f2'] })
    expect((await evaluate(server, { targetingKey: 'u' }, { Authorization: 'Bearer client-key' })).status).toBe(200)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
  })

  it('a restart serves the data dir at once, with its true age, then asks the upstream', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream({ document: booleanFlags(5) })
    const first = await relay(upstream, { dataDir: dir })
    const served = await bulk(first)
    await first.close()
    const etag = upstream.requests[0]
    expect(etag).toBeDefined()

    upstream.set({ status: 503, text: 'down' })
    const second = await relay(upstream, { dataDir: dir })
    const answer = await bulk(second)
    expect(answer.status).toBe(200)
    expect(answer.body.flags).toEqual(served.body.flags)
    expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt: served.body.metadata.holdfast.fetchedAt, stale: true })
    expect(await status(second)).toMatchObject({ ready: true, source: 'data-dir', upstream: { state: 'failing' } })
    // It asked the upstream at once, with the ETag it had saved.
    expect(upstream.requests.length).toBe(2)
    expect(upstream.requests[1].headers['if-none-match']).toMatch(/^"/)

    // The upstream is back and unchanged: a 304 makes the same definitions fresh again.
    upstream.set({ document: booleanFlags(5) })
    expect((await refresh(second)).body).toMatchObject({ outcome: 'unchanged' })
    expect(upstream.requests.at(-1)!.headers['if-none-match']).toMatch(/^"/)
    expect((await bulk(second)).body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: false })
    // A shrunken document is refused against what the data dir held, too.
    await second.close()
    upstream.set({ document: booleanFlags(1) })
    const third = await relay(upstream, { dataDir: dir })
    expect(Object.keys(values((await bulk(third)).body))).toHaveLength(5)
    expect(await status(third)).toMatchObject({ source: 'data-dir', refused: 1, upstream: { lastError: { kind: 'shrink' } } })
  })

  it('falls back to the previous generation when the newest is corrupt', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream({ document: booleanFlags(4) })
    const server = await relay(upstream, { dataDir: dir })
    upstream.set({ document: booleanFlags(4, 'off') })
    await refresh(server)
    await server.close()
    const { readdir } = await import('node:fs/promises')
    const files = (await readdir(dir)).filter((f) => f.startsWith('gen-')).sort()
    const newest = join(dir, files.at(-1)!)
    // One byte changed in the payload: the checksum no longer holds.
    const text = await readFile(newest, 'utf8')
    const at = text.lastIndexOf('defaultVariant')
    expect(at).toBeGreaterThan(0)
    await writeFile(newest, `${text.slice(0, at)}defaultVariAnt${text.slice(at + 'defaultVariant'.length)}`)
    upstream.set('reset')
    const logger = recordingLogger()
    const restarted = await relay(upstream, { dataDir: dir, logger })
    const answer = await bulk(restarted)
    expect(answer.status).toBe(200)
    expect(values(answer.body)).toEqual({ f0: true, f1: true, f2: true, f3: true })
    expect(logger.lines.join('\n')).toMatch(/skipped data-dir generation .*checksum mismatch/)
  })

  it('falls back to the previous generation when the newest is intact but cannot be served (not flagd, no flags)', async () => {
    // A generation whose checksum holds but whose definitions this server refuses (written by a
    // --lenient run, another version, a hand repair) was taken as "the" data dir: the good
    // generation before it was never tried, and with the upstream down the relay answered 503.
    for (const text of ['{"hello":"world"}', '{"flags":{}}', '{"flags":{"x":{"state":"ON","variants":{}}}}']) {
      const dir = await tempDir()
      const upstream = await startUpstream({ document: booleanFlags(4, 'off') })
      await (await relay(upstream, { dataDir: dir })).close()
      const { readdir } = await import('node:fs/promises')
      const files = (await readdir(dir)).filter((f) => f.startsWith('gen-')).sort()
      const next = Number(files.at(-1)!.slice(4, 16)) + 1
      const record = { kind: 'definitions', text, version: 'forged', fetchedAt: Date.now() }
      await writeFile(join(dir, `gen-${String(next).padStart(12, '0')}.json`), encodeGeneration(JSON.stringify(record)))
      upstream.set('reset')
      const logger = recordingLogger()
      const restarted = await relay(upstream, { dataDir: dir, logger })
      const answer = await bulk(restarted)
      expect(answer.status, text).toBe(200)
      expect(values(answer.body)).toEqual({ f0: false, f1: false, f2: false, f3: false })
      expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
      expect(logger.lines.join('\n')).toMatch(/cannot serve the data-dir/)
    }
  })

  it('a generation dated in the future (a clock that ran ahead) is served as fetched no later than now', async () => {
    // Its fetchedAt was served as is, and a 304 kept the later of the two: for as many hours as
    // the clock had been ahead, every answer and the status said "fetched just now" (ageSeconds 0)
    // through an outage, and a browser's bootstrap from it outranked its own newer cache.
    const dir = await tempDir()
    const upstream = await startUpstream({ document: booleanFlags(3) })
    await (await relay(upstream, { dataDir: dir })).close()
    const { readdir } = await import('node:fs/promises')
    const newest = join(dir, (await readdir(dir)).filter((f) => f.startsWith('gen-')).sort().at(-1)!)
    const { decodeGeneration } = await import('../../packages/server/src/flags/generations')
    const decoded = decodeGeneration(await readFile(newest, 'utf8'))
    if (!decoded.ok) throw new Error(decoded.reason)
    const ahead = Date.now() + 3 * 3_600_000
    await writeFile(newest, encodeGeneration(JSON.stringify({ ...JSON.parse(decoded.payload), fetchedAt: ahead })))
    upstream.set({ status: 503, text: 'down' })
    const before = Date.now()
    const restarted = await relay(upstream, { dataDir: dir })
    const answer = await bulk(restarted)
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    expect(answer.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(Date.now())
    expect(answer.body.metadata.holdfast.fetchedAt).toBeGreaterThanOrEqual(before)
    // The upstream is back and unchanged: the 304 dates the definitions now, not three hours on.
    upstream.set({ document: booleanFlags(3) })
    expect((await refresh(restarted)).body).toMatchObject({ outcome: 'unchanged' })
    expect((await bulk(restarted)).body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(Date.now())
    expect((await status(restarted)).fetchedAt).toBeLessThanOrEqual(Date.now())
  })

  it('serves a --snapshot when the upstream is down and the data dir is empty; a newer data dir wins', async () => {
    const dir = await tempDir()
    const snapshotFile = join(dir, 'flags.snapshot.json')
    const takenAt = Date.now() - 3_600_000
    await writeFile(snapshotFile, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: takenAt, version: 'x', definitions: booleanFlags(3, 'off') }))
    const upstream = await startUpstream('reset')
    const server = await relay(upstream, { snapshot: snapshotFile, dataDir: join(dir, 'data') })
    const answer = await bulk(server)
    expect(values(answer.body)).toEqual({ f0: false, f1: false, f2: false })
    expect(answer.body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
    upstream.set({ document: booleanFlags(3, 'on') })
    await refresh(server)
    await server.close()
    upstream.set('reset')
    const restarted = await relay(upstream, { snapshot: snapshotFile, dataDir: join(dir, 'data') })
    expect((await bulk(restarted)).body.metadata.holdfast.source).toBe('data-dir')
    expect(values((await bulk(restarted)).body).f0).toBe(true)
  })

  it('a --snapshot stamped in the future (a CI clock ahead) does not beat the newer data dir at a restart', async () => {
    const dir = await tempDir()
    const snapshotFile = join(dir, 'flags.snapshot.json')
    // Built a day ago on a CI machine whose clock ran a year ahead.
    await writeFile(snapshotFile, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: Date.now() + 365 * 86_400_000, version: 'x', definitions: booleanFlags(3, 'off') }))
    const builtAt = new Date(Date.now() - 86_400_000)
    await utimes(snapshotFile, builtAt, builtAt)
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const server = await relay(upstream, { snapshot: snapshotFile, dataDir: join(dir, 'data') })
    await refresh(server)
    expect(values((await bulk(server)).body).f0).toBe(true)
    await server.close()
    upstream.set('reset')
    const restarted = await relay(upstream, { snapshot: snapshotFile, dataDir: join(dir, 'data') })
    // Before: the snapshot's claimed time (clamped to now) beat the data dir saved minutes ago, so
    // the relay went back to the day-old values (f0 off) for the whole outage.
    const answer = await bulk(restarted)
    expect(answer.body.metadata.holdfast.source).toBe('data-dir')
    expect(values(answer.body).f0).toBe(true)
  })

  it('a --snapshot with a future fetchedAt, served alone, says no later time than its file was written', async () => {
    const dir = await tempDir()
    const snapshotFile = join(dir, 'flags.snapshot.json')
    await writeFile(snapshotFile, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: Date.now() + 365 * 86_400_000, version: 'x', definitions: booleanFlags(3, 'off') }))
    const builtAt = new Date(Math.floor(Date.now() / 1000 - 86_400) * 1000)
    await utimes(snapshotFile, builtAt, builtAt)
    const restarted = await relay(await startUpstream('reset'), { snapshot: snapshotFile })
    expect((await bulk(restarted)).body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: builtAt.getTime(), stale: true })
  })

  it('--on-upstream-unauthorized: keep serves on, clear drops at once, clear-after waits', async () => {
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const keep = await relay(upstream)
    const clear = await relay(upstream, { onUpstreamUnauthorized: 'clear' })
    const later = await relay(upstream, { onUpstreamUnauthorized: 'clear-after=0.3' })
    upstream.set({ status: 401, text: '' })
    for (const server of [keep, clear, later]) await refresh(server)
    expect((await bulk(keep)).status).toBe(200)
    expect((await bulk(clear)).status).toBe(503)
    expect((await fetch(`${clear.url}/readyz`)).status).toBe(503)
    expect((await bulk(later)).status).toBe(200)
    await new Promise((r) => setTimeout(r, 400))
    await refresh(later)
    expect((await bulk(later)).status).toBe(503)
    // Any other answer ends the streak; a good one serves again.
    upstream.set({ document: booleanFlags(2) })
    await refresh(clear)
    expect((await bulk(clear)).status).toBe(200)
  })

  it('--on-upstream-unauthorized clear survives a restart: neither the data dir nor an older snapshot comes back', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const snapshotFile = join(dir, 'flags.snapshot.json')
    await writeFile(snapshotFile, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: Date.now() - 3_600_000, version: 'x', definitions: booleanFlags(2, 'off') }))
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const options = { onUpstreamUnauthorized: 'clear' as const, dataDir, snapshot: snapshotFile }
    const first = await relay(upstream, options)
    // It starts on the snapshot at once; the first answer of the upstream replaces it.
    await refresh(first)
    expect(values((await bulk(first)).body)).toEqual({ f0: true, f1: true })
    // The relay's credentials are revoked: what it held goes, on disk too.
    upstream.set({ status: 403, text: '' })
    await refresh(first)
    expect((await bulk(first)).status).toBe(503)
    await first.close()

    // Restarted while the upstream is unreachable: without the record of the clear, the data dir
    // (and the snapshot) would be served for the whole outage.
    upstream.set('reset')
    const logger = recordingLogger()
    const restarted = await relay(upstream, { ...options, logger })
    await refresh(restarted)
    expect((await bulk(restarted)).status).toBe(503)
    expect((await status(restarted)).ready).toBe(false)
    expect(logger.lines.join('\n')).toMatch(/flags were dropped at .*--on-upstream-unauthorized/)
    // The upstream takes the credentials again: served, and saved, as before.
    upstream.set({ document: booleanFlags(2) })
    await refresh(restarted)
    expect(values((await bulk(restarted)).body)).toEqual({ f0: true, f1: true })
    await restarted.close()
    upstream.set('reset')
    const third = await relay(upstream, options)
    expect((await bulk(third)).body.metadata.holdfast.source).toBe('data-dir')
  })

  it('refresh: needs the admin key; concurrent calls share one upstream request; acceptShrink applies a refused clean-up', async () => {
    const upstream = await startUpstream({ document: booleanFlags(10) })
    const server = await relay(upstream)
    const url = `${server.url}/holdfast/v1/refresh`
    expect((await fetch(url, { method: 'POST' })).status).toBe(401)
    expect((await fetch(url, { method: 'POST', headers: { Authorization: 'Bearer wrong' } })).status).toBe(401)
    const noKey = await relay(upstream, { adminKey: undefined })
    expect((await fetch(`${noKey.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } })).status).toBe(403)

    upstream.set({ delayMs: 150, then: { document: { flags: { ...booleanFlags(10).flags, extra: { state: 'ENABLED', variants: { a: 'A' }, defaultVariant: 'a' } } } } })
    const before = upstream.requests.length
    const answers = await Promise.all(Array.from({ length: 5 }, () => refresh(server)))
    expect(upstream.requests.length - before).toBe(1)
    for (const answer of answers) expect(answer.body).toMatchObject({ outcome: 'applied', changed: ['extra'] })

    upstream.set({ document: booleanFlags(2) })
    expect((await refresh(server)).body).toMatchObject({ outcome: 'refused', error: { kind: 'shrink' } })
    const forced = await refresh(server, { acceptShrink: true })
    expect(forced.body).toMatchObject({ outcome: 'applied' })
    expect(Object.keys(values((await bulk(server)).body))).toEqual(['f0', 'f1'])
    // Never an empty set, even when forced.
    upstream.set({ status: 200, json: { flags: {} } })
    expect((await refresh(server, { acceptShrink: true })).body).toMatchObject({ outcome: 'refused', error: { kind: 'empty' } })
    expect(Object.keys(values((await bulk(server)).body))).toEqual(['f0', 'f1'])
  })
})

describe('a data dir that cannot be used', () => {
  it('does not stop the relay: it serves from the upstream and the status counts the failed writes', async () => {
    const dir = await tempDir()
    const notADir = join(dir, 'a-file')
    await writeFile(notADir, 'not a directory')
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const logger = recordingLogger()
    const server = await relay(upstream, { dataDir: notADir, logger })
    expect((await bulk(server)).status).toBe(200)
    let now = await status(server)
    for (let i = 0; i < 100 && now.dataDir.writeFailures === 0; i++) {
      await new Promise((r) => setTimeout(r, 20))
      now = await status(server)
    }
    expect(now.dataDir).toMatchObject({ writeFailures: 1, lastError: expect.stringMatching(/^E[A-Z]+\b/) })
    expect(logger.lines.join('\n')).toMatch(/cannot read the data dir .*starting without it/)
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/holdfast_relay_data_dir_writes_total\{outcome="failed"\} 1/)
  })
})

describe('--flags FILE with --data-dir', () => {
  it('an intact but unservable newest generation falls back to the one before it', async () => {
    const { dir, file, dataDir } = await savedGeneration(3, 'off')
    const { readdir, rm } = await import('node:fs/promises')
    const files = (await readdir(dataDir)).filter((f) => f.startsWith('gen-')).sort()
    const next = Number(files.at(-1)!.slice(4, 16)) + 1
    await writeFile(join(dataDir, `gen-${String(next).padStart(12, '0')}.json`), encodeGeneration(JSON.stringify({ kind: 'definitions', text: '{"flags":{}}', version: 'forged', fetchedAt: Date.now() })))
    await rm(file)
    const server = await startServer({ flags: file, dataDir, logger: recordingLogger() })
    const answer = await bulk(server)
    expect(answer.status).toBe(200)
    expect(values(answer.body)).toEqual({ f0: false, f1: false, f2: false })
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
  })

  it('a generation dated in the future is served as fetched no later than now', async () => {
    const { dir, file, dataDir } = await savedGeneration(3, 'off')
    const { readdir, rm } = await import('node:fs/promises')
    const { decodeGeneration } = await import('../../packages/server/src/flags/generations')
    const newest = join(dataDir, (await readdir(dataDir)).filter((f) => f.startsWith('gen-')).sort().at(-1)!)
    const decoded = decodeGeneration(await readFile(newest, 'utf8'))
    if (!decoded.ok) throw new Error(decoded.reason)
    await writeFile(newest, encodeGeneration(JSON.stringify({ ...JSON.parse(decoded.payload), fetchedAt: Date.now() + 3 * 3_600_000 })))
    await rm(file)
    const server = await startServer({ flags: file, dataDir, logger: recordingLogger() })
    const answer = await bulk(server)
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    expect(answer.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(Date.now())
  })

  it('a --snapshot that holds one user’s values (a Bootstrap) refuses to start, as with --flags-url', async () => {
    // It was ignored without a word: the fallback layer the operator configured did not exist,
    // which showed only on the day the file could not be read.
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    const fallback = join(dir, 'fallback.json')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    await writeFile(fallback, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'f0', value: true }], fetchedAt: Date.now() }))
    await expect(startServer({ flags: file, snapshot: fallback, logger: recordingLogger() })).rejects.toThrow(/fallback\.json holds one user's values \(a Bootstrap\); --flags needs definitions/)
  })

  it('serves the data dir when the file cannot be read at start, then the file once it is back', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    const dataDir = join(dir, 'data')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    const first = await startServer({ flags: file, dataDir, logger: recordingLogger() })
    const original = await bulk(first)
    expect(original.body.metadata.holdfast).toMatchObject({ source: 'file', stale: false })
    await first.close()

    const { rm } = await import('node:fs/promises')
    await rm(file)
    const logger = recordingLogger()
    const second = await startServer({ flags: file, dataDir, logger })
    const fromDisk = await bulk(second)
    expect(fromDisk.status).toBe(200)
    expect(fromDisk.body.flags).toEqual(original.body.flags)
    expect(fromDisk.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt: original.body.metadata.holdfast.fetchedAt, stale: true })
    expect(logger.lines.join('\n')).toMatch(/cannot read the flags file .*serving the data-dir/)

    await writeFile(file, JSON.stringify(booleanFlags(3, 'off')))
    const started = Date.now()
    while ((await bulk(second)).body.metadata.holdfast.source !== 'file') {
      if (Date.now() - started > 15_000) throw new Error('the file was never picked up again')
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(values((await bulk(second)).body)).toEqual({ f0: false, f1: false, f2: false })
  }, 30_000)

  it('an emptied or gutted file is not served over the data dir, at start or when it comes back', async () => {
    // The file source takes its first document unguarded (there is nothing to protect in it), so
    // at a restart `{"flags": {}}` or one flag of four replaced the four the data dir held: every
    // kill switch off, from the very file CONTRACT §9 says is not served when gutted.
    const { dir, file, dataDir } = await savedGeneration(4)
    const all = { f0: true, f1: true, f2: true, f3: true }

    await writeFile(file, '{"flags": {}}')
    const logger = recordingLogger()
    const emptied = await startServer({ flags: file, dataDir, logger })
    const answer = await bulk(emptied)
    expect(answer.status).toBe(200)
    expect(values(answer.body)).toEqual(all)
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    expect(logger.lines.join('\n')).toMatch(/flags\.json is refused.*defines no flags while 4 are being served/)
    // A good edit is served at once, like any edit.
    await writeFile(file, JSON.stringify(booleanFlags(4, 'off')))
    expect(await emptied.reloadFlags()).toBe(true)
    expect((await bulk(emptied)).body.metadata.holdfast).toMatchObject({ source: 'file', stale: false })
    expect(values((await bulk(emptied)).body)).toEqual({ f0: false, f1: false, f2: false, f3: false })
    await emptied.close()

    // Missing at start, back with one flag of four: refused likewise.
    const { rm } = await import('node:fs/promises')
    await rm(file)
    const missing = await startServer({ flags: file, dataDir, logger: recordingLogger() })
    expect((await bulk(missing)).body.metadata.holdfast.source).toBe('data-dir')
    await writeFile(file, JSON.stringify(booleanFlags(1)))
    await new Promise((r) => setTimeout(r, 2500))
    const later = await bulk(missing)
    expect(later.body.metadata.holdfast.source).toBe('data-dir')
    expect(values(later.body)).toEqual({ f0: false, f1: false, f2: false, f3: false })
    expect(await missing.reloadFlags()).toBe(false)
  }, 30_000)

  it('a data dir that cannot be written shows in the status (writeFailures, lastError), as in the relay modes', async () => {
    // Only a log line said so: /holdfast/v1/status of a --flags FILE server had no dataDir at all,
    // so a full disk or a read-only mount went unseen by whatever watches the status.
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    const notADir = join(dir, 'not-a-dir')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    await writeFile(notADir, 'a file where the data dir should be')
    const server = await startServer({ flags: file, dataDir: notADir, logger: recordingLogger() })
    expect((await bulk(server)).status).toBe(200)
    let now = await status(server)
    for (let i = 0; i < 100 && !(now.dataDir?.writeFailures > 0); i++) {
      await new Promise((r) => setTimeout(r, 20))
      now = await status(server)
    }
    expect(now.dataDir).toMatchObject({ dir: notADir, writeFailures: 1, lastError: expect.stringMatching(/^E[A-Z]+\b/) })
    // A writable one shows what it saved.
    const good = await startServer({ flags: file, dataDir: join(dir, 'data'), logger: recordingLogger() })
    let saved = await status(good)
    for (let i = 0; i < 100 && saved.dataDir?.lastGeneration === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20))
      saved = await status(good)
    }
    expect(saved.dataDir).toMatchObject({ lastGeneration: 1, writeFailures: 0 })
  })

  it('without a data dir or snapshot, a missing file still refuses to start', async () => {
    const dir = await tempDir()
    await expect(startServer({ flags: join(dir, 'missing.json'), dataDir: join(dir, 'empty') })).rejects.toThrow(/cannot read the flags file/)
  })
})

describe('--flags-url with --redis, as a follower', () => {
  it('times clear-after on its own clock: a leader whose clock runs hours ahead cannot postpone the clear', async () => {
    const { createUrlSource, silentLogger } = await import('@holdfast/server')
    let clock = 1_800_000_000_000
    let hooks!: Parameters<NonNullable<Parameters<typeof createUrlSource>[0]['share']>>[0]
    const source = createUrlSource({
      url: 'http://127.0.0.1:9/flags.json', // never asked: a follower takes what the leader polled
      pollIntervalMs: 3_600_000,
      maxShrinkPercent: 50,
      strict: true,
      onUnauthorized: { mode: 'clear-after', seconds: 60 },
      timeoutMs: 1000,
      log: silentLogger,
      now: () => clock,
      share: (given) => {
        hooks = given
        return {
          start: async () => {},
          shouldPoll: () => false,
          polled: () => {},
          role: () => 'follower',
          leaderReport: () => undefined,
          status: () => ({ role: 'follower', taken: 0 }) as never,
          stop: async () => {},
        }
      },
    })
    const opening = source.open()
    expect(await hooks.take({ version: 1, body: JSON.stringify(booleanFlags(2)), fetchedAt: clock })).toBe(true)
    await opening
    const hoursAhead = clock + 3 * 3_600_000
    const unauthorized = (at: number) => hooks.report!({ state: 'unauthorized', lastAttemptAt: at, lastError: { kind: 'unauthorized', message: 'HTTP 401', httpStatus: 401 } }, at)
    unauthorized(hoursAhead)
    expect(source.current()).toBeDefined()
    clock += 30_000
    unauthorized(hoursAhead + 30_000)
    expect(source.current(), 'cleared before the 60 s the policy gives').toBeDefined()
    clock += 31_000
    unauthorized(hoursAhead + 61_000)
    expect(source.current(), 'still served 61 s into the streak').toBeUndefined()
    await source.close()
  })
})
