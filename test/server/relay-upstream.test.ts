// --upstream: each bulk request forwarded for its context, merged per flag into that context's
// last known good exactly as the browser client merges (CONTRACT §4), keyed by the context and the
// forwarded credentials, so one key's values never reach another.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createUpstreamSource, type FlagServer, type FlagServerOptions } from '@holdfast/server'
import { evaluate, post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { startUpstream, type Behaviour, type FakeUpstream } from './relay-fakes'

async function relay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })
}

async function bulk(server: FlagServer, context: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await evaluate(server, context, headers)
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined }
}

const byKey = (body: any): Record<string, any> => Object.fromEntries((body.flags as Array<{ key: string }>).map((f) => [f.key, f]))

/** An upstream that answers per user: `plan` decides one flag, the key decides another. */
function perUser(extra: (context: Record<string, unknown>) => unknown[] = () => []): Behaviour {
  return {
    ofrep: (context) => ({
      flags: [
        { key: 'pro-feature', value: context.plan === 'pro', reason: 'TARGETING_MATCH', variant: context.plan === 'pro' ? 'on' : 'off' },
        { key: 'greeting', value: `hi ${String(context.targetingKey)}`, reason: 'STATIC', variant: 'v' },
        { key: 'limit', value: 10, reason: 'STATIC', variant: 'ten' },
        ...extra(context),
      ],
      metadata: { env: 'prod' },
    }),
  }
}

