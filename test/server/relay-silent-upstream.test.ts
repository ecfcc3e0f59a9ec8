// Proxy mode, an upstream that accepts connections and never answers (a hung process, a full
// accept queue behind a load balancer). The breaker opens only when the first requests time out;
// before, until then every new user's request went upstream, one connection each (up to
// maxUpstreamRequests, 256, at once): a flood of a service that was already stuck. Now, once a
// request has gone unanswered as long as a held answer waits (1 s) with nothing back since, the
// others wait for it instead; a slow upstream that does answer lets them go, and loses nobody.
import { describe, expect, it, vi } from 'vitest'
import { evaluate, startServer } from './helpers'
import { startUpstream, type Behaviour } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000 })

const VALUES: Behaviour = { ofrep: () => ({ flags: [{ key: 'a', value: 1, reason: 'STATIC' }] }) }

/** A relay (upstream timeout 3 s) on an upstream that answered `VALUES` to user `held`, and answers `then` to everyone from now on. */
async function turned(then: Behaviour) {
  let now = false
  const upstream = await startUpstream(() => (now ? then : VALUES))
  const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 3000 })
  expect((await evaluate(server, { targetingKey: 'held' })).status).toBe(200)
  now = true
  return { upstream, server }
}

/** {@link turned}; 60 new users arrive over 3 s. */
async function burst(then: Behaviour) {
  const { upstream, server } = await turned(then)
  const before = upstream.requests.length
  const answers: Array<Promise<Response>> = []
  for (let i = 0; i < 60; i++) {
    answers.push(evaluate(server, { targetingKey: `new-${i}` }))
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const responses = await Promise.all(answers)
  // Counted once every user has the answer: a count taken as the burst ended missed a request the
  // relay had just sent (a canary) that the upstream had not read yet on a loaded machine.
  const sent = upstream.requests.slice(before)
  const usersAsked = new Set(sent.flatMap((request) => /"targetingKey":"(new-\d+)"/.exec(request.body)?.[1] ?? []))
  return { server, sent: sent.length, usersAsked: usersAsked.size, statuses: responses.map((r) => r.status), retryAfter: responses.map((r) => r.headers.get('retry-after')) }
}

describe('an upstream that accepts and never answers', () => {
  it('is not sent one request per new user while its first requests hang; each user gets 503 + Retry-After', async () => {
    const { server, sent, usersAsked, statuses, retryAfter } = await burst('hang')
    // Before: 60 (every new user its own upstream connection, all hanging). Now about 1 s of them
    // (20 at one user per 50 ms) and a canary a second, with slack for a loaded machine.
    expect(sent).toBeLessThanOrEqual(35)
    expect(statuses.every((status) => status === 503)).toBe(true)
    expect(retryAfter.every((value) => value !== null && Number(value) > 0)).toBe(true)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    // The users who waited are answered unasked: once the hung requests time out and open the
    // breaker ("breaker"), or, on a machine slow enough that a waiter's own bound came first,
    // because the upstream answered none of the requests out ("silent"). Every user is one or the other.
    const unasked = (reason: string) => Number(new RegExp(`holdfast_relay_unasked_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0)
    expect(unasked('breaker') + unasked('silent')).toBeGreaterThanOrEqual(60 - usersAsked)
  })

  it('a slow upstream that does answer (1.5 s) still answers every new user', async () => {
    const { statuses } = await burst({ delayMs: 1500, then: VALUES })
    expect(statuses.every((status) => status === 200)).toBe(true)
  })

  it('an upstream that always answers in 3.5 s (under the 5 s timeout) answers every new user', async () => {
    // The gate took a request out 1 s as silence, whatever the upstream's usual pace: a user who
    // came 1 s after the first of a burst waited for its answer (2.5 s), then 3.5 s for their own:
    // past the 5 s bound, 503, where without the gate every one got 200 in 3.5 s. Silence is now
    // counted against the slowest of the latest answers (twice it), not 1 s alone.
    const upstream = await startUpstream({ delayMs: 3500, then: VALUES })
    const server = await startServer({ flags: undefined, upstream: upstream.url })
    // (The start waits 2 s for its probe, answered at 3.5 s: until then a new user gets 503 in 1 s.)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    expect((await evaluate(server, { targetingKey: 'first' })).status).toBe(200)
    const answers: Array<Promise<Response>> = []
    // 60 new users over 3 s: from 1 s on, the first one's request is out, unanswered, nothing since.
    for (let i = 0; i < 60; i++) {
      answers.push(evaluate(server, { targetingKey: `new-${i}` }))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const statuses = (await Promise.all(answers)).map((response) => response.status)
    expect(statuses).toEqual(statuses.map(() => 200))
  })

  it('300 users waiting on a hung upstream: a few requests go, each user gets 503 within the timeout, close() does not hang (pinned: found fine)', async () => {
    const { upstream, server } = await turned('hang')
    void evaluate(server, { targetingKey: 'first' }).catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 1200))
    const before = upstream.requests.length
    const answers = Array.from({ length: 300 }, (_, i) => evaluate(server, { targetingKey: `new-${i}` }).then((response) => response.status, (error: Error) => error.message))
    // (All in by then: a connection still in the listen queue at close() is refused, as a drain does.)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    // One canary a second, not one request each (without the gate: 300 hanging connections, 256 at once).
    expect(upstream.requests.length - before).toBeLessThanOrEqual(5)
    const closing = performance.now()
    await server.close()
    // Within the users' own bound (the waiters are told at the upstream timeout), not the 10 s drain.
    expect(performance.now() - closing).toBeLessThan(6000)
    expect(new Set(await Promise.all(answers))).toEqual(new Set([503]))
  })
})
