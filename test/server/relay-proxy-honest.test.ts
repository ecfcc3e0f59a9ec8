// Proxy mode (--upstream) says what is true: a version an operator can compare, an upstream state
// that one context's refused answer does not turn to "failing", a 503 with Retry-After honoured as
// a pause like a 429, and re-ask rounds whose changes reach the streams even when the round ends
// at an upstream that died halfway. Against a real relay and a fake upstream on 127.0.0.1.
import { describe, expect, it } from 'vitest'
import { createUpstreamSource, type FlagServer, type FlagServerOptions } from '@holdfast/server'
import { evaluate, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { startUpstream, type Behaviour, type FakeUpstream } from './relay-fakes'

async function relay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 1000, adminKey: 'adm', logger: recordingLogger(), ...options })
}

async function bulk(server: FlagServer, context: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await evaluate(server, context, headers)
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

async function status(server: FlagServer): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as Record<string, any>
}

async function refresh(server: FlagServer): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
  return { status: response.status, body: (await response.json()) as Record<string, any> }
}

const metrics = async (server: FlagServer) => (await fetch(`${server.url}/metrics`)).text()

/** Ten flags per user; `banner` says `banner` (so a test can change one value for everyone). */
function tenFlags(banner: () => string = () => 'spring'): Behaviour {
  return {
    ofrep: (context) => ({
      flags: [
        { key: 'banner', value: banner(), reason: 'STATIC', variant: banner() },
        { key: 'greeting', value: `hi ${String(context.targetingKey)}`, reason: 'STATIC' },
        ...Array.from({ length: 8 }, (_, i) => ({ key: `kill-${i}`, value: false, reason: 'STATIC' })),
      ],
    }),
  }
}

describe('proxy mode: the version', () => {
  it('status, refresh and /metrics name one version; it changes when a held answer changes, and is the same on a relay holding the same answers', async () => {
    let banner = 'spring'
    const upstream = await startUpstream(tenFlags(() => banner))
    const dir = await tempDir()
    const server = await relay(upstream, { dataDir: dir })
    // Nothing held: nothing to name.
    expect((await status(server)).version).toBeNull()
    await bulk(server, { targetingKey: 'ann' })
    await bulk(server, { targetingKey: 'bob' }, { Authorization: 'Bearer k' })
    const first = await status(server)
    // Before: null, in the status and in every refresh answer, so nothing could be compared.
    expect(first.version).toEqual(expect.any(String))
    const unchanged = await refresh(server)
    expect(unchanged.body).toMatchObject({ outcome: 'unchanged', version: first.version, contexts: 2 })
    expect(await metrics(server)).toContain(`holdfast_relay_version_info{version="${first.version}"} 1`)

    banner = 'summer'
    const applied = await refresh(server)
    expect(applied.body).toMatchObject({ outcome: 'applied', changed: ['banner'] })
    expect(applied.body.version).toEqual(expect.any(String))
    expect(applied.body.version).not.toBe(first.version)
    expect((await status(server)).version).toBe(applied.body.version)
    const scraped = await metrics(server)
    expect(scraped).toContain(`holdfast_relay_version_info{version="${applied.body.version}"} 1`)
    expect(scraped).not.toContain(first.version)

    // Another relay that holds the same answers (in another order) names the same version.
    const twin = await relay(upstream)
    await bulk(twin, { targetingKey: 'bob' }, { Authorization: 'Bearer k' })
    await bulk(twin, { targetingKey: 'ann' })
    expect((await status(twin)).version).toBe(applied.body.version)

    // A restart from the data dir holds the same answers: the same version, through an outage too.
    await server.close()
    upstream.set({ status: 503, text: 'down' })
    const restarted = await relay(upstream, { dataDir: dir })
    expect((await status(restarted)).version).toBe(applied.body.version)
  })
})

