// The relay's operations routes on every kind of source: the status says what is served and how
// old it is, refresh names the version and the changed keys, and the metrics match the status.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { evaluate, post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

describe('status and refresh with a local flags file', () => {
  it('status says file / none; refresh re-reads the file and names the changed keys', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    const server = await startServer({ flags: file, adminKey: 'adm', apiKey: 'client' })
    // The status is a data route: it needs the API key when one is set.
    expect((await fetch(`${server.url}/holdfast/v1/status`)).status).toBe(401)
    const status = await (await fetch(`${server.url}/holdfast/v1/status`, { headers: { 'X-API-Key': 'client' } })).json()
    expect(status).toMatchObject({ ready: true, mode: 'file', source: 'file', version: expect.any(String), fetchedAt: expect.any(Number), stale: false, upstream: { state: 'none' }, refused: 0, flags: 3 })

    await writeFile(file, JSON.stringify({ flags: { ...booleanFlags(3).flags, f1: { state: 'DISABLED', variants: { on: true }, defaultVariant: 'on' } } }))
    // Refresh takes the admin key, not the API key.
    expect((await fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: { 'X-API-Key': 'client' } })).status).toBe(401)
    const refreshed = await fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    const body = await refreshed.json()
    expect(refreshed.status).toBe(200)
    expect(body.changed).toEqual(['f1'])
    expect(body.version).not.toBe(status.version)

    await writeFile(file, JSON.stringify({ flags: {} }))
    const refused = await fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    expect(refused.status).toBe(502)
    expect(await refused.json()).toMatchObject({ outcome: 'refused', version: body.version })
    expect((await evaluate(server, { targetingKey: 'u' }, { 'X-API-Key': 'client' })).status).toBe(200)
  })

  it('refresh answers 413 only past 1 MiB, like every route (CONTRACT §8), and reads a longer body than it needs', async () => {
    const server = await startServer({ adminKey: 'adm' })
    const refresh = (body: string) => post(`${server.url}/holdfast/v1/refresh`, body, { Authorization: 'Bearer adm' })
    // Before: 413 "request bodies are limited to 1 MiB" to a 2 KB body (the route read 1 KiB at most).
    const padded = await refresh(JSON.stringify({ acceptShrink: true, note: 'x'.repeat(2048) }))
    expect(padded.status).toBe(200)
    expect(await padded.json()).toMatchObject({ outcome: 'unchanged' })
    expect((await refresh(`{"note":"${'x'.repeat(1_048_576)}"}`)).status).toBe(413)
  })
})

