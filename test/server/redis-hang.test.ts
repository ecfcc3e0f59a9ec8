// A Redis that accepts the connection and never answers: a proxy in front of it (Envoy, twemproxy,
// stunnel) whose backend is gone, a Redis stuck loading or in a long DEBUG SLEEP, a firewall that
// lost the connection's state. node-redis bounds only the TCP connect: its handshake, and a command
// written to a connection that went silent, wait for ever, and nothing makes it connect again.
// Before, a relay in front of such a Redis said down with "The client is offline" (no bound named),
// and stayed cut off from Redis (solo, down) after Redis came back, until it was restarted. Two
// relays reach a real redis-server through a TCP proxy the test switches between swallowing
// everything and passing bytes.
import { describe, expect, it, vi } from 'vitest'
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy'
import { settled, status, useRedisFleet, values, type Relay } from './redis-fleet'
import { evaluate, timed, waitFor } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 30_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

// Once the proxy passes bytes again, each relay is back within a few heartbeats (2 s): at worst the
// handshake bound (4 command timeouts, 1.2 s here) on a connection swallowed just before, the wait
// before a fresh one connects (growing while none answers: at most 3.2 s after the few seconds of
// silence here), its handshake. Measured 0.5-1.9 s; the rest is room
// for a loaded machine.
const RECONNECT_BOUND_MS = 10_000
// Serving reads memory only; a loaded machine still answers in far less than this.
const ANSWER_BOUND_MS = 1000

/** Two relays reaching a real redis-server through a proxy: on --flags-url, or (`proxyMode`) on --upstream, an OFREP upstream answering `hello <targetingKey>`. */
async function fleetBehindProxy(proxyMode = false): Promise<{ proxy: TcpProxy; upstream: FakeUpstream; relays: () => Promise<Relay[]> }> {
  const redis = await redisServer()
  const proxy = await startTcpProxy(redis.port)
  cleanups.push(() => proxy.close())
  const upstream = await startUpstream(
    proxyMode ? { ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'TARGETING_MATCH' }] }) } : { document: booleanFlags(3, 'off') },
  )
  const options = proxyMode ? { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined } : {}
  const relays = async () => [await relay({ ...redis, url: proxy.url }, upstream, options), await relay({ ...redis, url: proxy.url }, upstream, options)]
  return { proxy, upstream, relays }
}

/** Every relay up again within the bound once the proxy passes bytes, two connections each (every swallowed one let go, none doubled). */
async function reconnects(proxy: TcpProxy, relays: Relay[]) {
  proxy.restore()
  const healed = performance.now()
  for (const r of relays) {
    await waitFor(async () => (await status(r.server)).redis.state === 'up', RECONNECT_BOUND_MS).catch(() => undefined)
    expect((await status(r.server)).redis).toMatchObject({ state: 'up' })
  }
  expect(performance.now() - healed).toBeLessThan(RECONNECT_BOUND_MS)
  await waitFor(() => proxy.connections() === 2 * relays.length, 10_000).catch(() => undefined)
  expect(proxy.connections()).toBe(2 * relays.length)
}

/** Down, with the timeout named, on the status and the metrics. */
async function saysDown(relays: Relay[]) {
  for (const r of relays) {
    await waitFor(async () => (await status(r.server)).redis.state === 'down', 10_000).catch(() => undefined)
    expect((await status(r.server)).redis).toMatchObject({ state: 'down', lastError: expect.stringMatching(/within \d+ ms/) })
    expect(await (await fetch(`${r.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_up 0$/m)
  }
}

/** While nothing answers: every flag request answered at once, from the relay's own polls; the status says down and names the timeout. */
async function servesWhileSilent(relays: Relay[], forMs: number) {
  for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
  const until = performance.now() + forMs
  while (performance.now() < until) {
    for (const r of relays) {
      const answer = await timed(() => values(r.server))
      expect(answer.value).toMatchObject({ status: 200, flags: { f0: false } })
      expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await saysDown(relays)
}

/** Once the proxy passes bytes: both relays back by themselves, one leader, a change at the upstream reaching the follower through Redis, no connection left behind. */
async function recovers(proxy: TcpProxy, upstream: FakeUpstream, relays: Relay[]) {
  await reconnects(proxy, relays)
  const [, follower] = await settled(relays)
  const followerPolls = follower.polls()
  upstream.set({ document: booleanFlags(3, 'on') })
  for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
  expect(follower.polls()).toBe(followerPolls)
  expect(proxy.connections()).toBe(4)
  for (const r of relays) expect(await (await fetch(`${r.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_up 1$/m)
}

describe('a Redis that accepts the connection but never answers', () => {
  it('from the start (the handshake is never answered): served from the upstream, down with the timeout named; once it answers, both relays reconnect by themselves', async () => {
    const { proxy, upstream, relays: start } = await fleetBehindProxy()
    proxy.blackHole()
    const relays = await start()
    // Long enough for several handshakes to go unanswered on each connection.
    await servesWhileSilent(relays, 4000)
    await recovers(proxy, upstream, relays)
  })

  it('mid-session (the handshake answered, then every command hangs): the same', async () => {
    const { proxy, upstream, relays: start } = await fleetBehindProxy()
    const relays = await start()
    await settled(relays)
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 10_000)
    proxy.blackHole()
    await servesWhileSilent(relays, 4000)
    await recovers(proxy, upstream, relays)
  })

  it('proxy mode (--upstream), mid-session: each new user answered from the upstream within the bound; once it answers, an answer one relay got is served by the other', async () => {
    const { proxy, upstream, relays: start } = await fleetBehindProxy(true)
    const relays = await start()
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 10_000)
    proxy.blackHole()
    // A store command waits its timeout (300 ms) at most, and no answer waits on one.
    for (let i = 0; i < 10; i++) {
      for (const r of relays) {
        const answer = await timed(async () => {
          const response = await evaluate(r.server, { targetingKey: `user-${i}` })
          return { status: response.status, body: await response.json() }
        })
        expect(answer.value).toMatchObject({ status: 200, body: { flags: [{ key: 'greeting', value: `hello user-${i}` }] } })
        expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS)
      }
    }
    await saysDown(relays)
    await reconnects(proxy, relays)
    const [a, b] = relays
    expect((await evaluate(a.server, { targetingKey: 'ada' })).status).toBe(200)
    // b never asked for ada, and now cannot: it serves a's answer once it has taken it from Redis
    // (not by counting what it took: the answers both got while Redis was silent are shared too).
    upstream.set({ status: 503, text: 'down' })
    await waitFor(async () => (await evaluate(b.server, { targetingKey: 'ada' })).status === 200, 10_000).catch(() => undefined)
    expect(await (await evaluate(b.server, { targetingKey: 'ada' })).json()).toMatchObject({ flags: [{ key: 'greeting', value: 'hello ada' }] })
  })
})