describe('proxy mode: one context refused is not an upstream down', () => {
  it('a shrunk or emptied answer for one context is counted in refused, while the upstream state stays ok', async () => {
    const upstream = await startUpstream(tenFlags())
    const server = await relay(upstream)
    await bulk(server, { targetingKey: 'ann' })
    const good = await bulk(server, { targetingKey: 'gutted' })
    // The upstream's rules for one user lost most of their flags; everyone else is answered in full.
    upstream.set((request) => {
      const user = JSON.parse(request.body).context.targetingKey
      if (user === 'gutted') return { status: 200, json: { flags: [{ key: 'banner', value: 'x', reason: 'STATIC' }] } }
      if (user === 'emptied') return { status: 200, json: { flags: [] } }
      return tenFlags()
    })
    await bulk(server, { targetingKey: 'ann' })
    const held = await bulk(server, { targetingKey: 'gutted' })
    expect(held.body.flags).toEqual(good.body.flags)
    expect(held.body.metadata.holdfast.stale).toBe(true)
    await bulk(server, { targetingKey: 'emptied' })
    const now = await status(server)
    // Before: "failing", and /metrics said so too, while the upstream answered every request.
    expect(now.upstream.state).toBe('ok')
    expect(now.refused).toBe(2)
    expect(now.refusedBy).toMatchObject({ shrink: 1, empty: 1 })
    expect(now.upstream.lastError).toMatchObject({ kind: 'empty' })
    const scraped = await metrics(server)
    expect(scraped).toContain('holdfast_relay_upstream_state{state="ok"} 1')
    expect(scraped).toContain('holdfast_relay_refused_total{reason="shrink"} 1')
    // A real outage still says failing.
    upstream.set({ status: 503, text: 'down' })
    await bulk(server, { targetingKey: 'ann' })
    expect((await status(server)).upstream.state).toBe('failing')
  })

  it('a refresh round where only one context was refused says refused, not failed', async () => {
    const upstream = await startUpstream(tenFlags())
    const server = await relay(upstream)
    await bulk(server, { targetingKey: 'ann' })
    await bulk(server, { targetingKey: 'gutted' })
    upstream.set((request) => (JSON.parse(request.body).context.targetingKey === 'gutted' ? { status: 200, json: { flags: [{ key: 'banner', value: 'x' }] } } : tenFlags()))
    const round = await refresh(server)
    expect(round.body).toMatchObject({ outcome: 'refused', contexts: 2, error: { kind: 'shrink' } })
    expect((await status(server)).upstream.state).toBe('ok')
  })
})

describe('proxy mode: every context refused is the upstream failing', () => {
  it('a re-ask round in which the answer for every held context was refused (too deep) turns the state failing; a usable answer turns it ok', async () => {
    let broken = false
    const upstream = await startUpstream(() => (broken ? { status: 200, contentType: 'application/json', text: `{"flags":[{"key":"banner","value":${'['.repeat(600)}${']'.repeat(600)}}]}` } : tenFlags()))
    const server = await relay(upstream)
    try {
      for (const user of ['u1', 'u2', 'u3']) expect((await bulk(server, { targetingKey: user })).status).toBe(200)
      // A broken deploy upstream: every answer nests past 512 levels. Each request alone is one context's
      // refusal; a whole round of them is an upstream that serves nobody.
      broken = true
      await bulk(server, { targetingKey: 'u1' })
      expect((await status(server)).upstream.state).toBe('ok')
      const round = await refresh(server)
      expect(round.body).toMatchObject({ outcome: 'refused', contexts: 3, error: { kind: 'too-large' } })
      const s = await status(server)
      // Before: ok, with refused climbing, while nobody got a usable answer.
      expect(s.upstream.state).toBe('failing')
      expect(s.upstream.lastError).toMatchObject({ kind: 'too-large' })
      expect(await metrics(server)).toContain('holdfast_relay_upstream_state{state="failing"} 1')
      // Every user keeps their last good answer, marked stale.
      expect((await bulk(server, { targetingKey: 'u2' })).body.metadata.holdfast.stale).toBe(true)
      broken = false
      await bulk(server, { targetingKey: 'u3' })
      expect((await status(server)).upstream.state).toBe('ok')
    } finally {
      await server.close()
    }
  })
})

