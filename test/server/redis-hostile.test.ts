// A hostile Redis under relays that share it: foreign data under the relays' keys, a Redis that
// freezes, a leader that was cut off while it still believed in its lease. Each test starts its own
// redis-server and fake upstream on 127.0.0.1 and waits for conditions rather than sleeping.
import { createClient } from 'redis'
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, createSharedContexts, createSharedDefinitions, createUpstreamSource, type FlagServer, type FlagServerOptions, type StoredDocument } from '@holdfast/server'
import type { RedisServer } from '../support/redisServer'
import { role, status, useRedisFleet, values, type Relay } from './redis-fleet'
import { evaluate, recordingLogger, startServer, tempDir, timed, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

/** The relays' key prefix (`holdfast:<namespace>:`) for the upstream's flags URL. */
async function prefixOf(redis: RedisServer): Promise<string> {
  let prefix = ''
  await waitFor(async () => {
    const keys = await redis.command('KEYS', 'holdfast:*:doc:definitions')
    prefix = keys.split('\r\n')[2]?.replace(/doc:definitions$/, '') ?? ''
    return prefix !== ''
  }, 10_000)
  return prefix
}

describe('foreign data under the relays\' keys', () => {
  it('a lease that never expires (written by hand, PERSISTed) does not keep every relay from polling forever', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const first = await relay(redis, upstream)
    await waitFor(async () => (await role(first.server)) === 'leader', 20_000)
    const prefix = await prefixOf(redis)
    await first.server.close()
    // Something else took the lease key with no TTL: no relay's lease ever looks like this.
    await redis.command('SET', `${prefix}lease`, 'not-a-relay')
    const a = await relay(redis, upstream)
    const b = await relay(redis, upstream)
    await waitFor(async () => (await role(a.server)) === 'leader' || (await role(b.server)) === 'leader', 10_000)
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of [a, b]) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    // A hash under the lease key while a relay leads: it is taken back, and changes keep flowing.
    await redis.command('DEL', `${prefix}lease`)
    await redis.command('HSET', `${prefix}lease`, 'owner', 'not-a-relay')
    upstream.set({ document: booleanFlags(3, 'off') })
    for (const r of [a, b]) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    await waitFor(async () => (await redis.command('TYPE', `${prefix}lease`)) === '+string\r\n', 5000)
  })

  it('a list where the document hash should be: the leader writes over it and changes reach the followers', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const a = await relay(redis, upstream)
    const b = await relay(redis, upstream)
    for (const r of [a, b]) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    const prefix = await prefixOf(redis)
    await redis.command('DEL', `${prefix}doc:definitions`)
    await redis.command('RPUSH', `${prefix}doc:definitions`, 'junk')
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of [a, b]) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    await waitFor(async () => (await redis.command('TYPE', `${prefix}doc:definitions`)) === '+hash\r\n', 5000)
  })

  // Versions come from the store's clock (Redis TIME, in µs): one no ticket handed out would win
  // against every real version for good, so the followers would never see another change.
  for (const junk of ['inf', '1e300', '99999999999999999999', 'a day ahead']) {
    it(`a document under a version no relay had (${junk}) is never served, and is written over`, async () => {
      const redis = await redisServer()
      const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
      const relays = [await relay(redis, upstream), await relay(redis, upstream)]
      for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
      const prefix = await prefixOf(redis)
      const current = Number((await redis.command('HGET', `${prefix}doc:definitions`, 'version')).split('\r\n')[1])
      const version = junk === 'a day ahead' ? String(current + 86_400_000_000) : junk
      // A valid document with other values: served, it would flip f0 everywhere.
      await redis.command('HSET', `${prefix}doc:definitions`, 'version', version, 'fetchedAt', '0', 'body', JSON.stringify(booleanFlags(3, 'on')), 'etag', '')
      await redis.command('PUBLISH', `${prefix}notices`, JSON.stringify({ type: 'changed', key: 'definitions', version: 1e300 }))
      upstream.set({ document: booleanFlags(4, 'off') })
      for (const r of relays) {
        await waitFor(async () => {
          const answer = await values(r.server)
          expect(answer.flags.f0).toBe(false)
          return answer.flags.f3 === false
        }, 10_000)
      }
      await waitFor(async () => (await redis.command('HGET', `${prefix}doc:definitions`, 'body')).includes('"f3"'), 5000)
    })
  }

  for (const junk of [['SET', 'inf'], ['SET', '1e300'], ['SET', 'banana'], ['RPUSH', 'x']]) {
    it(`junk under the store's clock (${junk.join(' ')}) does not stop new versions`, async () => {
      const redis = await redisServer()
      const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
      const relays = [await relay(redis, upstream), await relay(redis, upstream)]
      for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
      const prefix = await prefixOf(redis)
      await redis.command('DEL', `${prefix}clock`)
      await redis.command(junk[0], `${prefix}clock`, junk[1])
      upstream.set({ document: booleanFlags(3, 'on') })
      for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
      upstream.set({ document: booleanFlags(3, 'off') })
      for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    })
  }
})

