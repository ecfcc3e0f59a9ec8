// Proxy mode, --redis: a relay whose upstream failed a context looks it up in the store (`missed`)
// and takes another relay's answer when it is newer than any it has seen. Forced here: that look-up
// is still on its way back from Redis when this relay's own next request for the context is
// answered by the upstream, asked for later than the answer the look-up brings. The older answer
// must not replace the newer one: before, it did, the newer was published all the same (so the
// relay believed it had it), and through the outage that followed it served the user the older
// value for as long as the outage lasted. And under `--on-upstream-unauthorized clear`, values
// dropped for a 401 are not taken back from the store (another relay's, got before the refusal)
// at the next upstream failure. A real redis-server; the second relay's view of it holds its reads
// back when the test says, and hears no notices (as when Redis refuses to publish them).
import { describe, expect, it, vi } from 'vitest'
import { createFlagServer, createRedisStore, type FlagServer, type FlagServerOptions, type SharedStore } from '@holdfast/server'
import type { RedisServer } from '../support/redisServer'
import { post, recordingLogger, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'
import { useRedisFleet } from './redis-fleet'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

// Stopped after each test, in reverse order: the redis-server, the stores on it, the relays.
const { cleanups, redisServer } = useRedisFleet()

/** `store` as a relay reaches it: notices never come, and `get` waits while the gate is shut. */
function deafAndHeld(store: SharedStore) {
  let gate: Promise<void> | undefined
  let open = () => {}
  let gets = 0
  let peeks = 0
  const view = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'subscribe') return () => () => {}
      const value = Reflect.get(target, name, receiver)
      if (name === 'get') return async (...args: unknown[]) => (gets++, await gate, value.apply(target, args))
      if (name === 'peek') return (...args: unknown[]) => (peeks++, value.apply(target, args))
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    view,
    gets: () => gets,
    /** Look-ups of a version (a `missed` context's first step), answered at once. */
    peeks: () => peeks,
    shut: () => void (gate = new Promise<void>((resolve) => (open = resolve))),
    open: () => open(),
  }
}

describe('a store look-up that comes back after a newer upstream answer', () => {
  let redis: RedisServer
  const store = async () => {
    const s = createRedisStore({ url: redis.url, namespace: 'late-lookup', commandTimeoutMs: 1000 })
    cleanups.push(() => s.close())
    return s
  }
  const relay = async (shared: SharedStore, upstream: string, options: Partial<FlagServerOptions> = {}) => {
    const server = await createFlagServer({ upstream, sharedStore: { store: shared }, port: 0, upstreamTimeoutMs: 2000, maxEventLoopDelayMs: 0, logger: recordingLogger(), ...options } as FlagServerOptions)
    cleanups.push(() => server.close())
    return server
  }
  const ask = async (server: FlagServer) => {
    const response = await post(`${server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'ada' } })
    if (response.status !== 200) return { status: response.status }
    const body = (await response.json()) as { flags: Array<{ key: string; value: unknown }>; metadata: { holdfast: { stale: boolean } } }
    return { status: 200, greeting: body.flags.find((flag) => flag.key === 'greeting')?.value, stale: body.metadata.holdfast.stale }
  }

  it('never replaces the newer answer: through the outage after it, the relay serves the newer value', async () => {
    redis = await redisServer()
    let greeting = 'old'
    const answering = { ofrep: () => ({ flags: [{ key: 'greeting', value: greeting, reason: 'STATIC' }] }) }
    const upstream = await startUpstream(answering)
    const a = await relay(await store(), upstream.url)
    const b$ = deafAndHeld(await store())
    const b = await relay(b$.view, upstream.url)
    // Ada's request went to relay A: her answer ('old') is in Redis; B was not told.
    expect(await ask(a)).toMatchObject({ status: 200, greeting: 'old' })
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).startsWith('*1'), 10_000)
    // The upstream fails her next request, sent to B: B looks her up in the store, and that read is slow.
    upstream.set({ status: 500, text: 'down' })
    b$.shut()
    const gets = b$.gets()
    expect((await ask(b)).status).toBe(503)
    await waitFor(() => b$.gets() > gets, 5000, 10)
    // Meanwhile the upstream is back, with a new value, and answers her retry on B: asked for after
    // A's answer, so newer in the store's order too.
    greeting = 'new'
    upstream.set(answering)
    expect(await ask(b)).toMatchObject({ status: 200, greeting: 'new', stale: false })
    // Now the look-up comes back with A's older answer; then the upstream goes down for good.
    b$.open()
    await waitFor(async () => (await redis.command('HGET', (await redis.command('KEYS', '*context:*')).split('\r\n')[2]!, 'body')).includes('new'), 5000, 20)
    upstream.set({ status: 500, text: 'down' })
    // Served from what B holds, stale: the newer value (before: 'old', for the whole outage).
    for (let i = 0; i < 3; i++) expect(await ask(b)).toMatchObject({ status: 200, greeting: 'new', stale: true })
  })

  it('--on-upstream-unauthorized clear: values dropped for a 401 are not taken back from the store at the next upstream failure', async () => {
    redis = await redisServer()
    let mode: 'ok' | '401' | '500' = 'ok'
    let n = 0
    const upstream = await startUpstream(() => (mode === 'ok' ? { ofrep: () => ({ flags: [{ key: 'greeting', value: `hello ${++n}`, reason: 'STATIC' }] }) } : mode === '401' ? { status: 401, text: 'revoked' } : { status: 500, text: 'down' }))
    const a = await relay(await store(), upstream.url)
    const b$ = deafAndHeld(await store())
    const b = await relay(b$.view, upstream.url, { onUpstreamUnauthorized: 'clear' })
    // Ada asked B, then A (whose answer, newer, B never heard of).
    expect(await ask(b)).toMatchObject({ status: 200 })
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).startsWith('*1'), 10_000)
    const stored = async () => redis.command('HGET', (await redis.command('KEYS', '*context:*')).split('\r\n')[2]!, 'body')
    const first = await stored()
    expect(await ask(a)).toMatchObject({ status: 200 })
    await waitFor(async () => (await stored()) !== first, 5000, 20)
    // Her key is revoked: B drops her values (the policy says so)…
    mode = '401'
    expect((await ask(b)).status).toBe(503)
    // …and then the upstream goes down. B looks her context up in the store, where A's answer, got
    // before the revocation, is not hers to have any more. Before: served, stale, from the retry on.
    // (Since B's drop marker is in the store over A's answer, the look-up finds the drop, newer.)
    mode = '500'
    const looks = b$.peeks()
    expect((await ask(b)).status).toBe(503)
    await waitFor(() => b$.peeks() > looks, 5000, 10)
    await new Promise((resolve) => setTimeout(resolve, 200))
    for (let i = 0; i < 3; i++) expect((await ask(b)).status).toBe(503)
    // Answered here again (the key restored): served as before, and the store's answers taken again.
    mode = 'ok'
    expect(await ask(b)).toMatchObject({ status: 200, stale: false })
  })
})