describe('proxy mode: an upstream 503 with Retry-After', () => {
  it('pauses asking with those credentials (held answers go out stale), at most a minute, and never another key', async () => {
    const upstream = await startUpstream(tenFlags())
    let clock = 1_800_000_000_000
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    await source.open()
    try {
      const ask = (targetingKey: string, key: string) => source.evaluate!({ context: { targetingKey }, headers: { authorization: `Bearer ${key}` } })
      expect((await ask('u', 'busy')).status).toBe(200)
      const overloaded: Behaviour = { status: 503, text: 'overloaded', headers: { 'Retry-After': '3600' } }
      upstream.set((request) => (request.headers.authorization === 'Bearer busy' ? overloaded : tenFlags()))
      expect(await ask('u', 'busy')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
      const asked = upstream.requests.length
      // Before: every one of these went to the overloaded upstream, each answered 503.
      for (let i = 0; i < 5; i++) {
        clock += 1000
        expect(await ask('u', 'busy')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
        expect((await ask(`never-seen-${i}`, 'busy')).status).toBe(503)
      }
      expect(upstream.requests.length).toBe(asked)
      expect(source.relayStatus().upstream.lastError).toMatchObject({ httpStatus: 503 })
      expect(await ask('u', 'other')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
      expect(upstream.requests.length).toBe(asked + 1)
      // A minute after, whatever it said, the upstream is asked again.
      clock += 60_000
      await ask('u', 'busy')
      expect(upstream.requests.length).toBe(asked + 2)
    } finally {
      await source.close()
    }
  })
})

describe('proxy mode: a re-ask round that meets an upstream dying halfway', () => {
  it('the changes it did get reach the open streams at once', async () => {
    let banner = 'spring'
    const upstream = await startUpstream(tenFlags(() => banner))
    // Notices at once, even right after a failed round (an outage's end spreads them otherwise).
    const server = await relay(upstream, { pollIntervalSeconds: 0.2, liveUpdates: { recoveryWindowMs: 0 } })
    await bulk(server, { targetingKey: 'ann' })
    await bulk(server, { targetingKey: 'dies' })
    // 'dies' and 'later' both fail from the change on: two contexts of three is the upstream going
    // down, and the round is 'failed' (one context failing alone while more others answer is not).
    await bulk(server, { targetingKey: 'later' })
    const controller = new AbortController()
    const stream = await fetch(`${server.url}/holdfast/v1/stream`, { signal: controller.signal })
    let received = ''
    void stream.body
      ?.pipeThrough(new TextDecoderStream())
      .pipeTo(new WritableStream({ write: (chunk) => void (received += chunk) }))
      .catch(() => {})
    try {
      await waitFor(async () => (await status(server)).reask?.outcome === 'unchanged', 5000)
      // ann's banner changes; the upstream fails on the other contexts from then on.
      upstream.set((request) => (JSON.parse(request.body).context.targetingKey !== 'ann' ? { status: 503, text: 'down' } : tenFlags(() => banner)))
      banner = 'summer'
      await waitFor(async () => (await status(server)).reask?.outcome === 'failed', 5000)
      expect((await bulk(server, { targetingKey: 'ann' })).body.flags[0].value).toBe('summer')
      // Before: a round that ended failed sent no notice, and the next round saw nothing new for
      // ann (its answer was already updated): the change never reached a stream.
      await waitFor(() => received.includes('refetchEvaluation'), 3000)
    } finally {
      controller.abort()
    }
  }, 20_000)
})

describe('proxy mode: two credentials, one context, through re-ask and refresh', () => {
  it('each credential is asked again with its own header and keeps its own values', async () => {
    const upstream = await startUpstream((request) => ({ status: 200, json: { flags: [{ key: 'plan', value: `plan of ${String(request.headers.authorization)}`, reason: 'STATIC' }] } }))
    const server = await relay(upstream)
    const user = { targetingKey: 'same-user' }
    await bulk(server, user, { Authorization: 'Bearer A' })
    await bulk(server, user, { Authorization: 'Bearer B' })
    const before = upstream.requests.length
    expect((await refresh(server)).body).toMatchObject({ outcome: 'unchanged', contexts: 2 })
    const asked = upstream.requests.slice(before).map((request) => request.headers.authorization).sort()
    expect(asked).toEqual(['Bearer A', 'Bearer B'])
    upstream.set({ status: 503, text: '' })
    expect((await bulk(server, user, { Authorization: 'Bearer A' })).body.flags[0].value).toBe('plan of Bearer A')
    expect((await bulk(server, user, { Authorization: 'Bearer B' })).body.flags[0].value).toBe('plan of Bearer B')
  })
})

describe('proxy mode: a slow but healthy upstream at a cold start', () => {
  it('new users waiting for a turn get their values or a 503 with Retry-After within the timeout; an answer that comes late is held for the retry; the upstream is not called failing', async () => {
    // Each answer takes 300 ms; one request at a time; the relay waits at most 1 s.
    const upstream = await startUpstream({ delayMs: 300, then: tenFlags() })
    const server = await relay(upstream, { maxUpstreamRequests: 1, upstreamTimeoutMs: 1000 })
    await waitFor(async () => (await status(server)).upstream.state === 'ok', 5000)
    const before = upstream.requests.length
    const started = Date.now()
    // u0…u4 arrive at once, u0 three times over: one upstream request for it.
    const users = ['u0', 'u0', 'u0', 'u1', 'u2', 'u3', 'u4']
    const answers = await Promise.all(
      users.map(async (targetingKey) => {
        const response = await evaluate(server, { targetingKey })
        const body = await response.json()
        return { targetingKey, status: response.status, retryAfter: response.headers.get('retry-after'), body, ms: Date.now() - started }
      }),
    )
    for (const answer of answers) {
      // Never a hang, never an empty 200.
      expect(answer.ms, answer.targetingKey).toBeLessThan(1800)
      if (answer.status === 200) expect(answer.body.flags, answer.targetingKey).toHaveLength(10)
      else expect(answer, answer.targetingKey).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) })
    }
    expect(answers.filter((a) => a.targetingKey === 'u0').map((a) => a.status)).toEqual([200, 200, 200])
    expect(new Set(upstream.requests.slice(before).map((r) => JSON.parse(r.body).context.targetingKey)).size).toBe(upstream.requests.length - before)
    const late = answers.filter((a) => a.status === 503).map((a) => a.targetingKey)
    expect(late.length).toBeGreaterThan(0)
    // The upstream answered every request it was given in 300 ms. Before: "failing", from the
    // relay's own queue (a turn not had within 1 s) and from a request started with 100 ms left.
    await new Promise((resolve) => setTimeout(resolve, 400))
    const now = await status(server)
    expect(now.upstream.state).toBe('ok')
    expect(now.refused).toBe(0)
    // Every answer the upstream was asked for is held, for the retry the 503 asked for. Before: the
    // request that had its turn with 100 ms left was cut off, its answer lost.
    const asked = new Set(upstream.requests.slice(before).map((r) => JSON.parse(r.body).context.targetingKey))
    expect(now.contexts).toBe(asked.size)
    const retried = await Promise.all(late.filter((targetingKey) => asked.has(targetingKey)).map((targetingKey) => bulk(server, { targetingKey })))
    for (const answer of retried) expect(answer.status).toBe(200)
  }, 20_000)
})