describe('two leaders for a moment', () => {
  it('a leader that was stalled past its lease cannot write over what the new leader published', async () => {
    const redis = await redisServer()
    const made = [0, 1].map(() => {
      const taken: StoredDocument[] = []
      const shared = createSharedDefinitions({
        store: createRedisStore({ url: redis.url, namespace: 'fence', commandTimeoutMs: 300, reconnectMaxMs: 200 }),
        // Long, so that neither relay renews or re-checks on its own during the test.
        leaseTtlMs: 60_000,
        take: (doc) => (taken.push(doc), true),
      })
      cleanups.push(() => shared.stop())
      return { shared, taken }
    })
    const [old, next] = made
    await old.shared.start()
    await waitFor(() => old.shared.role() === 'leader', 10_000)
    await next.shared.start()
    await waitFor(() => next.shared.role() === 'follower', 10_000)
    const ok = { state: 'ok' as const, lastSuccessAt: 1, lastAttemptAt: 1 }
    old.shared.polled({ ok: true, text: '{"flags":{"v1":true}}', fetchedAt: 1 }, ok)
    await waitFor(() => next.taken.length === 1, 5000)

    // The leader stalls (a long GC, a blocked event loop, a VM paused): its lease runs out and the
    // other relay takes it, polls and publishes. The stalled one still believes it leads.
    await redis.command('DEL', 'holdfast:fence:lease')
    await redis.command('PUBLISH', 'holdfast:fence:notices', JSON.stringify({ type: 'released' }))
    await waitFor(() => next.shared.role() === 'leader', 5000)
    expect(old.shared.role()).toBe('leader')
    next.shared.polled({ ok: true, text: '{"flags":{"v3":true}}', fetchedAt: 3 }, { ...ok, lastSuccessAt: 3, lastAttemptAt: 3 })
    await waitFor(async () => (await redis.command('HGET', 'holdfast:fence:doc:definitions', 'body')).includes('v3'), 5000)

    // It wakes up and publishes what it fetched before the stall.
    old.shared.polled({ ok: true, text: '{"flags":{"v2":true}}', fetchedAt: 2 }, { state: 'failing', lastSuccessAt: 1, lastAttemptAt: 2 })
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(await redis.command('HGET', 'holdfast:fence:doc:definitions', 'body')).toContain('v3')
    expect(next.taken.map((doc) => doc.body)).toEqual(['{"flags":{"v1":true}}'])
    expect(await redis.command('HGET', 'holdfast:fence:doc:upstream', 'body')).toContain('"ok"')
    // …and takes what the new leader published instead.
    await waitFor(() => old.taken.some((doc) => doc.body.includes('v3')), 5000)
  })
})

