// The relay's breaker (proxy mode) against any sequence of upstream outcomes, users' requests and
// clock moves (hours forward and back), with the upstream as an injected fetch: what each user is
// answered and what the status says must agree with what the upstream did.
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { createUpstreamSource } from '@holdfast/server'
import { recordingLogger } from './helpers'

vi.setConfig({ testTimeout: 120_000 })

type Mode = 'ok' | '500' | '400' | '404' | 'empty' | '429' | '429 b'
const step = fc.oneof(
  fc.record({ kind: fc.constant('mode' as const), mode: fc.constantFrom<Mode>('ok', '500', '400', '404', 'empty', '429', '429 b') }),
  fc.record({ kind: fc.constant('ask' as const), user: fc.integer({ min: 0, max: 4 }), tenant: fc.constantFrom('a', 'b') }),
  fc.record({ kind: fc.constant('ask' as const), user: fc.integer({ min: 0, max: 4 }), tenant: fc.constantFrom('a', 'b') }),
  fc.record({ kind: fc.constant('refresh' as const) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 7000 }) }),
  fc.record({ kind: fc.constant('jump' as const), ms: fc.constantFrom(-3 * 3_600_000, -2000, 3 * 3_600_000) }),
)

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } })

describe('proxy mode: the breaker, property', () => {
  it('a user is never answered another user\'s values, `stale: false` only from an answer just got, nothing asked while it is open and no probe is due, and the status says stale while it is open', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 60 }), async (steps) => {
        const clock = { at: 1_800_000_000_000 }
        let mode: Mode = 'ok'
        let version = 0
        const calls: Array<{ user: string; ok: boolean }> = []
        const fetch = (async (_url: string, init: RequestInit) => {
          const tenant = (init.headers as Record<string, string>).authorization ?? 'none'
          const user = `${String((JSON.parse(String(init.body)) as { context: { targetingKey: string } }).context.targetingKey)} ${tenant}`
          // '429 b': tenant b over its quota (with a Retry-After), tenant a served.
          const ok = mode === 'ok' || (mode === '429 b' && tenant !== 'b')
          calls.push({ user, ok })
          if (ok) return json(200, { flags: [{ key: 'banner', value: `v${version} ${user}`, reason: 'STATIC' }] })
          if (mode === '429 b') return new Response('Too Many Requests', { status: 429, headers: { 'Retry-After': '3' } })
          if (mode === '500') return new Response('Internal Server Error', { status: 500 })
          if (mode === '400') return json(400, { errorCode: 'INVALID_CONTEXT' })
          if (mode === '404') return new Response('default backend - 404', { status: 404 })
          if (mode === '429') return new Response('Too Many Requests', { status: 429 })
          return json(200, { flags: [] })
        }) as typeof globalThis.fetch
        const source = createUpstreamSource({ url: 'http://upstream.invalid', fetch, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock.at })
        await source.open()
        const got = new Set<string>()
        try {
          for (const s of steps) {
            // What a step set going in the background (a canary: see upstreamMonitor.ts) settles
            // before the next: a user's request that joined one asked upstream in the step before,
            // and its fresh answer would read as given unasked.
            for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
            if (s.kind === 'mode') {
              mode = s.mode
              version++
            } else if (s.kind === 'tick' || s.kind === 'jump') clock.at += s.ms
            else if (s.kind === 'refresh') await source.refreshDetails!({})
            else {
              const user = `u${s.user} ${s.tenant}`
              const before = source.relayStatus().upstream.breaker!
              const left = before.state === 'open' ? before.nextProbeAt! - clock.at : 0
              const due = before.state === 'closed' || left <= 0 || left > 5000
              const callsBefore = calls.length
              const answer = await source.evaluate!({ context: { targetingKey: `u${s.user}` }, headers: { authorization: s.tenant } })
              const asked = calls.slice(callsBefore).filter((call) => call.user === user)
              if (!due) expect(asked).toEqual([])
              const body = answer.body as { flags?: Array<{ value: string }>; metadata?: { holdfast: { stale: boolean } } }
              if (answer.status === 200) {
                expect(body.flags![0].value).toMatch(new RegExp(` ${user}$`))
                if (!body.metadata!.holdfast.stale) expect(asked.at(-1)?.ok).toBe(true)
                got.add(user)
              }
              // A user answered values before is never given a 503 (a 400 is the upstream's own word).
              if (got.has(user)) expect([200, 400]).toContain(answer.status)
              const after = source.relayStatus()
              if (asked.at(-1)?.ok) expect(after.upstream.breaker).toMatchObject({ state: 'closed' })
              // (With nothing held, the relay's own probe answered 400/401 still makes it ready and `ok`, so that a
              // load balancer sends the users whose requests can close it: not asserted there.)
              if (after.upstream.breaker!.state === 'open' && after.contexts! > 0) expect(after).toMatchObject({ stale: true, upstream: { state: expect.not.stringMatching(/^ok$/) } })
            }
          }
        } finally {
          await source.close()
        }
      }),
      { numRuns: 300 },
    )
  })
})