describe('proxy mode: /metrics under many distinct contexts', () => {
  it('has as many series after thousands of users (each their own key) as after a few: nothing per context, per key or per error code', async () => {
    let i = 0
    // Per-flag error codes the upstream makes up per user must not become label values either.
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'a', value: 1, reason: 'STATIC' }, { key: 'b', errorCode: `E_${String(context.targetingKey)}` }] }) })
    const server = await relay(upstream, { maxContexts: 100 })
    // Series names with their labels (the version's value changes, its series stays one).
    const series = async () =>
      (await metrics(server))
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => line.replace(/ [^ ]+$/, '').replace(/version="[^"]*"/, 'version'))
    const users = async (count: number) => {
      for (const end = i + count; i < end; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => evaluate(server, { targetingKey: `user-${i + j}`, email: `u${i + j}@example.com` }, { Authorization: `Bearer key-${i + j}` }).then((r) => r.arrayBuffer())))
      }
    }
    await users(50)
    upstream.set({ status: 503, text: '' })
    await users(50)
    upstream.set({ status: 200, json: { flags: [] } })
    await users(50)
    upstream.set({ ofrep: (context) => ({ flags: [{ key: 'a', value: 2, reason: 'STATIC' }, { key: 'b', errorCode: `E_${String(context.targetingKey)}` }] }) })
    await users(50)
    await series() // the first scrape adds the metrics route's own series
    const few = await series()
    // Run once with HOLDFAST_PROBE_CONTEXTS=100000 (2.5 minutes): the same.
    await users(Number(process.env.HOLDFAST_PROBE_CONTEXTS ?? 1000))
    const many = await series()
    expect(many.filter((name) => !few.includes(name))).toEqual([])
    expect(many.length).toBe(few.length)
  }, 300_000)
})