describe('Redis restarted', () => {
  it('from an old dump while the upstream is down: the leader writes back what the relays serve, so a relay that starts then does not serve the older flags', async () => {
    const redis = await redisServer()
    // With a directory of its own (CONFIG SET dir is refused), where SAVE writes the dump.
    const dir = await tempDir()
    await redis.stop()
    await redis.start(['--dir', dir])
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relays = [await relay(redis, upstream), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    await prefixOf(redis)
    // The dump an operator will restore: the older flags.
    expect(await redis.command('SAVE')).toBe('+OK\r\n')
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    upstream.set({ status: 503, text: 'down' })
    for (const r of relays) await waitFor(async () => (await status(r.server)).upstream.state === 'failing', 10_000)

    await redis.stop()
    await redis.start(['--dir', dir, '--dbfilename', 'dump.rdb'])
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
    // A relay started now (autoscaling during the outage) serves what the fleet serves.
    const late = await relay(redis, upstream)
    await waitFor(async () => (await values(late.server)).flags.f0 === true, 10_000)
    for (const r of relays) expect((await values(r.server)).flags.f0).toBe(true)
  })

  it('from an old dump while every relay restarts with its data dir and the upstream is down: none goes back to the older flags', async () => {
    const redis = await redisServer()
    const dir = await tempDir()
    await redis.stop()
    await redis.start(['--dir', dir])
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const dirs = [await tempDir(), await tempDir()]
    let relays = [await relay(redis, upstream, { dataDir: dirs[0] }), await relay(redis, upstream, { dataDir: dirs[1] })]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    await prefixOf(redis)
    expect(await redis.command('SAVE')).toBe('+OK\r\n')
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true && (await status(r.server)).dataDir?.lastSavedAt !== undefined, 10_000)
    upstream.set({ status: 503, text: 'down' })
    for (const r of relays) await waitFor(async () => (await status(r.server)).upstream.state === 'failing', 10_000)
    for (const r of relays) await r.server.close()
    await redis.stop()
    await redis.start(['--dir', dir, '--dbfilename', 'dump.rdb'])
    relays = [await relay(redis, upstream, { dataDir: dirs[0] }), await relay(redis, upstream, { dataDir: dirs[1] })]
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
    // Both have read the store (it holds the older flags) and settled who leads.
    for (let i = 0; i < 10; i++) {
      for (const r of relays) expect((await values(r.server)).flags.f0).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })

  it('empty while the upstream is down: a relay that starts then has the fleet\'s flags to serve', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const relays = [await relay(redis, upstream), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    upstream.set({ status: 503, text: 'down' })
    for (const r of relays) await waitFor(async () => (await status(r.server)).upstream.state === 'failing', 10_000)
    await redis.stop()
    await redis.start()
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
    const late = await relay(redis, upstream)
    await waitFor(async () => (await values(late.server)).flags.f0 === true, 10_000)
  })
})

describe('Redis frozen (SIGSTOP), not down', () => {
  it('requests answer from memory, the status says down, and close() does not wait on a stuck command', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const relays = [await relay(redis, upstream), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    redis.pause()
    try {
      // Bounds on time this process ran or waited, not on time a loaded machine froze it (timed).
      for (const r of relays) {
        const answer = await timed(() => values(r.server))
        expect(answer.value).toMatchObject({ status: 200, flags: { f0: true } })
        expect(answer.ms).toBeLessThan(1000)
      }
      for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'down', 10_000)
      // Both hold commands in flight (lease renewals, the periodic check) that Redis never answers.
      const closing = await timed(() => Promise.all(relays.map((r) => r.server.close())))
      expect(closing.ms).toBeLessThan(3000)
    } finally {
      redis.resume()
    }
  })
})

describe('junk on the notice channel', () => {
  it('a flood of notices costs each relay a bounded number of reads, not one per notice', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const relays = [await relay(redis, upstream, { pollIntervalSeconds: 1 }), await relay(redis, upstream, { pollIntervalSeconds: 1 })]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    const prefix = await prefixOf(redis)
    const client = createClient({ url: redis.url })
    await client.connect()
    cleanups.push(() => client.close())
    await client.configResetStat()
    // Claims of a version newer than any, for the keys the relays read and for keys they never read.
    const flood = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ type: 'changed', key: i % 2 ? 'definitions' : `junk:${i}`, version: 1e300 + i }))
    await Promise.all(flood.map((notice) => client.publish(`${prefix}notices`, notice)))
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const stats = await client.info('commandstats')
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
    // Reads are scripts (EVALSHA, or EVAL once after a restart); a few per relay, not a thousand.
    expect(calls('evalsha') + calls('eval') + calls('hgetall')).toBeLessThan(100)
    for (const r of relays) expect(await values(r.server)).toMatchObject({ status: 200, flags: { f0: true } })
  })
})

