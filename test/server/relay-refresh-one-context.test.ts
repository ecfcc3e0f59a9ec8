// Proxy mode, `POST /holdfast/v1/refresh` when the upstream fails one context alone (a targeting
// rule that crashes on one user's attributes) while it answers every other one. The refresh asked
// them all and applied the changes: it did not fail. Before, it answered 502 `failed` every time,
// so a deploy step running `curl -f …/refresh` failed for one user's context, and the status said
// the latest round `failed` though every other user's values had been refreshed.
import { describe, expect, it } from 'vitest'
import { evaluate, flagsByKey, startServer } from './helpers'
import { startUpstream } from './relay-fakes'

describe('a refresh in proxy mode, one context failing alone', () => {
  it('answers 200 with the changes, the failure named (error, failed: 1); the status says the same', async () => {
    let value = 'old'
    // Its 500 comes after the others' answers (a rule that takes a while to crash): the round has
    // asked every context by then.
    const upstream = await startUpstream((request) =>
      request.body.includes('"crashes"') && value === 'new' ? { delayMs: 300, then: { status: 500, text: 'rule error' } } : { ofrep: () => ({ flags: [{ key: 'plan', value, reason: 'STATIC' }] }) },
    )
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm' })
    const users = ['crashes', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6']
    for (const targetingKey of users) expect((await evaluate(relay, { targetingKey })).status).toBe(200)
    value = 'new'
    const response = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    const body = (await response.json()) as Record<string, unknown>
    expect(body).toMatchObject({ contexts: 7, asked: 7, answered: 6, failed: 1, changed: ['plan'], error: { message: expect.stringContaining('500') } })
    expect(response.status).toBe(200)
    expect(body.outcome).toBe('applied')
    const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask: Record<string, unknown> }
    expect(status.reask).toMatchObject({ contexts: 7, asked: 7, answered: 6, outcome: 'applied' })
    for (const targetingKey of users.slice(1)) expect((await flagsByKey(await evaluate(relay, { targetingKey }))).plan.value).toBe('new')
  })

  it('an upstream down for everyone still makes the refresh fail (502 failed)', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'a', reason: 'STATIC' }] }) })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm' })
    for (const targetingKey of ['u1', 'u2', 'u3']) await evaluate(relay, { targetingKey })
    upstream.set({ status: 503, text: 'down' })
    const response = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    expect(response.status).toBe(502)
    expect(await response.json()).toMatchObject({ outcome: 'failed', answered: 0 })
  })
})