describe('proxy mode: one key paused by the upstream (429/503 + Retry-After)', () => {
  it('does not end the re-ask rounds for every other key: their changes still reach the streams', async () => {
    let banner = 'spring'
    const upstream = await startUpstream(tenFlags(() => banner))
    // Notices at once, even right after a failed round (an outage's end spreads them otherwise).
    const server = await relay(upstream, { pollIntervalSeconds: 0.2, liveUpdates: { recoveryWindowMs: 0 } })
    // Four contexts of the limited key first (the least recently used, asked first in a round).
    for (let i = 0; i < 4; i++) await bulk(server, { targetingKey: `a${i}` }, { Authorization: 'Bearer limited' })
    await bulk(server, { targetingKey: 'b' }, { Authorization: 'Bearer other' })
    upstream.set((request) => (request.headers.authorization === 'Bearer limited' ? { status: 429, text: '', headers: { 'Retry-After': '60' } } : tenFlags(() => banner)))
    const controller = new AbortController()
    const stream = await fetch(`${server.url}/holdfast/v1/stream`, { signal: controller.signal })
    let received = ''
    void stream.body
      ?.pipeThrough(new TextDecoderStream())
      .pipeTo(new WritableStream({ write: (chunk) => void (received += chunk) }))
      .catch(() => {})
    try {
      // The limited key's 429s come in; from then on its contexts are paused.
      await waitFor(() => upstream.requests.filter((r) => r.headers.authorization === 'Bearer limited').length >= 8, 5000)
      // Rounds go on past them: only the other key is asked, and the round says so.
      // (The round that met the 429s asked all five: it is 'unchanged' too, one key failing alone.)
      await waitFor(async () => { const round = (await status(server)).reask; return round?.outcome === 'unchanged' && round.asked === 1 }, 5000)
      expect((await status(server)).reask).toMatchObject({ contexts: 5, asked: 1 })
      banner = 'summer'
      // Before: every round ended at the first paused context (as if the upstream were down), so
      // the other key was not asked again for a minute, and its change reached no stream.
      await waitFor(() => received.includes('refetchEvaluation'), 3000)
      expect(upstream.requests.filter((r) => r.headers.authorization === 'Bearer limited').length).toBe(8)
    } finally {
      controller.abort()
    }
  }, 20_000)
})

/** A proxy-mode source under `clear-after=60` on an injected clock (`clock.at`, epoch ms), with its upstream; opened. */
async function clearAfterSource() {
  const upstream = await startUpstream(tenFlags())
  const clock = { at: 1_800_000_000_000 }
  const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'clear-after', seconds: 60 }, timeoutMs: 2000, log: recordingLogger(), now: () => clock.at })
  await source.open()
  return { upstream, source, clock }
}

describe('proxy mode: --on-upstream-unauthorized clear-after, per credentials', () => {
  it('drops a revoked key’s values after S seconds of its own 401s, however often other keys succeed, and never another key’s values for the first 401 of its own', async () => {
    const upstream = await startUpstream(tenFlags())
    let clock = 1_800_000_000_000
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'clear-after', seconds: 60 }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    await source.open()
    try {
      const ask = (key: string) => source.evaluate!({ context: { targetingKey: 'u' }, headers: { authorization: `Bearer ${key}` } })
      for (const key of ['revoked', 'busy', 'late']) expect((await ask(key)).status).toBe(200)
      upstream.set((request) => (['Bearer revoked', 'Bearer late'].includes(String(request.headers.authorization)) ? { status: 401, text: '' } : tenFlags()))
      // Seventy seconds of 401s for one key while another key is answered every ten.
      for (let t = 0; t <= 70; t += 10) {
        expect((await ask('busy')).status).toBe(200)
        const revoked = await ask('revoked')
        // Before: every success of the other key restarted the count, so the revoked key's values
        // were served for as long as anyone else was answered.
        if (t <= 50) expect(revoked.status, `${t} s`).toBe(200)
        else expect(revoked.status, `${t} s`).toBe(503)
        clock += 10_000
      }
      // Now only 401s for a while (the revoked key), then a first 401 for another key: its values
      // stay. Before: the count was the revoked key's, so they went at once.
      for (let i = 0; i < 3; i++) {
        await ask('revoked')
        clock += 30_000
      }
      expect(await ask('late')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
    } finally {
      await source.close()
    }
  })
})

