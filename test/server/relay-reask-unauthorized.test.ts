// A round of re-asks (refresh, or the streams' interval) in proxy mode when the upstream refuses a
// key (401/403) that many held contexts share, e.g. one SDK key every browser sends: the upstream
// answers the same for each of them, so asking it once per context is a flood of refused requests
// (10,000 contexts: 10,000 requests a round), not news. The other keys are still asked.
import { describe, expect, it } from 'vitest'
import { evaluate, startServer, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const SHARED_KEY = 100

describe('a re-ask round when the upstream refuses a key many contexts share', () => {
  it('asks once (per worker) for that key, and still asks the contexts of other keys', async () => {
    let revoked = false
    const upstream = await startUpstream((request) => {
      if (revoked && request.headers.authorization === 'Bearer shared') return { status: 401, json: { errorCode: 'UNAUTHORIZED' } }
      return { ofrep: () => ({ flags: [{ key: 'banner', value: true, reason: 'STATIC' }] }) }
    })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm' })
    for (let i = 0; i < SHARED_KEY; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }, { Authorization: 'Bearer shared' }).then((r) => r.arrayBuffer())))
    }
    await (await evaluate(relay, { targetingKey: 'other' }, { Authorization: 'Bearer other' })).arrayBuffer()
    revoked = true
    const before = upstream.requests.length
    const response = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    await response.arrayBuffer()
    const asked = upstream.requests.slice(before)
    // Before: all 100 contexts of the refused key were asked, each refused the same way.
    expect(asked.filter((r) => r.headers.authorization === 'Bearer shared').length).toBeLessThanOrEqual(4)
    expect(asked.filter((r) => r.headers.authorization === 'Bearer other').length).toBe(1)
    // The held values of the refused key are kept (--on-upstream-unauthorized keep, the default).
    const held = await evaluate(relay, { targetingKey: 'visitor-3' }, { Authorization: 'Bearer shared' })
    expect(held.status).toBe(200)
  }, 20_000)

  it('with clear, every context of the refused key loses its values, asked or not', async () => {
    let revoked = false
    const upstream = await startUpstream((request) => {
      if (revoked && request.headers.authorization === 'Bearer shared') return { status: 401, json: { errorCode: 'UNAUTHORIZED' } }
      return { ofrep: () => ({ flags: [{ key: 'banner', value: true, reason: 'STATIC' }] }) }
    })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm', onUpstreamUnauthorized: 'clear' })
    for (let i = 0; i < 20; i++) await (await evaluate(relay, { targetingKey: `visitor-${i}` }, { Authorization: 'Bearer shared' })).arrayBuffer()
    await (await evaluate(relay, { targetingKey: 'other' }, { Authorization: 'Bearer other' })).arrayBuffer()
    revoked = true
    await (await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })).arrayBuffer()
    const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { contexts: number }
    expect(status.contexts).toBe(1)
  }, 20_000)
})

describe('a re-ask round under clear-after=SECONDS when the upstream refuses a key many contexts share', () => {
  it('drops every context of the refused key SECONDS after the round, asked or not, though nobody asks again', async () => {
    let revoked = false
    const upstream = await startUpstream((request) => {
      if (revoked && request.headers.authorization === 'Bearer shared') return { status: 401, json: { errorCode: 'UNAUTHORIZED' } }
      return { ofrep: () => ({ flags: [{ key: 'banner', value: true, reason: 'STATIC' }] }) }
    })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm', onUpstreamUnauthorized: 'clear-after=0.3' })
    for (let i = 0; i < 20; i++) await (await evaluate(relay, { targetingKey: `visitor-${i}` }, { Authorization: 'Bearer shared' })).arrayBuffer()
    await (await evaluate(relay, { targetingKey: 'other' }, { Authorization: 'Bearer other' })).arrayBuffer()
    revoked = true
    await (await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })).arrayBuffer()
    const requests = upstream.requests.length
    const contexts = async () => ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { contexts: number }).contexts
    // Before: the round asked one or a few contexts of the key (refused: their timer dropped them),
    // skipped the others as not due yet and left them out of the run: they stayed held (and in the
    // data dir, served after a restart in an outage) until their users' next 401.
    await waitFor(async () => (await contexts()) === 1, 3000).catch(() => undefined)
    expect(await contexts()).toBe(1)
    expect(upstream.requests.length).toBe(requests)
  }, 20_000)
})
