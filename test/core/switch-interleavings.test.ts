// Switches, refreshes and answers in every order, against a model: users A, B, C; the server holds
// a version per user and answers `who` = the user it computed for, `ver` = that user's version,
// with an ETag naming both; requests are answered (200, 304 when the ETag sent is current, 500, a
// dropped connection, a 401) in whatever order fast-check picks, while the cache read is slow or not,
// with pause() (a logout), clearCache(), the server moving a version on or back, and a page
// rendered with a bootstrap of some version, 429 + Retry-After, time passing (retries, timeouts,
// polls), and at most one request out at a time. The page mounts with start() alone, with a
// refresh() beside it, or on a slow first cache read; the server may be back on the version the
// bootstrap was rendered with. This server never answers anything unreadable, so INVALID_RESPONSE
// is never shown (a 304 for an ETag no longer held is asked again), and after pause() nothing is
// asked until the next switch.
// Before 07bb130 it found, in a few hundred runs: a cache read landing after a refresh()'s answer
// showing a flag that answer had removed (`odd` beside an even `ver`), and after a 401 with
// clearCacheOnUnauthorized, the refused user's cached values.
import { afterEach, expect, test } from 'vitest'
import fc from 'fast-check'
import { createClient, createMemoryStorage, type Bootstrap, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createManualClock, createTestLogger } from '../support/clock'

interface Pending {
  user: string
  etag?: string
  resolve: (r: Response) => void
  reject: (e: unknown) => void
  done: boolean
}

const USERS = ['A', 'B', 'C']
const op = fc.oneof(
  fc.record({ kind: fc.constant('switch' as const), user: fc.constantFrom(...USERS) }),
  fc.record({ kind: fc.constant('refresh' as const) }),
  fc.record({ kind: fc.constant('answer' as const), pick: fc.nat(5), how: fc.constantFrom('200', '304', '500', 'reset', '401', '429') }),
  fc.record({ kind: fc.constant('bump' as const), user: fc.constantFrom(...USERS) }),
  fc.record({ kind: fc.constant('hold' as const) }),
  fc.record({ kind: fc.constant('release' as const) }),
  fc.record({ kind: fc.constant('clearCache' as const) }),
  fc.record({ kind: fc.constant('pause' as const) }),
  // The server goes back to the previous version (an ETag is its content's: the older one again).
  fc.record({ kind: fc.constant('revert' as const), user: fc.constantFrom(...USERS) }),
  // Time passes: retries, Retry-After and polls (every 30 s) fire.
  fc.record({ kind: fc.constant('time' as const), ms: fc.constantFrom(1000, 6000, 31_000) }),
)

/** A user's flags at a version: `who`, `ver`, and `odd` only when the version is odd. */
const snapshotOf = (user: string, ver: number) => [{ key: 'who', value: user }, { key: 'ver', value: ver }, ...(ver % 2 ? [{ key: 'odd', value: true }] : [])]

const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})

const tick = async (n = 4) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