describe('--upstream (proxy mode)', () => {
  it('forwards each request for its context with the forwarded headers, and answers fresh', async () => {
    const upstream = await startUpstream(perUser())
    const server = await relay(upstream, { forwardHeaders: ['Authorization', 'X-Tenant'] })
    const answer = await bulk(server, { targetingKey: 'ann', plan: 'pro' }, { Authorization: 'Bearer k1', 'X-Tenant': 't1', Cookie: 'secret' })
    expect(answer.status).toBe(200)
    expect(byKey(answer.body)['pro-feature']).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' })
    expect(byKey(answer.body).greeting.value).toBe('hi ann')
    expect(answer.body.metadata).toEqual({ env: 'prod', holdfast: { source: 'upstream', fetchedAt: expect.any(Number), stale: false } })
    const forwarded = upstream.requests.at(-1)!
    expect(forwarded.path).toBe('/ofrep/v1/evaluate/flags')
    expect(JSON.parse(forwarded.body)).toEqual({ context: { targetingKey: 'ann', plan: 'pro' } })
    expect(forwarded.headers.authorization).toBe('Bearer k1')
    expect(forwarded.headers['x-tenant']).toBe('t1')
    expect(forwarded.headers.cookie).toBeUndefined()
    // The single-flag route answers from the same per-context answer.
    const one = await post(`${server.url}/ofrep/v1/evaluate/flags/greeting`, { context: { targetingKey: 'ann', plan: 'pro' } }, { Authorization: 'Bearer k1', 'X-Tenant': 't1' })
    expect(await one.json()).toMatchObject({ key: 'greeting', value: 'hi ann' })
    expect((await post(`${server.url}/ofrep/v1/evaluate/flags/nope`, { context: { targetingKey: 'ann' } })).status).toBe(404)
  })

  it('an upstream base URL with a query keeps it after the endpoint path; a fragment is not sent', async () => {
    // Before: the path was appended to the query (`/base/?tenant=t1/ofrep/v1/evaluate/flags`), so the
    // upstream was asked at /base/ for every context.
    const upstream = await startUpstream(perUser())
    const server = await startServer({ flags: undefined, upstream: `${upstream.url}/base/?tenant=t1#top`, upstreamTimeoutMs: 400, logger: recordingLogger() })
    expect((await bulk(server, { targetingKey: 'ann' })).status).toBe(200)
    expect(upstream.requests.at(-1)!.path).toBe('/base/ofrep/v1/evaluate/flags?tenant=t1')
  })

  it('tags every answer with a hash of its body but fetchedAt; an unchanged answer, and the held one served through an outage, are confirmed with 304', async () => {
    const upstream = await startUpstream(perUser())
    const server = await relay(upstream)
    const user = { targetingKey: 'ann', plan: 'pro' }
    const fresh = await evaluate(server, user)
    const text = await fresh.text()
    expect(fresh.status).toBe(200)
    const timeless = (body: string) => {
      const json = JSON.parse(body)
      delete json.metadata.holdfast.fetchedAt
      return `"${createHash('sha1').update(JSON.stringify(json)).digest('base64url')}"`
    }
    expect(fresh.headers.get('etag')).toBe(timeless(text))
    // Healthy: each answer is fetched again (a new fetchedAt); the same answer is confirmed (CONTRACT §2.1).
    const asked = upstream.requests.length
    const again = await evaluate(server, user, { 'If-None-Match': fresh.headers.get('etag')! })
    expect(upstream.requests.length).toBe(asked + 1)
    expect(again.status).toBe(304)
    // Down: the held answer goes out stale, under another tag, and that tag gets 304.
    upstream.set({ status: 503, text: 'down' })
    const held = await evaluate(server, user)
    const heldText = await held.text()
    expect(JSON.parse(heldText).metadata.holdfast.stale).toBe(true)
    const tag = held.headers.get('etag')!
    expect(tag).toBe(timeless(heldText))
    expect(tag).not.toBe(fresh.headers.get('etag'))
    const confirmed = await evaluate(server, user, { 'If-None-Match': tag })
    expect(confirmed.status).toBe(304)
    expect(confirmed.headers.get('etag')).toBe(tag)
    expect(await confirmed.text()).toBe('')
    // Another user's tag confirms nothing for this one.
    expect((await evaluate(server, { targetingKey: 'bob', plan: 'pro' }, { 'If-None-Match': tag })).status).toBe(503)
  })

  it('merges per flag as the client does: an error entry keeps the value, FLAG_NOT_FOUND removes, a partial answer keeps the rest', async () => {
    const upstream = await startUpstream(perUser())
    const server = await relay(upstream)
    const user = { targetingKey: 'bob', plan: 'pro' }
    await bulk(server, user)
    upstream.set({
      ofrep: () => ({
        flags: [
          { key: 'pro-feature', errorCode: 'GENERAL', errorDetails: 'rules engine down' },
          { key: 'greeting', errorCode: 'FLAG_NOT_FOUND' },
        ],
      }),
    })
    const merged = byKey((await bulk(server, user)).body)
    // Kept through the per-flag error, and says so.
    expect(merged['pro-feature']).toMatchObject({ value: true, variant: 'on', reason: 'STALE' })
    expect(merged.greeting).toBeUndefined()
    // Absent from a partial answer: kept (stale).
    expect(merged.limit).toMatchObject({ value: 10, reason: 'STALE' })
  })

  it('answers from each context’s last known good through every upstream failure; a context never seen gets 503', async () => {
    const upstream = await startUpstream(perUser((c) => Array.from({ length: 7 }, (_, i) => ({ key: `x${i}`, value: i, reason: 'STATIC' }))))
    // Each failure must reach the upstream: the relay's clock moves past the breaker's next probe
    // before each request (relay-breaker.test.ts: while it is open, nothing else is asked).
    let clock = Date.now()
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 400, log: recordingLogger(), now: () => (clock += 60_000) })
    const server = await startServer({ flags: undefined, source })
    const user = { targetingKey: 'cy', plan: 'free' }
    const good = await bulk(server, user)
    const failures: Array<[string, Behaviour]> = [
      // `Retry-After: 0`: no pause, so each failure after it reaches the upstream too (a 503 that
      // asks for a pause is waited out: relay-proxy-honest.test.ts).
      ['503', { status: 503, text: 'down', headers: { 'Retry-After': '0' } }],
      ['a hang', 'hang'],
      ['a reset', 'reset'],
      ['HTML', { status: 200, text: '<html>portal</html>', contentType: 'text/html' }],
      ['{}', { status: 200, json: {} }],
      ['{"flags": []}', { status: 200, json: { flags: [] } }],
      ['90% of the flags gone', { ofrep: () => ({ flags: [{ key: 'limit', value: 10, reason: 'STATIC' }] }) }],
      ['401', { status: 401, json: { errorCode: 'UNAUTHORIZED' } }],
    ]
    for (const [what, behaviour] of failures) {
      upstream.set(behaviour)
      const answer = await bulk(server, user)
      expect(answer.status, what).toBe(200)
      expect(answer.body.flags, what).toEqual(good.body.flags)
      expect(answer.body.metadata.holdfast, what).toEqual({ source: 'upstream', fetchedAt: good.body.metadata.holdfast.fetchedAt, stale: true })
      // (A hang: its request, the breaker's probe, has given up before the next is asked.)
      await waitFor(async () => (await (await fetch(`${server.url}/holdfast/v1/status`)).json()).upstream.breaker.probing !== true, 2000)
      // A context never seen has nothing to shrink from: only real failures leave it with nothing.
      if (what.startsWith('90%')) continue
      const stranger = await bulk(server, { targetingKey: `never-seen-${what}` })
      expect(stranger.status, what).toBe(503)
      expect(stranger.headers.get('retry-after'), what).toMatch(/^\d+$/)
    }
    const status = await (await fetch(`${server.url}/holdfast/v1/status`)).json()
    expect(status).toMatchObject({ ready: true, mode: 'upstream', stale: true, contexts: 1, upstream: { state: 'unauthorized' } })
    expect(status.refused).toBe(failures.length * 2 - 1)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
  })

  it('never serves one credential’s answer to another, even during an outage', async () => {
    const upstream = await startUpstream({
      ofrep: () => ({ flags: [{ key: 'secret-plan', value: 'enterprise', reason: 'STATIC' }] }),
    })
    const server = await relay(upstream)
    const user = { targetingKey: 'dee' }
    expect((await bulk(server, user, { Authorization: 'Bearer tenant-a' })).status).toBe(200)
    upstream.set({ status: 503, text: '' })
    expect((await bulk(server, user, { Authorization: 'Bearer tenant-a' })).status).toBe(200)
    expect((await bulk(server, user, { Authorization: 'Bearer tenant-b' })).status).toBe(503)
    expect((await bulk(server, user)).status).toBe(503)
    expect((await bulk(server, { targetingKey: 'dee', plan: 'x' }, { Authorization: 'Bearer tenant-a' })).status).toBe(503)
  })

  it('passes an upstream 400 for a bad context through, and concurrent requests for one context share one upstream call', async () => {
    const upstream = await startUpstream({ status: 400, json: { errorCode: 'INVALID_CONTEXT', errorDetails: 'no email' } })
    const server = await relay(upstream)
    const bad = await bulk(server, { targetingKey: 'e' })
    expect(bad).toMatchObject({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
    upstream.set({ delayMs: 150, then: perUser() })
    const before = upstream.requests.length
    const answers = await Promise.all(Array.from({ length: 6 }, () => bulk(server, { targetingKey: 'f' })))
    expect(upstream.requests.length - before).toBe(1)
    for (const answer of answers) expect(answer.status).toBe(200)
  })

  it('an upstream 413 or 431 for one client’s oversized context or headers is that request’s 400 INVALID_CONTEXT, not an upstream failure', async () => {
    // The upstream's own caps are below the relay's (a 64 KiB context, 16 KiB of headers): what it
    // refuses as too large is the request's fault, as a 400 is. Before: 503 + Retry-After (the
    // browser retried it for ever, each retry upstream again), and the status said `failing` and
    // `stale` after each one: any anonymous client flipped the operator's alerts with one request.
    const upstream = await startUpstream((request) =>
      request.body.length > 2000 ? { status: 413, text: 'Payload Too Large' } : String(request.headers['x-api-key'] ?? '').length > 2000 ? { status: 431, text: '' } : perUser(),
    )
    const server = await relay(upstream, { forwardHeaders: ['Authorization', 'X-API-Key'] })
    expect((await bulk(server, { targetingKey: 'a' })).status).toBe(200)
    const big = await bulk(server, { targetingKey: 'b', notes: 'x'.repeat(3000) })
    expect(big).toMatchObject({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
    expect(big.body.errorDetails).toMatch(/413/)
    const headers = await bulk(server, { targetingKey: 'c' }, { 'X-API-Key': 'k'.repeat(3000) })
    expect(headers).toMatchObject({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { upstream: { state: string }; stale: boolean }
    expect(status).toMatchObject({ upstream: { state: 'ok' }, stale: false })
    expect((await bulk(server, { targetingKey: 'a' })).body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: false })
  })

  it('an upstream 413 or 431 for a context it answered before (the same request) is its outage: the held values, stale, and the status says failing', async () => {
    // A gateway in front of the flag service is redeployed with a small body or header cap: the
    // request it now refuses is the very one it answered a minute ago, so the fault is not the
    // request's. Before: every held user got 400 INVALID_CONTEXT in place of their values (the
    // browser stops asking for that context), and the status said `ok` with lastSuccessAt moving.
    let cap = Infinity
    const upstream = await startUpstream((request) => {
      if (request.body.length > cap) return { status: 413, text: 'Payload Too Large' }
      if (String(request.headers.authorization ?? '').length > cap) return { status: 431, text: '' }
      return perUser()
    })
    const server = await relay(upstream)
    const context = { targetingKey: 'a', notes: 'x'.repeat(150) }
    const key = { Authorization: `Bearer ${'k'.repeat(200)}` }
    expect((await bulk(server, context)).status).toBe(200)
    expect((await bulk(server, { targetingKey: 'b' }, key)).status).toBe(200)
    cap = 100
    for (const [asked, headers] of [[context, {}], [{ targetingKey: 'b' }, key]] as const) {
      const held = await bulk(server, asked, headers)
      expect(held).toMatchObject({ status: 200, body: { metadata: { holdfast: { source: 'upstream', stale: true } } } })
      expect(byKey(held.body).greeting.value).toBe(`hi ${asked.targetingKey}`)
    }
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { upstream: { state: string; lastError?: { message: string } } }
    expect(status.upstream.state).toBe('failing')
    expect(status.upstream.lastError?.message).toMatch(/413|431/)
    // A context never answered that is too large is still that request's 400.
    expect(await bulk(server, { targetingKey: 'c', notes: 'x'.repeat(200) })).toMatchObject({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
  })

  it('restarts from the data dir: each context’s answer with its true age, hashed, least recently used out first', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream(perUser())
    const first = await relay(upstream, { dataDir: dir, maxContexts: 2 })
    const a = await bulk(first, { targetingKey: 'a' }, { Authorization: 'Bearer k' })
    await bulk(first, { targetingKey: 'b' })
    await bulk(first, { targetingKey: 'c' })
    await first.close()
    const { readdir, readFile } = await import('node:fs/promises')
    const saved = (await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f), 'utf8')))).join('\n')
    // Hashed: neither the raw targeting key nor the forwarded token is on disk.
    expect(saved).not.toMatch(/Bearer k/)
    expect(saved).not.toMatch(/"targetingKey"/)

    upstream.set('reset')
    const second = await relay(upstream, { dataDir: dir, maxContexts: 2 })
    // `a` was the least recently used of three with room for two.
    expect((await bulk(second, { targetingKey: 'a' }, { Authorization: 'Bearer k' })).status).toBe(503)
    const c = await bulk(second, { targetingKey: 'c' })
    expect(c.status).toBe(200)
    expect(byKey(c.body).greeting.value).toBe('hi c')
    expect(c.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    expect(c.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(Date.now())
    expect(c.body.metadata.holdfast.fetchedAt).toBeGreaterThanOrEqual(a.body.metadata.holdfast.fetchedAt)
    upstream.set(perUser())
    // Fresh again once the breaker's probe (the relay restarted during the outage: its own probe and
    // `a` failed, so it opened) finds the upstream back: within the first probe interval (1.2 s).
    await waitFor(async () => (await bulk(second, { targetingKey: 'c' })).body.metadata.holdfast.source === 'upstream', 3000)
    expect((await bulk(second, { targetingKey: 'c' })).body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: false })
  })

  it('an answer in the data dir dated in the future is served as fetched no later than now', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream(perUser())
    const first = await relay(upstream, { dataDir: dir })
    await bulk(first, { targetingKey: 'c' })
    await first.close()
    const { readdir, readFile, writeFile } = await import('node:fs/promises')
    const { decodeGeneration, encodeGeneration } = await import('../../packages/server/src/flags/generations')
    const newest = join(dir, (await readdir(dir)).filter((f) => f.startsWith('gen-')).sort().at(-1)!)
    const decoded = decodeGeneration(await readFile(newest, 'utf8'))
    if (!decoded.ok) throw new Error(decoded.reason)
    const record = JSON.parse(decoded.payload)
    for (const context of record.contexts) context.fetchedAt = Date.now() + 3 * 3_600_000
    await writeFile(newest, encodeGeneration(JSON.stringify(record)))
    upstream.set('reset')
    const second = await relay(upstream, { dataDir: dir })
    const c = await bulk(second, { targetingKey: 'c' })
    expect(c.body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    expect(c.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(Date.now())
  })

  it('a relay in front of a relay keeps the true age and the stale bit', async () => {
    const upstream = await startUpstream(perUser())
    const inner = await relay(upstream)
    const outer = await startServer({ flags: undefined, upstream: inner.url, logger: recordingLogger() })
    const user = { targetingKey: 'g' }
    const fresh = await bulk(outer, user)
    expect(fresh.body.metadata.holdfast.stale).toBe(false)
    upstream.set({ status: 503, text: '' })
    const through = await bulk(outer, user)
    expect(through.status).toBe(200)
    expect(through.body.metadata.holdfast).toMatchObject({ stale: true })
    expect(through.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(fresh.body.metadata.holdfast.fetchedAt)
    // Healed: a fresh answer is current now, not as old as the inner relay's first fetch.
    await new Promise((r) => setTimeout(r, 20))
    upstream.set(perUser())
    const healed = await bulk(outer, user)
    expect(healed.body.metadata.holdfast.stale).toBe(false)
    expect(healed.body.metadata.holdfast.fetchedAt).toBeGreaterThan(fresh.body.metadata.holdfast.fetchedAt)
  })

  it('a hanging upstream does not hold a context that has an answer: it goes out stale, and the upstream request carries on', async () => {
    const upstream = await startUpstream(perUser())
    // An upstream timeout far beyond the test's own: only the held answer can finish it in time.
    const server = await relay(upstream, { upstreamTimeoutMs: 60_000, heldAnswerAfterMs: 100 })
    const user = { targetingKey: 'i' }
    const fresh = await bulk(server, user)
    upstream.set('hang')
    const held = await bulk(server, user)
    expect(held.status).toBe(200)
    expect(held.body.flags).toEqual(fresh.body.flags)
    expect(held.body.metadata.holdfast.stale).toBe(true)
    // A context with nothing held has nothing better to offer than waiting (then a 503).
    const stranger = await Promise.race([bulk(server, { targetingKey: 'j' }).then(() => 'answered'), new Promise((r) => setTimeout(() => r('waiting'), 300))])
    expect(stranger).toBe('waiting')
  })

  it('while the upstream is known to be failing, a context with nothing held gets its 503 after the held-answer wait, not the whole upstream timeout', { timeout: 20_000 }, async () => {
    const upstream = await startUpstream(perUser())
    const server = await relay(upstream, { upstreamTimeoutMs: 3000, heldAnswerAfterMs: 200 })
    upstream.set('hang')
    // Not known yet: the first stranger waits the timeout out (the upstream may only be slow).
    let started = Date.now()
    expect((await bulk(server, { targetingKey: 'first' })).status).toBe(503)
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900)
    // Known now: the next ones are told at once, with a Retry-After; their requests carry on.
    // Before, every new user of an outage waited the whole timeout (5 s by default), as long as a
    // browser's own, holding a slot each.
    started = Date.now()
    const second = await bulk(server, { targetingKey: 'second' })
    expect(second.status).toBe(503)
    expect(Date.now() - started).toBeLessThan(1500)
    expect(second.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    // Back: a new user is answered (the upstream answers within the shorter wait).
    upstream.set(perUser())
    const back = await bulk(server, { targetingKey: 'third' })
    expect(back.status).toBe(200)
  })

  it('--on-upstream-unauthorized clear drops a context’s values on 401', async () => {
    const upstream = await startUpstream(perUser())
    const server = await relay(upstream, { onUpstreamUnauthorized: 'clear' })
    expect((await bulk(server, { targetingKey: 'h' })).status).toBe(200)
    upstream.set({ status: 401, text: '' })
    expect((await bulk(server, { targetingKey: 'h' })).status).toBe(503)
  })

  it('serves a values snapshot (a Bootstrap) to the user it was made for, never to another (503), while the upstream is down', async () => {
    const dir = await tempDir()
    const snapshot = join(dir, 'fallback.json')
    const { writeFile } = await import('node:fs/promises')
    await writeFile(snapshot, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'limit', value: 3, reason: 'STATIC' }], fetchedAt: 1_700_000_000_000 }))
    const upstream = await startUpstream({ status: 502, text: '' })
    const server = await relay(upstream, { snapshot })
    const answer = await bulk(server, { targetingKey: 'anonymous' })
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ flags: [{ key: 'limit', value: 3 }], metadata: { holdfast: { source: 'snapshot', fetchedAt: 1_700_000_000_000, stale: true } } })
    // A Bootstrap is one user's values (targeting applied for "anonymous"). Before, every context
    // never seen got them, 200: a paying user whose browser held `pro: true` got the anonymous
    // user's `pro: false` after a relay restart in an upstream outage, applied over its own values
    // (an answer beats the cache). CONTRACT §9: a context never seen gets 503 with Retry-After,
    // and the browser keeps what it holds; a first visit has the app's own `fallback`.
    const other = await bulk(server, { targetingKey: 'paying-user', plan: 'pro' })
    expect(other.status).toBe(503)
    expect(other.headers.get('retry-after')).toBeTruthy()
    // So it does not make the relay ready: a load balancer routing by /readyz would send every new
    // user to a relay that answers them all 503 (before: /readyz 200, `ready: true`).
    const readiness = async (of: FlagServer) => [(await fetch(`${of.url}/readyz`)).status, ((await (await fetch(`${of.url}/holdfast/v1/status`)).json()) as { ready: boolean }).ready]
    expect(await readiness(server)).toEqual([503, false])
    // It asks by itself until the upstream answers, and is ready then.
    upstream.set(perUser())
    await waitFor(async () => (await readiness(server))[0] === 200, 10_000)
    upstream.set({ status: 502, text: '' })
    // A definitions snapshot is evaluated for each context instead (ready through the outage).
    const definitions = join(dir, 'flags.snapshot.json')
    await writeFile(definitions, JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt: 1_700_000_000_000, version: 'v', definitions: { flags: { pro: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'plan' }, 'pro'] }, 'on', 'off'] } } } } }))
    const evaluating = await relay(upstream, { snapshot: definitions })
    expect(await readiness(evaluating)).toEqual([200, true])
    expect(byKey((await bulk(evaluating, { targetingKey: 'k', plan: 'pro' })).body).pro.value).toBe(true)
    expect(byKey((await bulk(evaluating, { targetingKey: 'k', plan: 'free' })).body).pro.value).toBe(false)
  })

  it('a snapshot with no flags (definitions or a Bootstrap) is not served: a context never seen gets 503, not an empty 200', async () => {
    // It was: with the upstream down every new user got `{"flags": []}` (every kill switch at its
    // default, state ready) and /readyz said 200, where --flags-url refuses the same snapshot.
    const dir = await tempDir()
    const { writeFile } = await import('node:fs/promises')
    const empties = {
      'definitions.json': { holdfastSnapshot: 1, kind: 'definitions', fetchedAt: 1_700_000_000_000, version: 'v', definitions: { flags: {} } },
      'bare.json': { flags: {} },
      'bootstrap.json': { context: { targetingKey: 'anonymous' }, flags: [], fetchedAt: 1_700_000_000_000 },
      'errors-only.json': { context: { targetingKey: 'anonymous' }, flags: [{ key: 'x', errorCode: 'PARSE_ERROR' }], fetchedAt: 1_700_000_000_000 },
    }
    const upstream = await startUpstream({ status: 502, text: '' })
    for (const [name, document] of Object.entries(empties)) {
      const snapshot = join(dir, name)
      await writeFile(snapshot, JSON.stringify(document))
      const logger = recordingLogger()
      const server = await relay(upstream, { snapshot, logger })
      // The Bootstraps' own user: the one they would be served to.
      const answer = await bulk(server, { targetingKey: 'anonymous' })
      expect(answer.status, name).toBe(503)
      expect(answer.headers.get('retry-after'), name).toMatch(/^\d+$/)
      expect((await fetch(`${server.url}/readyz`)).status, name).toBe(503)
      expect(logger.lines.join('\n'), name).toMatch(/snapshot .* cannot be served/)
      expect(((await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { snapshot?: unknown }).snapshot, name).toMatchObject({ usable: false })
    }
    // One taken on a machine whose clock ran ahead is served as fetched no later than now.
    const ahead = join(dir, 'ahead.json')
    await writeFile(ahead, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'limit', value: 3 }], fetchedAt: Date.now() + 3 * 3_600_000 }))
    const answer = await bulk(await relay(upstream, { snapshot: ahead }), { targetingKey: 'anonymous' })
    expect(answer.body.metadata.holdfast).toMatchObject({ source: 'snapshot', stale: true })
    expect(answer.body.metadata.holdfast.fetchedAt).toBeLessThanOrEqual(Date.now())
  })

  it('is ready once the upstream answers at all (a probe at start), not while it is down with nothing held', async () => {
    const upstream = await startUpstream('reset')
    const down = await relay(upstream)
    expect((await fetch(`${down.url}/readyz`)).status).toBe(503)
    expect(await (await fetch(`${down.url}/holdfast/v1/status`)).json()).toMatchObject({ ready: false, source: 'none', upstream: { state: 'failing' } })
    // A wrong URL (404) is not an upstream.
    upstream.set({ status: 404, text: 'Not Found' })
    expect((await fetch(`${(await relay(upstream)).url}/readyz`)).status).toBe(503)
    // An upstream that wants credentials the probe does not carry is still up and answering.
    upstream.set({ status: 401, text: '' })
    const locked = await relay(upstream)
    expect((await fetch(`${locked.url}/readyz`)).status).toBe(200)
    upstream.set(perUser())
    const up = await relay(upstream)
    expect((await fetch(`${up.url}/readyz`)).status).toBe(200)
  })

  // An ingress whose upstream is gone answers 404 (or a redirect to a login page, not followed for a
  // POST): neither opens nor closes the breaker, but with nothing to serve the relay re-asks all
  // the same (pinned: checked, found fine).
  it.each([
    ['down (connection reset)', 'reset'],
    ['answering 404 (an ingress whose upstream is gone)', { status: 404, text: 'default backend - 404' }],
    ['answering a redirect it does not follow', { status: 302, text: '', headers: { Location: '/login' } }],
  ] as Array<[string, Behaviour]>)('started while the upstream is %s with nothing to serve, turns ready by itself once it is back: no request needs to come first', async (_, gone) => {
    // Behind a load balancer that routes by /readyz (a Kubernetes Service), a relay that is not
    // ready gets no requests: before, it asked the upstream once at start and never again, so a
    // relay restarted during an outage stayed out of service (503 on /readyz) for good.
    const upstream = await startUpstream(gone)
    const server = await relay(upstream)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
    upstream.set(perUser())
    const asked = upstream.requests.length
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 8_000, 100)
    expect(await (await fetch(`${server.url}/holdfast/v1/status`)).json()).toMatchObject({ ready: true, upstream: { state: 'ok' } })
    // It asked again with a backoff (1 s doubling), not in a loop.
    expect(upstream.requests.length - asked).toBeLessThanOrEqual(3)
    expect((await bulk(server, { targetingKey: 'a' })).status).toBe(200)
  }, 15_000)

  it('survives hostile upstream answers: a value nested 100,000 deep, a 17 MiB body, a __proto__ key', async () => {
    const upstream = await startUpstream(perUser())
    const server = await relay(upstream)
    const user = { targetingKey: 'k' }
    const good = await bulk(server, user)
    const deep = `{"flags":[{"key":"limit","value":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`
    for (const text of [deep, `{"flags":[{"key":"x","value":"${'x'.repeat(17 * 1024 * 1024)}"}]}`]) {
      upstream.set({ status: 200, text, contentType: 'application/json' })
      const answer = await bulk(server, user)
      expect(answer.status).toBe(200)
      expect(answer.body.flags).toEqual(good.body.flags)
      expect(answer.body.metadata.holdfast.stale).toBe(true)
    }
    upstream.set({ status: 200, text: '{"flags":[{"key":"__proto__","value":{"polluted":true}},{"key":"limit","value":10},{"key":"pro-feature","value":false},{"key":"greeting","value":"hi"}],"metadata":{"__proto__":{"polluted":true}}}', contentType: 'application/json' })
    const odd = await bulk(server, user)
    expect(odd.status).toBe(200)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(odd.body.flags.map((f: { key: string }) => f.key)).toContain('__proto__')
  })
})