describe('proxy mode: clear-after under a stream of made-up keys', () => {
  it('drops a revoked key’s values after S seconds of its own 401s even when the clock is set back an hour meanwhile', async () => {
    const { upstream, source, clock } = await clearAfterSource()
    try {
      const ask = () => source.evaluate!({ context: { targetingKey: 'u' }, headers: { authorization: 'Bearer revoked' } })
      expect((await ask()).status).toBe(200)
      upstream.set({ status: 401, text: '' })
      expect((await ask()).status).toBe(200)
      // Right after its first 401 NTP steps the clock back an hour; its 401s go on every ten seconds.
      clock.at -= 3_600_000
      for (let t = 10; t <= 80; t += 10) {
        clock.at += 10_000
        const revoked = await ask()
        // Before: the first 401 looked an hour ahead, and the revoked key's values were served for
        // that hour. (The ten seconds in which the clock was set back count as none: no reading
        // says how long they were.)
        if (t <= 60) expect(revoked.status, `${t} s`).toBe(200)
        else expect(revoked.status, `${t} s`).toBe(503)
      }
    } finally {
      await source.close()
      upstream.close()
    }
  })

  it('still drops a revoked key’s values after S seconds when many other keys are refused in between', async () => {
    const upstream = await startUpstream(tenFlags())
    let clock = 1_800_000_000_000
    // maxContexts stands for the default 10,000: the keys remembered are bounded by it.
    const source = createUpstreamSource({ url: upstream.url, maxContexts: 4, maxShrinkPercent: 50, onUnauthorized: { mode: 'clear-after', seconds: 60 }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    await source.open()
    try {
      const ask = (key: string) => source.evaluate!({ context: { targetingKey: 'u' }, headers: { authorization: `Bearer ${key}` } })
      expect((await ask('revoked')).status).toBe(200)
      upstream.set((request) => (request.headers.authorization === 'Bearer revoked' || String(request.headers.authorization).startsWith('Bearer junk') ? { status: 401, text: '' } : tenFlags()))
      let junk = 0
      for (let t = 0; t <= 80; t += 10) {
        const revoked = await ask('revoked')
        if (t <= 50) expect(revoked.status, `${t} s`).toBe(200)
        // Before: 200 for as long as anyone sent more made-up keys than maxContexts between two of
        // its requests: each pushed the revoked key's "refused since" out, and it started again.
        else expect(revoked.status, `${t} s`).toBe(503)
        for (let i = 0; i < 6; i++) expect((await ask(`junk-${junk++}`)).status).toBe(503)
        clock += 10_000
      }
    } finally {
      await source.close()
    }
  })
})

describe('proxy mode: one user’s 401 is that user’s', () => {
  it('a token the upstream refuses while others are accepted is counted, not an unauthorized upstream; a refusal of the accepted key, or of everyone for a minute, is', async () => {
    const upstream = await startUpstream(tenFlags())
    let clock = 1_800_000_000_000
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock })
    await source.open()
    const ask = (key: string, user = 'u') => source.evaluate!({ context: { targetingKey: user }, headers: { authorization: `Bearer ${key}` } })
    const state = () => source.relayStatus!()
    try {
      expect((await ask('good', 'ann')).status).toBe(200)
      expect((await ask('expired', 'bob')).status).toBe(200)
      upstream.set((request) => (request.headers.authorization === 'Bearer expired' ? { status: 401, text: '' } : tenFlags()))
      // Bob's token expired; Ann's is accepted.
      for (let i = 0; i < 3; i++) {
        clock += 10_000
        expect((await ask('good', 'ann')).body).toMatchObject({ metadata: { holdfast: { stale: false } } })
        // Bob keeps his last good values, marked stale: the upstream refused him.
        expect((await ask('expired', 'bob')).body).toMatchObject({ metadata: { holdfast: { stale: true } } })
        // Before: `unauthorized` (and the relay's status stale) after each of Bob's requests.
        expect(state().upstream.state, `round ${i}`).toBe('ok')
        expect(state().stale).toBe(false)
      }
      expect(state().refusedBy).toMatchObject({ unauthorized: 3 })
      expect(state().upstream.lastError).toMatchObject({ kind: 'unauthorized', httpStatus: 401 })
      // A re-ask round says the same: Bob's refusal is his (refused), not an upstream that failed.
      clock += 1000
      expect(await source.refreshDetails!()).toMatchObject({ outcome: 'refused', contexts: 2, error: { kind: 'unauthorized' } })
      expect(state().upstream.state).toBe('ok')

      // The key last accepted is refused too (the relay's upstream key revoked: everyone's fail).
      upstream.set({ status: 401, text: '' })
      clock += 10_000
      await ask('good', 'ann')
      expect(state().upstream.state).toBe('unauthorized')
      expect(state().stale).toBe(true)

      // Anyone accepted again: ok. Then only Bob, for over a minute since anyone was accepted.
      upstream.set((request) => (request.headers.authorization === 'Bearer expired' ? { status: 401, text: '' } : tenFlags()))
      clock += 10_000
      await ask('good', 'ann')
      expect(state().upstream.state).toBe('ok')
      clock += 61_000
      await ask('expired', 'bob')
      expect(state().upstream.state).toBe('unauthorized')

      // A clock set back an hour right after Ann was accepted: her acceptance is still a moment
      // ago, and Bob's 401 his own. Before: it looked an hour ahead, no "within the last minute",
      // and Bob's 401 made the upstream `unauthorized` until the clock caught up or Ann asked again.
      await ask('good', 'ann')
      clock -= 3_600_000
      await ask('expired', 'bob')
      expect(state().upstream.state).toBe('ok')
      // A minute on with nobody accepted since, as ever: unauthorized.
      clock += 61_000
      await ask('expired', 'bob')
      expect(state().upstream.state).toBe('unauthorized')
    } finally {
      await source.close()
      upstream.close()
    }
  })
})