test('what the app is shown is the current user’s, or a stand-in while loading; once every answer is in, it is their current version', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 30 }), fc.subarray(USERS), fc.boolean(), fc.option(fc.record({ ver: fc.integer({ min: 1, max: 3 }), ago: fc.constantFrom(-1000, 1000, 3600_000), current: fc.boolean() })), fc.constantFrom('start', 'start+refresh', 'slow cache'), async (ops, cachedUsers, clearOnUnauthorized, rendered, mount) => {
      const versions: Record<string, number> = { A: 1, B: 1, C: 1 }
      const etagOf = (u: string) => `"${u}-${versions[u]}"`
      const pending: Pending[] = []
      const problems: string[] = []
      let paused = false
      /** The user and version of the last 200 or 304 sent. */
      let answered: { user: string; ver: number } | undefined
      const fetch = ((_url: string, init: RequestInit) => {
        const body = JSON.parse(init.body as string)
        const headers = init.headers as Record<string, string>
        // pause() (a logout): no request at all until the next setContext, a re-ask neither.
        if (paused) problems.push(`a request for ${body.context.targetingKey} while paused`)
        return new Promise<Response>((resolve, reject) => {
          const p: Pending = { user: body.context.targetingKey, etag: headers['If-None-Match'], resolve, reject, done: false }
          init.signal?.addEventListener('abort', () => ((p.done = true), reject(new DOMException('aborted', 'AbortError'))))
          pending.push(p)
        })
      }) as typeof globalThis.fetch
      const answer = (p: Pending, how: string) => {
        p.done = true
        if (how === 'reset') return p.reject(new TypeError('fetch failed'))
        if (how === '500' || how === '401') return p.resolve(new Response('{}', { status: Number(how) }))
        if (how === '429') return p.resolve(new Response('{}', { status: 429, headers: { 'Retry-After': '5' } }))
        const etag = etagOf(p.user)
        answered = { user: p.user, ver: versions[p.user] }
        if (how === '304' && p.etag === etag) return p.resolve(new Response(null, { status: 304, headers: { ETag: etag } }))
        p.resolve(
          new Response(JSON.stringify({ flags: snapshotOf(p.user, versions[p.user]) }), {
            status: 200,
            headers: { ETag: etag, 'Content-Type': 'application/json' },
          }),
        )
      }

      const inner = createMemoryStorage()
      let gate: Promise<void> | undefined
      let open = () => {}
      const storage: FlagStorage = { ...inner, get: async (k) => ((gate && (await gate)), inner.get(k)) }
      const clock = createManualClock()
      const make = (user: string, f = fetch, bootstrap?: Bootstrap) => {
        const c = createClient({ bootstrap, url: 'http://flags.test', context: { targetingKey: user }, storage, fetch: f, logger: createTestLogger(), clock, refreshIntervalMs: 30_000, refreshOnFocus: false, liveUpdates: false, random: () => 0.5, clearCacheOnUnauthorized: clearOnUnauthorized })
        clients.push(c)
        return c
      }
      // Earlier pages saved these users' values (version 1).
      for (const u of cachedUsers) {
        const quick = ((url: string, init: RequestInit) => {
          const pend: Pending[] = []
          const p = fetch(url, init)
          pend.push(pending.pop()!)
          answer(pend[0], '200')
          return p
        }) as typeof globalThis.fetch
        const c = make(u, quick)
        await c.start()
        await c.close()
      }

      // A server-rendered page for A: version `ver`'s values and ETag, rendered `ago` ms ago (a CDN).
      // `current`: the server is on that version now (it went back to it since the entries were saved).
      if (rendered?.current) versions.A = rendered.ver
      const bootstrap = rendered && { context: { targetingKey: 'A' }, flags: snapshotOf('A', rendered.ver), etag: `"A-${rendered.ver}"`, fetchedAt: Date.now() - rendered.ago }
      const client = make('A', fetch, bootstrap ?? undefined)
      // A slow first cache read (IndexedDB's first open): requests made meanwhile go out with the
      // bootstrap's ETag, and the entry lands while they are out (until a `release`). Or an app
      // that refreshes on mount: its request goes out before the entry is read.
      if (mount == 'slow cache') gate = new Promise<void>((r) => (open = r))
      const calls: Promise<unknown>[] = [client.start()]
      // (Its request out, the entry lands before the first op: a 401 applied in the microtasks
      // between the entry's read and its landing showed the entry after clearCacheOnUnauthorized
      // dropped it; with IndexedDB each is its own task, so such an order is not explored here.)
      if (mount == 'start+refresh') (calls.push(client.refresh()), await tick())
      let current = 'A'
      const check = (when: string) => {
        // One request in flight per client (CONTRACT §4): a switch aborts the old one or waits for it.
        const out = pending.filter((p) => !p.done).length
        if (out > 1) problems.push(`${when}: ${out} requests out at once`)
        const status = client.getStatus()
        // This server never answers anything unreadable: a 304 for an ETag the client no longer holds
        // (an entry landed while the request was out) is asked again, not shown as a fault.
        if (status.error?.code === 'INVALID_RESPONSE') problems.push(`${when}: ${current} shown INVALID_RESPONSE (${status.error.message})`)
        const who = client.getDetails('who', '', { exposure: false })
        if (who.source !== 'default' && who.value !== current && !(status.state === 'loading' && who.stale))
          problems.push(`${when}: ${current} shown ${who.value} (${who.source}, stale ${who.stale}) in ${status.state}`)
        // Credentials refused with clearCacheOnUnauthorized: none of this user's values stay on screen.
        if (clearOnUnauthorized && status.error?.code === 'UNAUTHORIZED' && who.source !== 'default')
          problems.push(`${when}: ${current} refused (401) but shown ${who.value} (${who.source})`)
        // What is shown as ready from an answer is that answer's snapshot: `odd` is there exactly
        // when `ver` is odd. (Before any answer, a cache entry fills in flags a bootstrap lacks:
        // precedence is per flag, CONTRACT §5.)
        const { value: ver, source } = client.getDetails('ver', 0, { exposure: false })
        if (status.state === 'ready' && source === 'network' && client.getGate('odd') !== (ver % 2 === 1))
          problems.push(`${when}: ${current} shown ver ${ver} with odd ${client.getGate('odd')} (${client.getDetails('odd', false, { exposure: false }).source})`)
      }
      client.subscribe(() => check('on change'))
      for (const o of ops) {
        const before = client.getStatus().lastSuccessAt
        answered = undefined
        if (o.kind === 'switch') {
          current = o.user
          paused = false
          calls.push(client.setContext({ targetingKey: o.user }))
        } else if (o.kind === 'refresh') calls.push(client.refresh())
        else if (o.kind === 'bump') versions[o.user]++
        else if (o.kind === 'time') clock.advance(o.ms)
        else if (o.kind === 'revert') versions[o.user] = Math.max(1, versions[o.user] - 1)
        else if (o.kind === 'clearCache') calls.push(client.clearCache())
        else if (o.kind === 'pause') (client.pause(), (paused = true))
        else if (o.kind === 'hold') gate ??= new Promise<void>((r) => (open = r))
        else if (o.kind === 'release') gate = void open()
        else {
          const open = pending.filter((p) => !p.done)
          if (open.length) answer(open[o.pick % open.length], o.how)
        }
        await tick()
        check(`after ${JSON.stringify(o)}`)
        // An answer applied for this user shows the version it answered with (a 304: the one it confirmed).
        const after = client.getStatus()
        const last = answered as { user: string; ver: number } | undefined
        if (last?.user === current && after.lastSuccessAt !== before && after.state === 'ready' && client.getValue('ver', 0) !== last.ver)
          problems.push(`after ${JSON.stringify(o)}: ${current} answered with version ${last.ver}, shown ${client.getValue('ver', 0)} (${client.getDetails('ver', 0).source})`)
      }
      // A logout (pause) ends with the user back.
      if (paused) ((paused = false), calls.push(client.setContext({ targetingKey: current })))
      // Everything lets go: the cache answers, every request gets its 200 (or 304 when current).
      gate = void open()
      for (let i = 0; i < 20; i++) {
        // Past any Retry-After and backoff: the retries the scheduler holds go out.
        clock.advance(70_000)
        await tick()
        for (const p of pending.filter((p) => !p.done)) answer(p, '304')
      }
      const hung = Symbol('hung')
      const settled = await Promise.race([Promise.all(calls), new Promise((r) => setTimeout(() => r(hung), 5000))])
      if (settled === hung) problems.push('a call never settled')
      // The last attempt failed (a reset, a 500): the app's next refresh() asks again.
      check('settled')
      let final = client.getStatus()
      {
        const refreshed = client.refresh()
        for (let i = 0; i < 5; i++) {
          await tick()
          for (const p of pending.filter((p) => !p.done)) answer(p, '304')
        }
        final = await refreshed
      }
      expect(problems).toEqual([])
      expect(client.getContext().targetingKey).toBe(current)
      expect(final.state).toBe('ready')
      expect(client.getValue('who', '')).toBe(current)
      expect(client.getValue('ver', 0)).toBe(versions[current])
      expect(client.getGate('odd')).toBe(versions[current] % 2 === 1)
      await client.close()
    }),
    {
      numRuns: Number(process.env.RUNS ?? 300),
      // Found by hand, too rare to count on a random run: a refresh() before start() read the cache
      // goes out with the bootstrap's ETag; the newer entry lands and wins; the server, on the
      // bootstrap's version again, answers 304 (before 12c53a3: the entry's values passed off as it).
      // The same with a logout while that request is out: the 304 "A-2" is not asked again for the
      // user who left (before 7a5c160: a request after pause()).
      examples: [
        [[{ kind: 'refresh' }, { kind: 'bump', user: 'A' }, { kind: 'answer', pick: 0, how: '304' }], ['A'], false, { ver: 2, ago: 3600_000, current: false }, 'start'],
        [[{ kind: 'refresh' }, { kind: 'pause' }, { kind: 'bump', user: 'A' }, { kind: 'answer', pick: 0, how: '304' }], ['A'], false, { ver: 2, ago: 3600_000, current: false }, 'start'],
      ],
    },
  )
}, 120_000)