describe('clock skew', () => {
  it('proxy mode: a relay whose clock is hours ahead still takes the newer answers other relays share', async () => {
    const redis = await redisServer()
    let greeting = 'v1'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: greeting, reason: 'STATIC' }] }) })
    const proxy = (now: () => number) => {
      const source = createUpstreamSource({
        url: upstream.url,
        maxShrinkPercent: 50,
        onUnauthorized: { mode: 'keep' },
        timeoutMs: 2000,
        heldAnswerAfterMs: 2000,
        log: recordingLogger(),
        now,
        share: (take) => createSharedContexts({ store: createRedisStore({ url: redis.url, namespace: 'skew', commandTimeoutMs: 300 }), take }),
      })
      cleanups.push(() => source.close())
      return source
    }
    const ahead = proxy(() => Date.now() + 3 * 3600_000)
    const right = proxy(Date.now)
    await Promise.all([ahead.open(), right.open()])
    for (const s of [ahead, right]) await waitFor(() => s.relayStatus().redis?.state === 'up', 10_000)
    const ask = async (s: typeof ahead) => {
      const answer = (await s.evaluate!({ context: { targetingKey: 'ada' }, headers: {} } as never)) as { status?: number; body: { flags?: Array<{ key: string; value: unknown }> } }
      return answer.body.flags?.find((f) => f.key === 'greeting')?.value
    }
    expect(await ask(ahead)).toBe('v1')
    await waitFor(() => (right.relayStatus().redis?.taken ?? 0) >= 1, 5000)
    // The flag changes; only the relay with the right clock is asked, and it shares the answer.
    greeting = 'v2'
    expect(await ask(right)).toBe('v2')
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:skew:doc:context:*')) !== '*0\r\n', 5000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The upstream goes down: the relay ahead answers from what it holds, which must be v2.
    upstream.set({ status: 503, text: 'down' })
    expect(await ask(ahead)).toBe('v2')
  })
})

describe('Redis out of memory', () => {
  it('maxmemory with allkeys-lru evicting the relays\' keys: changes keep flowing, no relay goes back', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relays = [await relay(redis, upstream), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    const client = createClient({ url: redis.url })
    await client.connect()
    cleanups.push(() => client.close())
    await client.configSet({ maxmemory: '2mb', 'maxmemory-policy': 'allkeys-lru' })
    // Another tenant fills Redis: the lease, the documents and the clock are all fair game.
    const filler = 'x'.repeat(4096)
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => client.set(`other:${round}:${i}`, filler)))
      const variant = round % 2 ? 'off' : 'on'
      upstream.set({ document: booleanFlags(3, variant) })
      for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === (variant === 'on'), 10_000)
    }
    expect(Number(/evicted_keys:(\d+)/.exec(await client.info('stats'))?.[1])).toBeGreaterThan(0)
  })

  it('a read-only replica (REPLICAOF): every write refused, and the status says why', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relays = [await relay(redis, upstream), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    // Failed over the wrong way round: it now follows a master that is not there, and refuses writes.
    expect(await redis.command('REPLICAOF', '127.0.0.1', '1')).toBe('+OK\r\n')
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await Promise.all(relays.map(async (r) => (await status(r.server)).redis.lastError ?? ''))).every((e) => /READONLY/.test(e)), 10_000)
    // Cut off from writing, each polls on its own rather than serve ever older flags.
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
    await redis.command('REPLICAOF', 'NO', 'ONE')
  })
})

describe('relays of one source with different rules', () => {
  it('--max-shrink: a follower with a stricter guard refuses what a laxer leader publishes, and says so', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(10, 'on') })
    const lax = await relay(redis, upstream, { maxShrinkPercent: 100 })
    await waitFor(async () => (await role(lax.server)) === 'leader', 10_000)
    const strict = await relay(redis, upstream, { maxShrinkPercent: 10 })
    await waitFor(async () => Object.keys((await values(strict.server)).flags).length === 10, 10_000)
    // 10 flags → 2: the lax leader applies and publishes it; the strict one must not serve it.
    upstream.set({ document: booleanFlags(2, 'off') })
    await waitFor(async () => Object.keys((await values(lax.server)).flags).length === 2, 10_000)
    await waitFor(async () => (await status(strict.server)).refused >= 1, 10_000)
    expect(Object.keys((await values(strict.server)).flags)).toHaveLength(10)
  })
})

