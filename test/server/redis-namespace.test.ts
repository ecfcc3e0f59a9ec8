// Two environments on one Redis (CONTRACT §9 --redis): relays of staging and of production whose
// source is written the same (`http://flags.internal/flags.json`, which each environment's DNS
// resolves to its own flag service) hash to one namespace and share documents; `--redis-namespace`
// keeps them apart by name. A real redis-server and fake upstreams on 127.0.0.1; each relay's
// `fetch` takes the one URL to its own environment's upstream, as its DNS would.
import { describe, expect, it, vi } from 'vitest'
import { createFlagServer, storeNamespace } from '@holdfast/server'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { role, settled, status, useRedisFleet, values } from './redis-fleet'
import { serverExit as runBin, serverProcess } from './events-process'
import { recordingLogger, waitFor } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

/** The one source URL both environments are configured with. */
const FLAGS_URL = 'http://flags.internal/flags.json'

/** A `fetch` that takes FLAGS_URL to `upstream`, as this environment's DNS would. */
const resolvingTo = (upstream: FakeUpstream): typeof fetch => (input, init) =>
  fetch(String(input instanceof Request ? input.url : input).replace('http://flags.internal', upstream.url), init)

describe('--redis-namespace: two environments on one Redis', () => {
  it('relays of two environments with one source URL, named apart, each serve their own flags and lead their own fleet', async () => {
    const redis = await redisServer()
    const stagingFlags = await startUpstream({ document: booleanFlags(3, 'on') })
    const productionFlags = await startUpstream({ document: booleanFlags(3, 'off') })
    const staging = await relay(redis, stagingFlags, { flagsUrl: FLAGS_URL, fetch: resolvingTo(stagingFlags), redis: { url: redis.url, leaseTtlMs: 1500, namespace: 'staging' } } as never)
    const production = await relay(redis, productionFlags, { flagsUrl: FLAGS_URL, fetch: resolvingTo(productionFlags), redis: { url: redis.url, leaseTtlMs: 1500, namespace: 'production' } } as never)
    for (const r of [staging, production]) await waitFor(async () => (await role(r.server)) === 'leader', 20_000)
    await waitFor(async () => (await values(staging.server)).flags.f0 === true && (await values(production.server)).flags.f0 === false, 10_000)
    // A change in production reaches production only; staging's poller keeps serving staging's.
    productionFlags.set({ document: booleanFlags(3, 'on') })
    stagingFlags.set({ document: booleanFlags(3, 'off') })
    await waitFor(async () => (await values(staging.server)).flags.f0 === false && (await values(production.server)).flags.f0 === true, 10_000)
    expect(productionFlags.requests.length).toBeGreaterThan(0)
    expect(stagingFlags.requests.length).toBeGreaterThan(0)
    // The status names each relay's namespace, so an operator sees the two do not share.
    const [s, p] = [(await status(staging.server)).redis, (await status(production.server)).redis]
    expect(s.namespace).toMatch(/^staging:[0-9a-f]{24}$/)
    expect(p.namespace).toMatch(/^production:[0-9a-f]{24}$/)
    expect(s.namespace.split(':')[1]).toBe(p.namespace.split(':')[1])
    const keys = await redis.command('KEYS', 'holdfast:*:doc:definitions')
    expect(keys).toContain(`holdfast:${s.namespace}:doc:definitions`)
    expect(keys).toContain(`holdfast:${p.namespace}:doc:definitions`)
  })

  it('relays given the same name share as before: one polls, the other takes its documents from Redis', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const named = { flagsUrl: FLAGS_URL, fetch: resolvingTo(upstream), redis: { url: redis.url, leaseTtlMs: 1500, namespace: 'production' } } as never
    const [leader, follower] = await settled([await relay(redis, upstream, named), await relay(redis, upstream, named)])
    await waitFor(async () => (await values(follower.server)).flags.f0 === true, 10_000)
    upstream.set({ document: booleanFlags(3, 'off') })
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)
    expect((await status(follower.server)).redis).toMatchObject({ role: 'follower', namespace: (await status(leader.server)).redis.namespace })
  })

  it('without a name the namespace is the hash it always was (a rolling upgrade keeps one fleet); a hash of credentials is not shown in the status', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const plain = await relay(redis, upstream, { flagsUrl: FLAGS_URL, fetch: resolvingTo(upstream), upstreamHeaders: { Authorization: 'Bearer k' } } as never)
    await waitFor(async () => (await role(plain.server)) === 'leader' && (await values(plain.server)).flags.f0 === true, 20_000)
    // The hash of 'flags-url URL' and the credentials, as releases before the option wrote it.
    const expected = storeNamespace(`flags-url ${FLAGS_URL}`, { Authorization: 'Bearer k' })
    // The status is public without --api-key: the hash of the key it sends is not in it (a weak
    // key could be confirmed against an unsalted hash offline).
    const shown = JSON.stringify(await status(plain.server))
    expect((await status(plain.server)).redis.namespace).toBe('*')
    expect(shown).not.toContain(expected)
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes(`holdfast:${expected}:doc:definitions`), 5000)
  })

  it('a namespace that is not a string (null from a JSON config, a number, a list) is refused at start, not read as a name', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    for (const namespace of [null, 7, ['staging'], true]) {
      const outcome = await createFlagServer({ flagsUrl: `${upstream.url}/flags.json`, port: 0, logger: recordingLogger(), redis: { url: redis.url, namespace } } as never).then(
        async (server) => {
          // Before: it started, in a namespace named after the value ("null:<hash>", "7:<hash>",
          // "staging:<hash>"): apart from the unnamed fleet of its source, with nothing said.
          const used = (await status(server)).redis.namespace
          await server.close()
          return `started in the namespace ${used}`
        },
        (error: Error) => error.message,
      )
      expect(outcome, JSON.stringify(namespace)).toMatch(/redis\.namespace must be a string \(1 to 64 letters, digits, "\.", "_" or "-"\), got /)
    }
  })

  it('a name that is empty, too long or has other characters than letters, digits, ".", "_" and "-" is refused at start', async () => {
    const redis = await redisServer()
    for (const namespace of ['', 'a'.repeat(65), 'staging env', 'prod:1', 'ünï', 'x'.repeat(1_000_000)]) {
      const error = await createFlagServer({ flagsUrl: FLAGS_URL, port: 0, redis: { url: redis.url, namespace } } as never).then(
        () => new Error('started'),
        (refused: Error) => refused,
      )
      expect(error.message).toMatch(/redis\.namespace must be 1 to 64 letters, digits, "\.", "_" or "-"/)
      // A name of any length is named by its start: a 1 MB one went into the error whole.
      expect(error.message.length).toBeLessThan(300)
    }
  })
})

