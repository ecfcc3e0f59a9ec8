// A re-ask round under --on-upstream-unauthorized clear drops every held context of a refused SDK
// key without asking each (reaskRounds.ts). A user's request for one of them may be out already,
// sent before the 401: its 200, got after the drop, is the upstream's earlier word, not its later
// one. It must not end the drop (the relay would serve the revoked user through the outage after).
import { describe, expect, it } from 'vitest'
import { startHoldingUpstream } from './dropFixtures'
import { evaluate, flagsByKey, startServer, waitFor } from './helpers'

const KEY = { Authorization: 'Bearer shared' }

describe('an answer asked for before a drop, got after it', () => {
  it('does not end the drop: the revoked user gets 503 in the outage after, not the values from before', async () => {
    // The victim's request sent while its key was still accepted: answered 200, but only later.
    const upstream = await startHoldingUpstream('victim')
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm', onUpstreamUnauthorized: 'clear' })
    for (let i = 0; i < 5; i++) await (await evaluate(relay, { targetingKey: `a${i}` }, KEY)).arrayBuffer()
    await (await evaluate(relay, { targetingKey: 'victim' }, KEY)).arrayBuffer()
    // The victim's next request goes out and waits at the upstream (served what is held meanwhile).
    upstream.hold()
    const inFlight = evaluate(relay, { targetingKey: 'victim' }, KEY).then((r) => r.arrayBuffer())
    await waitFor(() => upstream.held() !== undefined, 5000)
    for (let i = 0; i < 5; i++) await (await evaluate(relay, { targetingKey: `b${i}` }, KEY)).arrayBuffer()
    // The key is revoked: a round's first 401 drops the key's other contexts, the victim's too.
    upstream.set('revoked')
    await (await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })).arrayBuffer()
    const contexts = async () => ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { contexts: number }).contexts
    expect(await contexts()).toBe(0)
    // The request sent before the 401 is answered now, 200 with the values from before.
    upstream.release()
    await inFlight
    // Its answer is in (a request after it is answered by the upstream, so the relay has read it).
    upstream.set('down')
    const outage = await evaluate(relay, { targetingKey: 'victim' }, KEY)
    const body = outage.status === 200 ? await flagsByKey(outage) : await outage.text()
    // Before: 200 with plan 'pro', stale, for as long as the upstream was down.
    expect([outage.status, outage.status === 200 ? (body as Record<string, { value: unknown }>).plan?.value : undefined]).toEqual([503, undefined])
    expect(await contexts()).toBe(0)
  }, 20_000)
})