describe('proxy mode: one context’s unusable answer is that context’s', () => {
  for (const [what, broken] of [
    ['an answer over 16 MiB', () => ({ status: 200, contentType: 'application/json', text: `{"flags":[{"key":"banner","value":"${'x'.repeat(17 * 1024 * 1024)}"}]}` })],
    ['a value nested past 512 levels', () => ({ status: 200, json: { flags: [{ key: 'banner', value: JSON.parse('['.repeat(600) + ']'.repeat(600)) }] } })],
  ] as const) {
    it(`${what} for one user neither ends the re-ask round for the others nor makes the upstream failing`, async () => {
      let banner = 'spring'
      let brokenNow = false
      const good = tenFlags(() => banner)
      const upstream = await startUpstream((request) => (brokenNow && JSON.parse(request.body).context.targetingKey === 'odd' ? broken() : good))
      const server = await relay(upstream)
      try {
        // The odd user first, so a round that ends at its answer never reaches most of the others.
        for (const user of ['odd', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']) expect((await bulk(server, { targetingKey: user })).status).toBe(200)
        brokenNow = true
        banner = 'summer'
        const round = await refresh(server)
        // Before: the round ended at the odd user's answer as if the upstream were down ('failed',
        // the others' change never fetched nor announced), and the state said failing.
        expect(round.body).toMatchObject({ outcome: 'refused', changed: ['banner'] })
        const s = await status(server)
        expect(s.upstream.state).toBe('ok')
        expect(s.refusedBy).toMatchObject({ 'too-large': 1 })
        expect(s.reask).toMatchObject({ contexts: 8, asked: 8 })
        for (const user of ['u1', 'u7']) expect((await bulk(server, { targetingKey: user })).body.flags.find((f: { key: string }) => f.key === 'banner').value).toBe('summer')
        // The odd user keeps their last good answer, marked stale.
        const odd = await bulk(server, { targetingKey: 'odd' })
        expect(odd.body.flags.find((f: { key: string }) => f.key === 'banner').value).toBe('spring')
        expect(odd.body.metadata.holdfast.stale).toBe(true)
      } finally {
        await server.close()
      }
    })
  }
})