describe('/readyz names the source as the answers and the status do (CONTRACT §9)', () => {
  it("'upstream' for --flags-url, 'file' for a file or definitions in code", async () => {
    // Before: /readyz said `"source":"url"` (and `"inline"`), names found nowhere else, while the
    // answers' metadata.holdfast.source and the status said 'upstream' ('file').
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const file = join(await tempDir(), 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    const servers = [await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json` }), await startServer({ flags: file }), await startServer()]
    for (const server of servers) {
      const readyz = (await (await fetch(`${server.url}/readyz`)).json()) as { source?: string }
      const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { source: string }
      const answer = (await (await evaluate(server, { targetingKey: 'u' })).json()) as { metadata: { holdfast: { source: string } } }
      expect(['upstream', 'data-dir', 'snapshot', 'file']).toContain(readyz.source)
      expect(readyz.source).toBe(status.source)
      expect(readyz.source).toBe(answer.metadata.holdfast.source)
    }
  })
})

describe('the log of a --flags-url relay that has nothing to serve yet', () => {
  it('does not say it is still serving previous flags it never had', async () => {
    // Before: "…/flags.json answered 503; still serving the previous flags" (and the same for a
    // refused document) from a relay that had none, while every OFREP request got 503.
    const upstream = await startUpstream({ status: 503, text: 'maintenance' })
    const logger = recordingLogger()
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, logger, adminKey: 'adm' })
    upstream.set({ status: 200, json: { flags: {} } })
    expect((await post(`${server.url}/holdfast/v1/refresh`, '', { Authorization: 'Bearer adm' })).status).toBe(502)
    const said = logger.lines.join('\n')
    expect(said).not.toMatch(/still serving the previous flags/)
    expect(said).toMatch(/answered 503; nothing served yet/)
    expect(said).toMatch(/refused .*defines no flags; nothing served yet/)
  })
})

describe('a --data-dir that is a file', () => {
  it('is named as one in the log and the status, not a bare EEXIST; the file is left as it was', async () => {
    // Before: "cannot lock the data dir … (EEXIST)" and status dataDir.lastError "EEXIST" for an
    // operator who pointed --data-dir at a file: nothing said what was wrong with the path.
    const file = join(await tempDir(), 'relay-data')
    await writeFile(file, 'precious')
    const logger = recordingLogger()
    const server = await startServer({ dataDir: file, logger })
    await waitFor(async () => ((await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { dataDir: { writeFailures: number } }).dataDir.writeFailures > 0, 5000)
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { dataDir: { lastError: string } }
    expect(status.dataDir.lastError).toMatch(/not a directory/)
    expect(logger.lines.join('\n')).toMatch(/cannot lock the data dir .*not a directory/)
    expect(await readFile(file, 'utf8')).toBe('precious')
  })
})

describe('metrics in proxy mode', () => {
  it('count upstream requests and refusals by kind and show the state, the contexts and the age', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'a', value: 1, reason: 'STATIC' }] }) })
    const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 300, logger: recordingLogger() })
    await evaluate(server, { targetingKey: 'u1' })
    upstream.set({ status: 200, text: '<html>', contentType: 'text/html' })
    await evaluate(server, { targetingKey: 'u1' })
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/holdfast_relay_upstream_requests_total\{outcome="ok"\} [1-9]/)
    expect(metrics).toMatch(/holdfast_relay_refused_total\{reason="invalid"\} 1/)
    expect(metrics).toMatch(/holdfast_relay_upstream_state\{state="failing"\} 1/)
    expect(metrics).toMatch(/holdfast_relay_contexts 1/)
    expect(metrics).toMatch(/holdfast_relay_ready 1/)
    expect(metrics).toMatch(/holdfast_relay_served_age_seconds \d/)
  })

  it('the status names the HTTP status of an upstream that fails the start-up probe', async () => {
    // Before: the probe's failure was recorded without it, so a relay that never got an answer
    // showed `lastError: { kind: 'http', message }` with no `httpStatus` (docs/relay.md's field), where
    // the same 503 to a user's request shows `httpStatus: 503`.
    const upstream = await startUpstream({ status: 503, text: 'maintenance' })
    const server = await startServer({ flags: undefined, upstream: upstream.url })
    const status = await (await fetch(`${server.url}/holdfast/v1/status`)).json()
    expect(status).toMatchObject({ ready: false, upstream: { state: 'failing', lastError: { kind: 'http', httpStatus: 503 } } })
  })
})

describe('relay options are checked at start', () => {
  it('refuses a bad URL, a bad policy, an empty admin key and two sources at once', async () => {
    await expect(startServer({ flags: undefined, flagsUrl: 'ftp://x' })).rejects.toThrow(/flagsUrl must be an http\(s\) URL/)
    await expect(startServer({ flags: undefined, upstream: 'http://127.0.0.1:1', onUpstreamUnauthorized: 'drop' as never })).rejects.toThrow(/keep, clear or clear-after/)
    await expect(startServer({ flags: undefined, upstream: 'http://127.0.0.1:1', adminKey: ' ' })).rejects.toThrow(/admin key is empty/)
    await expect(startServer({ flagsUrl: 'http://127.0.0.1:1/f.json' })).rejects.toThrow(/exactly one of flags, flagsUrl, upstream/)
  })

  it('refuses a maxUpstreamRequests that is not a whole number of 1 or more, and a forwardHeaders entry that is no header name', async () => {
    // Before: maxUpstreamRequests NaN started a relay that never asked its upstream (every user got
    // 503 "no upstream request could start within 5000 ms: NaN in flight already"), 0 was taken as
    // 1 without a word, and forwardHeaders ['X Tenant'] (the CLI refuses it) forwarded nothing.
    const upstream = { flags: undefined, upstream: 'http://127.0.0.1:1' }
    for (const bad of [Number.NaN, 0, -1, 2.5]) await expect(startServer({ ...upstream, maxUpstreamRequests: bad })).rejects.toThrow(/maxUpstreamRequests/)
    await expect(startServer({ ...upstream, forwardHeaders: ['X Tenant'] })).rejects.toThrow(/forwardHeaders/)
    await expect(startServer({ ...upstream, forwardHeaders: [''] })).rejects.toThrow(/forwardHeaders/)
  })

  it('refuses upstreamHeaders with an upstream or a file, and forwardHeaders without an upstream: they would do nothing', async () => {
    // Before: { upstream, upstreamHeaders: { Authorization: 'Bearer relay-key' } } started, and
    // the key was never sent: the upstream saw each browser's own headers only (401 for users
    // without one), with nothing said. The CLI refuses --forward-header without --upstream.
    await expect(startServer({ flags: undefined, upstream: 'http://127.0.0.1:1', upstreamHeaders: { Authorization: 'Bearer relay-key' } })).rejects.toThrow(/upstreamHeaders goes with flagsUrl/)
    await expect(startServer({ upstreamHeaders: { Authorization: 'Bearer relay-key' } })).rejects.toThrow(/upstreamHeaders goes with flagsUrl/)
    await expect(startServer({ flags: undefined, flagsUrl: 'http://127.0.0.1:1/f.json', forwardHeaders: ['X-Tenant'] })).rejects.toThrow(/forwardHeaders goes with upstream/)
  })

  it('refuses pollIntervalSeconds and onUpstreamUnauthorized beside flags: a file is watched, and has no upstream to answer 401', async () => {
    // Before: { flags, pollIntervalSeconds: 2 } and { flags, onUpstreamUnauthorized: 'clear' }
    // started, and neither did anything, with nothing said (the CLI refuses both without a URL).
    await expect(startServer({ pollIntervalSeconds: 2 })).rejects.toThrow(/pollIntervalSeconds goes with flagsUrl or upstream/)
    await expect(startServer({ onUpstreamUnauthorized: 'clear' })).rejects.toThrow(/onUpstreamUnauthorized goes with flagsUrl or upstream/)
    // With a URL both are taken as ever.
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 2, onUpstreamUnauthorized: 'clear' })
    expect((await evaluate(server, { targetingKey: 'u' })).status).toBe(200)
  })
})

describe('the relay CLI options', () => {
  it('map onto createFlagServer options, and bad values are usage errors', async () => {
    const { buildServerOptions } = await import('../../packages/server/src/serverOptions')
    const built = buildServerOptions(
      {
        upstream: 'https://ofrep.example',
        'data-dir': '/var/lib/holdfast',
        snapshot: 'snap.json',
        'max-shrink': '30',
        'on-upstream-unauthorized': 'clear-after=60',
        'forward-header': ['Authorization', 'X-Tenant'],
        'upstream-timeout': '2.5',
        'admin-key': 'adm',
      },
      {},
    )
    expect(built).toMatchObject({
      ok: true,
      options: { upstream: 'https://ofrep.example', dataDir: '/var/lib/holdfast', snapshot: 'snap.json', maxShrinkPercent: 30, onUpstreamUnauthorized: 'clear-after=60', forwardHeaders: ['Authorization', 'X-Tenant'], upstreamTimeoutMs: 2500, adminKey: 'adm' },
    })
    expect(buildServerOptions({ 'flags-url': 'https://x/f.json', 'poll-interval': '0.5' }, { HOLDFAST_ADMIN_KEY: 'env-key' })).toMatchObject({ ok: true, options: { flagsUrl: 'https://x/f.json', pollIntervalSeconds: 0.5, adminKey: 'env-key' } })
    const errors: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /--flags is required/],
      [{ flags: 'f.json', upstream: 'http://x' }, /only one of/],
      [{ upstream: 'x' }, /--upstream must be an http\(s\) URL/],
      [{ 'flags-url': 'http://x', 'poll-interval': '0' }, /--poll-interval must be from/],
      [{ 'flags-url': 'http://x', 'max-shrink': '101' }, /--max-shrink must be from 0 to 100/],
      [{ upstream: 'http://x', 'on-upstream-unauthorized': 'wipe' }, /keep, clear or clear-after/],
      [{ upstream: 'http://x', 'forward-header': ['Bad Header'] }, /header name/],
      [{ upstream: 'http://x', 'admin-key': '' }, /--admin-key is empty/],
    ]
    for (const [values, message] of errors) {
      const result = buildServerOptions(values as never, {})
      expect(result.ok, JSON.stringify(values)).toBe(false)
      expect((result as { error: string }).error).toMatch(message)
    }
  })
})

describe('proxy mode: the drain (close(), SIGTERM) with a user waiting on the upstream', () => {
  it('answers that user 503 by its end instead of cutting the connection, when the upstream timeout is longer than the drain', async () => {
    // The upstream answers everyone but never a new user's request: it hangs (within a 30 s upstream timeout).
    const upstream = await startUpstream((request) => (request.body.includes('"new-user"') ? 'hang' : { ofrep: () => ({ flags: [{ key: 'a', value: true, reason: 'STATIC' }] }) }))
    const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 30_000, drainTimeoutMs: 800 })
    expect((await evaluate(server, { targetingKey: 'known' })).status).toBe(200)
    const waiting = evaluate(server, { targetingKey: 'new-user' }).then(
      (response) => ({ status: response.status, retryAfter: response.headers.get('retry-after') !== null }),
      (error: Error) => `cut: ${error.message}`,
    )
    await waitFor(() => upstream.requests.some((request) => request.body.includes('"new-user"')), 5000)
    const started = performance.now()
    await server.close()
    // Before: the drain's end cut the connection (fetch failed) though the relay had an answer to
    // give, 503 with Retry-After, as it does at the upstream timeout; its client retries either
    // way, but a cut request reads as the relay crashing, in its log and the load balancer's.
    expect(await waiting).toEqual({ status: 503, retryAfter: true })
    expect(performance.now() - started).toBeLessThan(3000)
  })
})