describe('proxy mode: junk under a context key', () => {
  it('a truncated answer under a newer version is never served; what was held stays', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const proxy = () => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined } as Partial<FlagServerOptions>)
    const [a, b] = [await proxy(), await proxy()]
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    const ask = async (r: Relay) => {
      const response = await fetch(`${r.server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: 'ada' } }) })
      return { status: response.status, text: await response.text() }
    }
    expect((await ask(a)).text).toContain('hello ada')
    await waitFor(async () => (await status(b.server)).redis.taken >= 1, 5000)
    const key = (await redis.command('KEYS', 'holdfast:*:doc:context:*')).split('\r\n')[2]
    const version = Number((await redis.command('HGET', key, 'version')).split('\r\n')[1])
    const body = (await redis.command('HGET', key, 'body')).split('\r\n')[1]
    await redis.command('HSET', key, 'version', String(version + 1), 'body', body.slice(0, body.length / 2))
    const channel = key.replace(/doc:context:.*$/, 'notices')
    await redis.command('PUBLISH', channel, JSON.stringify({ type: 'changed', key: key.replace(/^.*:doc:/, ''), version: version + 1 }))
    upstream.set({ status: 503, text: 'down' })
    const c = await proxy()
    for (const r of [a, b]) expect(await ask(r)).toMatchObject({ status: 200, text: expect.stringContaining('hello ada') })
    expect((await ask(c)).status).toBe(503)
  })
})

describe('proxy mode: an answer in Redis of a shape this relay cannot read (another relay version)', () => {
  it('is refused and never served, and the log says so (once, not once per answer)', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const logger = recordingLogger()
    const proxy = (options: Partial<FlagServerOptions> = {}) => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined, ...options } as Partial<FlagServerOptions>)
    const [a, b] = [await proxy(), await proxy({ logger })]
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    const ask = async (r: Relay, user: string) => (await (await evaluate(r.server, { targetingKey: user })).text())
    for (const user of ['ada', 'bob']) expect(await ask(a, user)).toContain(`hello ${user}`)
    await waitFor(async () => (await status(b.server)).redis.taken >= 2, 5000)
    // A relay of another version shares both answers in a shape this one does not know.
    for (const key of (await redis.command('KEYS', 'holdfast:*:doc:context:*')).split('\r\n').filter((line) => line.startsWith('holdfast:'))) {
      const version = Number((await redis.command('HGET', key, 'version')).split('\r\n')[1])
      await redis.command('HSET', key, 'version', String(version + 1), 'body', JSON.stringify({ recordVersion: 3, answer: { greeting: 'from the future' } }))
      await redis.command('PUBLISH', key.replace(/doc:context:.*$/, 'notices'), JSON.stringify({ type: 'changed', key: key.replace(/^.*:doc:/, ''), version: version + 1 }))
    }
    // Before: refused without a word (a mixed-version fleet silently stopped sharing answers).
    await waitFor(() => logger.lines.some((line) => /cannot read.*store.*another version/i.test(line)), 5000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(logger.lines.filter((line) => /cannot read.*store.*another version/i.test(line))).toHaveLength(1)
    upstream.set({ status: 503, text: 'down' })
    expect(await ask(b, 'ada')).toContain('hello ada')
    expect(await ask(b, 'ada')).not.toContain('from the future')
  })
})

describe('proxy mode: Redis stuck for a moment while an answer is shared', () => {
  it('the answer still reaches Redis once it answers again, so a relay started while the upstream is down serves it', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const log = recordingLogger()
    const proxy = () => startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: log, redis: { url: redis.url, commandTimeoutMs: 300 } })
    const ask = async (server: FlagServer) => {
      const response = await evaluate(server, { targetingKey: 'ada' })
      const body = (await response.json()) as { flags?: Array<{ key: string; value: unknown }> }
      return body.flags?.find((f) => f.key === 'greeting')?.value
    }
    const first = await proxy()
    await waitFor(async () => (await status(first)).redis?.state === 'up', 10_000)
    // Redis stops answering (the connection stays up) while the answer is shared: the ticket and
    // the write time out after 300 ms. It answers again a second later; nothing reconnects.
    redis.pause()
    try {
      expect(await ask(first)).toBe('hello ada')
      // The operator sees it: the status and /metrics count the answer not yet shared.
      await waitFor(async () => (await status(first)).redis?.unshared === 1, 5000)
      expect(await (await fetch(`${first.url}/metrics`)).text()).toMatch(/^holdfast_redis_unshared_answers 1$/m)
    } finally {
      redis.resume()
    }
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:context:*')) !== '*0\r\n', 10_000)
    expect(log.lines.some((line) => /could not share an answer/.test(line))).toBe(true)
    await waitFor(async () => (await status(first)).redis?.unshared === 0, 5000)
    expect(await (await fetch(`${first.url}/metrics`)).text()).toMatch(/^holdfast_redis_unshared_answers 0$/m)
    // What an operator relies on: a relay that starts with the upstream down has it.
    await first.close()
    upstream.set({ status: 503, text: 'down' })
    const second = await proxy()
    await waitFor(async () => (await ask(second)) === 'hello ada', 10_000)
  })
})