describe('--redis-namespace on the command line', () => {
  it('is read from --redis-namespace or HOLDFAST_REDIS_NAMESPACE; a bad or unattached one refuses to start', async () => {
    const url = 'http://127.0.0.1:1/f.json'
    const [bad, blankEnv, alone, badEnv] = await Promise.all([
      runBin(['--flags-url', url, '--redis', 'redis://127.0.0.1:1', '--redis-namespace', 'staging env']),
      runBin(['--flags-url', url, '--redis', 'redis://127.0.0.1:1'], { HOLDFAST_REDIS_NAMESPACE: '' }),
      runBin(['--flags-url', url, '--redis-namespace', 'staging']),
      runBin(['--flags-url', url, '--redis', 'redis://127.0.0.1:1'], { HOLDFAST_REDIS_NAMESPACE: 'x'.repeat(65) }),
    ])
    expect(bad).toMatchObject({ code: 2, output: expect.stringMatching(/--redis-namespace must be 1 to 64 letters, digits, "\.", "_" or "-", got "staging env"/) })
    expect(blankEnv).toMatchObject({ code: 2, output: expect.stringMatching(/HOLDFAST_REDIS_NAMESPACE is empty/) })
    expect(alone).toMatchObject({ code: 2, output: expect.stringMatching(/--redis-namespace needs --redis URL/) })
    expect(badEnv).toMatchObject({ code: 2, output: expect.stringMatching(/HOLDFAST_REDIS_NAMESPACE must be 1 to 64 letters/) })
  })

  it('HOLDFAST_REDIS_NAMESPACE without a Redis URL is refused, as --redis-namespace without --redis is', () => {
    const url = 'http://127.0.0.1:1/f.json'
    // Before: accepted and dropped; the relay started alone (no Redis, no fleet) with nothing said,
    // where the flag spelled the same was refused. A URL variable that did not reach the process
    // (a secret not mounted, a misspelt name) left an environment's relays each polling on its own.
    const alone = buildServerOptions({ 'flags-url': url }, { HOLDFAST_REDIS_NAMESPACE: 'production' })
    expect(alone.ok ? 'started' : alone.error).toMatch(/HOLDFAST_REDIS_NAMESPACE is set, and --redis-namespace needs --redis URL \(or HOLDFAST_REDIS_URL\)/)
    const withUrl = buildServerOptions({ 'flags-url': url }, { HOLDFAST_REDIS_NAMESPACE: 'production', HOLDFAST_REDIS_URL: 'redis://127.0.0.1:6379' })
    expect(withUrl.ok && withUrl.options.redis).toEqual({ url: 'redis://127.0.0.1:6379', namespace: 'production' })
  })

  it('two relay processes started with different names keep apart; the status says which namespace each uses', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const staging = await relayProcess(['--flags-url', `${upstream.url}/flags.json`, '--redis', redis.url, '--redis-namespace', 'staging'])
    const production = await relayProcess(['--flags-url', `${upstream.url}/flags.json`, '--redis', redis.url], { HOLDFAST_REDIS_NAMESPACE: 'production' })
    for (const url of [staging, production]) await waitFor(async () => (await role(url)) === 'leader', 20_000)
    expect((await status(staging)).redis.namespace).toMatch(/^staging:/)
    expect((await status(production)).redis.namespace).toMatch(/^production:/)
  })
})

/** `holdfast-server ARGS` as a child process; resolves with its URL once it serves. */
const relayProcess = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> =>
  serverProcess([...args, '--poll-interval', '0.2', '--port', '0', '--max-event-loop-delay', '0'], env).url()
