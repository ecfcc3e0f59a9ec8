// Relays sharing one store in a real redis-server (CONTRACT §9 --redis): one polls, the others
// take each version from Redis; the lease moves when the poller dies; Redis stopped, stuck or
// flushed never stops serving; different sources never mix. Each test starts its own redis-server
// and fake upstreams on 127.0.0.1, and waits for conditions with generous deadlines (the machine
// is shared and loaded) instead of sleeping.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import type { RedisServer } from '../support/redisServer'
import { role, settled, status, TTL_MS, useRedisFleet, values, type Relay } from './redis-fleet'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { serverExit as runBin } from './events-process'
import { evaluate, tempDir, timed, waitFor, watchFreezes } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const root = fileURLToPath(new URL('../..', import.meta.url))
const { cleanups, redisServer, relay } = useRedisFleet()

describe('createFlagServer({ redis }) as the contract spells it', () => {
  it('a plain redis:// URL string shares one store: one relay polls, the other takes each change from Redis', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(4, 'off') })
    // The CLI passes { url }; CONTRACT §9 lists `redis?` and a string is the URL.
    const [leader, follower] = await settled([await relay(redis, upstream, { redis: redis.url }), await relay(redis, upstream, { redis: redis.url })])
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)
    const before = follower.polls()
    upstream.set({ document: booleanFlags(4, 'on') })
    await waitFor(async () => (await values(follower.server)).flags.f0 === true, 5000)
    expect(follower.polls()).toBe(before)
    expect((await status(follower.server)).redis).toMatchObject({ state: 'up', role: 'follower' })
    expect((await status(follower.server)).version).toBe((await status(leader.server)).version)
  })
})

describe('two relays on one Redis', () => {
  it('exactly one polls the upstream, and a change reaches the other within 2 s', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(4, 'off') })
    const relays = [await relay(redis, upstream), await relay(redis, upstream)]
    let [leader, follower] = await settled(relays)
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)

    // A round: a dozen poll intervals in which only the leader may ask the upstream, then a change
    // upstream, which the follower serves within 2 s of it, without asking. A round counts when no
    // role changed in it and this process (the test and both relays) was not frozen (no event-loop
    // delay past 1 s). A loaded machine that stops this process past the lease TTL (1.5 s) hands the
    // lease over, rightly, and the new leader polls at once; the 2 s are the relays' and Redis's,
    // not a frozen process's. Three rounds at most: the last one counts whatever happened in it.
    const roleChanges = () => relays.reduce((n, r) => n + r.roleChanges(), 0)
    let on = false
    for (let round = 1; ; round++) {
      const roles = roleChanges()
      const freezes = watchFreezes()
      const before = { leader: leader.polls(), follower: follower.polls() }
      await waitFor(() => leader.polls() >= before.leader + 10 || roleChanges() !== roles, 20_000)
      const quiet = follower.polls() - before.follower
      on = !on
      // The fake upstream reads its answer when a request comes: the change is visible upstream from here.
      const changed = Date.now()
      upstream.set({ document: booleanFlags(4, on ? 'on' : 'off') })
      await waitFor(async () => (await values(follower.server)).flags.f0 === on, 5000)
      const took = Date.now() - changed
      const steady = roleChanges() === roles && freezes.longest() < 1000
      freezes.stop()
      if (steady || round === 3) {
        expect({ quiet, afterChange: follower.polls() - before.follower }).toEqual({ quiet: 0, afterChange: 0 })
        expect(took).toBeLessThan(2000)
        break
      }
      ;[leader, follower] = await settled(relays)
    }
    expect((await status(follower.server)).redis).toMatchObject({ state: 'up', role: 'follower' })
    const answer = await values(follower.server)
    expect(answer.holdfast).toMatchObject({ source: 'upstream', stale: false })
    // The follower reports the upstream as its leader sees it, and what it took from Redis.
    const followerStatus = await status(follower.server)
    expect(followerStatus.upstream.state).toBe('ok')
    expect(followerStatus.redis.taken).toBeGreaterThanOrEqual(1)
    expect(followerStatus.version).toBe((await status(leader.server)).version)
    const metrics = async (r: Relay) => (await fetch(`${r.server.url}/metrics`)).text()
    expect(await metrics(follower)).toMatch(/^holdfast_redis_role\{role="follower"\} 1$/m)
    expect(await metrics(leader)).toMatch(/^holdfast_redis_role\{role="leader"\} 1$/m)
    expect(await metrics(follower)).toMatch(/^holdfast_redis_up 1$/m)
    expect(await metrics(follower)).toMatch(/^holdfast_redis_documents_taken_total [1-9]/m)
  })

  it('when the upstream fails, the follower says so too: same values, stale, upstream failing', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const [leader, follower] = await settled([await relay(redis, upstream), await relay(redis, upstream)])
    await waitFor(async () => (await values(follower.server)).holdfast?.stale === false, 10_000)
    upstream.set({ status: 503, text: 'maintenance' })
    for (const r of [leader, follower]) {
      await waitFor(async () => (await status(r.server)).upstream.state === 'failing', 10_000)
      const answer = await values(r.server)
      expect(answer).toMatchObject({ status: 200, flags: { f0: true, f1: true, f2: true }, holdfast: { stale: true } })
    }
    expect((await status(follower.server)).upstream.lastError.message).toMatch(/503/)
    // And back: the leader's next good poll clears it everywhere.
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of [leader, follower]) await waitFor(async () => (await values(r.server)).holdfast?.stale === false, 10_000)
  })

  it('--on-upstream-unauthorized clear: the follower drops what it holds too, and serves again when the upstream does', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const policy = { onUpstreamUnauthorized: 'clear' as const }
    const [leader, follower] = await settled([await relay(redis, upstream, policy), await relay(redis, upstream, policy)])
    await waitFor(async () => (await values(follower.server)).holdfast?.stale === false, 10_000)
    // Only the leader asks the upstream; the follower knows of the 403 from the leader's report.
    upstream.set({ status: 403, text: '' })
    for (const r of [leader, follower]) await waitFor(async () => (await values(r.server)).status === 503, 10_000)
    expect((await status(follower.server)).upstream.state).toBe('unauthorized')
    upstream.set({ document: booleanFlags(3, 'off') })
    for (const r of [leader, follower]) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
  })

  it('--on-upstream-unauthorized clear: a follower restarted during the 403s serves nothing, not the store\'s copy of what was dropped', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const policy = { onUpstreamUnauthorized: 'clear' as const, pollIntervalSeconds: 2 }
    const dataDir = await tempDir()
    const [leader, follower] = await settled([await relay(redis, upstream, policy), await relay(redis, upstream, { ...policy, dataDir })])
    await waitFor(async () => (await values(follower.server)).holdfast?.stale === false, 10_000)
    upstream.set({ status: 403, text: '' })
    for (const r of [leader, follower]) await waitFor(async () => (await values(r.server)).status === 503, 15_000)
    await follower.server.close()
    // The store still holds the last good definitions; the restarted relay must not serve them
    // before it has heard what the upstream says now.
    const restarted = await relay(redis, upstream, { ...policy, dataDir })
    const seen = [await values(restarted.server)]
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      seen.push(await values(restarted.server))
    }
    expect(seen.map((v) => v.status)).toEqual(seen.map(() => 503))
    // The upstream answers again, with the very document that was dropped: it is served again.
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await values(restarted.server)).flags.f0 === true, 15_000)
  })

  it('a relay that starts while the upstream is down serves what the store holds', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const first = await relay(redis, upstream)
    await waitFor(async () => (await role(first.server)) === 'leader' && (await values(first.server)).flags.f0 === true, 20_000)
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes('definitions'), 10_000)
    upstream.set({ status: 503, text: 'down' })
    // No data dir, no snapshot, the upstream failing: only Redis can make it ready.
    const late = await relay(redis, upstream)
    expect(await values(late.server)).toMatchObject({ status: 200, flags: { f0: true, f1: true, f2: true } })
    expect((await status(late.server)).ready).toBe(true)
  })

  it('a relay that starts while the upstream is down, with only what the store holds, says so from its first answer: stale, upstream failing', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    // The leader polls every 2 s: its next report is a while off.
    const first = await relay(redis, upstream, { pollIntervalSeconds: 2 })
    await waitFor(async () => (await values(first.server)).flags.f0 === true && (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes('definitions'), 20_000)
    upstream.set({ status: 503, text: 'down' })
    await waitFor(async () => (await status(first.server)).upstream.state === 'failing', 10_000)
    // The leader's last report says failing; a relay that starts now takes the flags from Redis.
    // Taking them is no word from the upstream: it says what the leader said, not "ok".
    const late = await relay(redis, upstream)
    for (let i = 0; i < 10; i++) {
      const [v, s] = [await values(late.server), await status(late.server)]
      expect(v).toMatchObject({ status: 200, flags: { f0: true }, holdfast: { stale: true } })
      expect(s).toMatchObject({ stale: true, upstream: { state: 'failing' } })
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
})

describe('the poller dies', () => {
  it('kill -9 of the polling process hands the lease over within one TTL', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const child = await relayProcess(redis, upstream)
    await waitFor(async () => (await role(child.url)) === 'leader', 20_000)
    const follower = await relay(redis, upstream)
    await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === false, 20_000)
    const pollsBefore = follower.polls()

    child.process.kill('SIGKILL')
    const killed = Date.now()
    await waitFor(async () => (await role(follower.server)) === 'leader', 20_000)
    // The lease ends at most one TTL after the dead relay's last renewal; allow for a loaded machine.
    expect(Date.now() - killed).toBeLessThan(TTL_MS + 1000)
    // The new leader asks the upstream at once, and keeps doing so.
    await waitFor(() => follower.polls() > pollsBefore + 2, 10_000)
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await values(follower.server)).flags.f0 === true, 5000)
  })

  it('a leader frozen past its lease (SIGSTOP: its event loop runs nothing) resumes: nothing it fetched before wins, and one relay polls', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const child = await relayProcess(redis, upstream)
    await waitFor(async () => (await role(child.url)) === 'leader', 20_000)
    const follower = await relay(redis, upstream)
    await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === false, 20_000)
    child.process.kill('SIGSTOP')
    await waitFor(async () => (await role(follower.server)) === 'leader', 10_000)
    upstream.set({ document: booleanFlags(4, 'on') })
    await waitFor(async () => (await values(follower.server)).flags.f3 === true, 5000)
    const key = (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2]!
    child.process.kill('SIGCONT')
    // Whatever the resumed relay fetched before or after, Redis keeps the newest, and both serve it.
    const deadline = Date.now() + 3 * TTL_MS
    while (Date.now() < deadline) {
      expect(await redis.command('HGET', key, 'body')).toContain('"f3"')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await waitFor(async () => (await values(child.url)).flags.f3 === true, 5000)
    const roles = [await role(child.url), await role(follower.server)]
    expect([...roles].sort()).toEqual(['follower', 'leader'])
    // One poller: over two seconds, the upstream hears only from the leader.
    const [total, own] = [upstream.requests.length, follower.polls()]
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const fromFollower = follower.polls() - own
    const fromChild = upstream.requests.length - total - fromFollower
    expect(roles[0] === 'leader' ? [fromChild > 0, fromFollower] : [fromFollower > 0, fromChild]).toEqual([true, 0])
  })

  it('a relay that closes releases the lease: another leads at once', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const [leader, follower] = await settled([await relay(redis, upstream), await relay(redis, upstream)])
    const closed = Date.now()
    await leader.server.close()
    await waitFor(async () => (await role(follower.server)) === 'leader', 20_000)
    expect(Date.now() - closed).toBeLessThan(TTL_MS)
  })
})

describe('Redis fails', () => {
  it('stopped: both keep serving and say so; when it returns (empty) it is repopulated and changes flow again', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relays = await settled([await relay(redis, upstream), await relay(redis, upstream)])
    await waitFor(async () => (await values(relays[1].server)).flags.f0 === false, 10_000)

    await redis.stop({ kill9: true })
    for (const r of relays) {
      await waitFor(async () => (await status(r.server)).redis.state === 'down', 10_000)
      expect(await values(r.server)).toMatchObject({ status: 200, flags: { f0: false } })
      const metrics = await (await fetch(`${r.server.url}/metrics`)).text()
      expect(metrics).toMatch(/^holdfast_redis_up 0$/m)
      expect((await fetch(`${r.server.url}/readyz`)).status).toBe(200)
    }
    // Cut off for a TTL, each relay polls on its own rather than serve ever older flags.
    for (const r of relays) await waitFor(async () => (await role(r.server)) === 'solo', 10_000)
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)

    await redis.start() // empty: it keeps nothing on disk
    const [, follower] = await settled(relays)
    // Up = commands answered and notices flowing again (both connections back).
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
    // The leader writes back what it serves, and the followers follow again.
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes('definitions'), 10_000)
    const followerPolls = follower.polls()
    const changed = Date.now()
    upstream.set({ document: booleanFlags(3, 'off') })
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 5000)
    expect(Date.now() - changed).toBeLessThan(2000)
    expect(follower.polls()).toBe(followerPolls)
    for (const r of relays) expect((await status(r.server)).redis.state).toBe('up')
  })

  it('stuck (SIGSTOP): no request waits on it', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const relays = await settled([await relay(redis, upstream), await relay(redis, upstream)])
    await waitFor(async () => (await values(relays[1].server)).flags.f0 === true, 10_000)
    redis.pause()
    try {
      for (let i = 0; i < 10; i++) {
        for (const r of relays) {
          const answer = await timed(() => values(r.server))
          expect(answer.value).toMatchObject({ status: 200, flags: { f0: true } })
          // Serving reads memory only: far less than this, once the time a loaded machine froze this process is taken off.
          expect(answer.ms).toBeLessThan(1000)
        }
      }
      for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'down', 10_000)
    } finally {
      redis.resume()
    }
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
  })

  it('flushed: the poller repopulates it on its next poll', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    await settled([await relay(redis, upstream), await relay(redis, upstream)])
    const stored = () => redis.command('KEYS', 'holdfast:*:doc:definitions')
    await waitFor(async () => (await stored()).includes('definitions'), 10_000)
    expect(await redis.command('FLUSHALL')).toBe('+OK\r\n')
    expect(await stored()).toBe('*0\r\n')
    await waitFor(async () => (await stored()).includes('definitions'), 5000)
    // …with a TTL (the backup never lives forever, nor expires while the poller is alive).
    const key = (await stored()).split('\r\n')[2]
    expect(Number((await redis.command('PTTL', key)).slice(1))).toBeGreaterThan(0)
    // A quiet upstream (nothing changes, 304 after 304) still renews the backup on every poll.
    await redis.command('PEXPIRE', key, '60000')
    await waitFor(async () => Number((await redis.command('PTTL', key)).slice(1)) > 120_000, 5000)
  })
})

describe('what is in Redis is input too', () => {
  it('a newer document that is junk (written by hand or a broken peer) is refused, and the leader writes over it', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(4, 'on') })
    const [leader, follower] = await settled([await relay(redis, upstream), await relay(redis, upstream)])
    await waitFor(async () => (await values(follower.server)).flags.f0 === true, 10_000)
    const key = (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2]
    const channel = key.replace(/doc:definitions$/, 'notices')
    const current = Number((await redis.command('HGET', key, 'version')).split('\r\n')[1])
    for (const junk of ['{"flags":{}}', 'not json', '{"flags":{"f0":{"state":"ENABLED"}}}']) {
      const version = String(current + 1_000_000)
      await redis.command('HSET', key, 'version', version, 'body', junk, 'fetchedAt', '0')
      await redis.command('PUBLISH', channel, JSON.stringify({ type: 'changed', key: 'definitions', version: Number(version) }))
      // Both keep serving; the leader's next poll puts its own document back over the junk.
      await waitFor(async () => (await redis.command('HGET', key, 'body')).includes('"f3"'), 10_000)
      for (const r of [leader, follower]) expect(await values(r.server)).toMatchObject({ status: 200, flags: { f0: true, f1: true, f2: true, f3: true } })
    }
    // A hash whose version is not a number is overwritten too.
    await redis.command('HSET', key, 'version', 'banana')
    await waitFor(async () => /^\$\d+\r\n\d+\r\n$/.test(await redis.command('HGET', key, 'version')), 10_000)
    expect((await status(follower.server)).refused).toBeGreaterThanOrEqual(1)
  })
})

describe('isolation', () => {
  it('two relays with different upstreams (or credentials) on one Redis never mix flags', async () => {
    const redis = await redisServer()
    const one = await startUpstream({ document: booleanFlags(3, 'on', 'one-') })
    const two = await startUpstream({ document: booleanFlags(2, 'off', 'two-') })
    const a = await relay(redis, one)
    const b = await relay(redis, two)
    const c = await relay(redis, one, { upstreamHeaders: { Authorization: 'Bearer other-team' } })
    // Separate sources or credentials: separate leases, so each leads its own fleet of one.
    for (const r of [a, b, c]) await waitFor(async () => (await role(r.server)) === 'leader', 20_000)
    await waitFor(async () => Object.keys((await values(a.server)).flags).length === 3, 10_000)
    await waitFor(async () => Object.keys((await values(b.server)).flags).length === 2, 10_000)
    one.set({ document: booleanFlags(3, 'off', 'one-') })
    await waitFor(async () => (await values(a.server)).flags['one-0'] === false, 10_000)
    expect((await values(b.server)).flags).toEqual({ 'two-0': false, 'two-1': false })
    expect(Object.keys((await values(c.server)).flags).sort()).toEqual(['one-0', 'one-1', 'one-2'])
    // Three namespaces in Redis, no raw URL or credential in any key.
    const keys = await redis.command('KEYS', 'holdfast:*:doc:definitions')
    expect(keys.match(/holdfast:[0-9a-f]+:doc:definitions/g)).toHaveLength(3)
    expect(await redis.command('KEYS', '*other-team*')).toBe('*0\r\n')
  })

  it('a relay with a wrong credential (401), started first, holds no lease of the fleet with the right one; another query string is another fleet', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream((request) =>
      request.headers.authorization === 'Bearer right' ? { document: booleanFlags(3, request.path.includes('env=b') ? 'on' : 'off') } : { status: 401, text: 'no' },
    )
    const wrong = await relay(redis, upstream, { upstreamHeaders: { Authorization: 'Bearer wrong' } })
    await waitFor(async () => (await role(wrong.server)) === 'leader' && (await status(wrong.server)).upstream.state === 'unauthorized', 20_000)
    const right = [0, 1].map(() => relay(redis, upstream, { upstreamHeaders: { Authorization: 'Bearer right' } }))
    const [leader, follower] = await settled(await Promise.all(right))
    expect(await role(wrong.server)).toBe('leader')
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)
    // The follower's upstream state is the leader's report, which may come a poll after the values
    // (a take is no word from the upstream): it must come to 'ok', never 'unauthorized' from the
    // other fleet. Read once right after the values, it was seen 'failing' on a loaded machine.
    await waitFor(async () => (await status(follower.server)).upstream.state === 'ok', 10_000)
    const other = await relay(redis, upstream, { flagsUrl: `${upstream.url}/flags.json?env=b`, upstreamHeaders: { Authorization: 'Bearer right' } })
    await waitFor(async () => (await role(other.server)) === 'leader' && (await values(other.server)).flags.f0 === true, 20_000)
    for (const r of [leader, follower]) expect((await values(r.server)).flags.f0).toBe(false)
  })
})

describe('proxy mode (--upstream) with --redis', () => {
  it('an answer one relay got is served by another when the upstream goes down; credentials stay apart', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({
      ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'TARGETING_MATCH' }] }),
    })
    const proxy = (r: RedisServer) =>
      relay(r, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined })
    const a = await proxy(redis)
    const b = await proxy(redis)
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    const ask = (r: Relay, targetingKey: string, headers: Record<string, string> = {}) =>
      evaluate(r.server, { targetingKey }, headers).then(async (res) => ({ status: res.status, body: (await res.json()) as any }))

    expect(await ask(a, 'ada-lovelace', { Authorization: 'Bearer team-1' })).toMatchObject({ status: 200, body: { flags: [{ key: 'greeting', value: 'hello ada-lovelace' }] } })
    // b never saw "ada-lovelace": it takes a's answer from Redis.
    await waitFor(async () => (await status(b.server)).redis.taken >= 1, 5000)
    upstream.set({ status: 503, text: 'down' })
    const fromB = await ask(b, 'ada-lovelace', { Authorization: 'Bearer team-1' })
    expect(fromB).toMatchObject({ status: 200, body: { flags: [{ key: 'greeting', value: 'hello ada-lovelace' }], metadata: { holdfast: { source: 'upstream', stale: true } } } })
    // The same user with another key was never answered: not served from team-1's answer.
    expect((await ask(b, 'ada-lovelace', { Authorization: 'Bearer team-2' })).status).toBe(503)
    // Nothing in Redis names the user or the token (names that a hex or base64url hash in a key
    // cannot spell by chance: "ada" alone was found in a random source id once).
    expect(await redis.command('KEYS', '*ada-lovelace*')).toBe('*0\r\n')
    expect(await redis.command('KEYS', '*team-1*')).toBe('*0\r\n')
  })
})

describe('proxy mode: two relays share answers to one context across an upstream change', () => {
  it('the answer asked for later wins, even when the one asked for earlier comes back last: no relay goes back to it', async () => {
    const redis = await redisServer()
    let asked = 0
    // The first request gets the old answer, slowly; every later one the new answer at once.
    const upstream = await startUpstream(() => {
      asked++
      const answer = { status: 200, contentType: 'application/json', text: JSON.stringify({ flags: [{ key: 'limit', value: asked === 1 ? 'old' : 'new', reason: 'STATIC' }] }) }
      return asked === 1 ? { delayMs: 800, then: answer } : answer
    })
    const proxy = () => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined, heldAnswerAfterMs: 5000 })
    const a = await proxy()
    const b = await proxy()
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    asked = 0
    const limit = (r: Relay) => evaluate(r.server, { targetingKey: 'u' }).then(async (res) => ((await res.json()) as { flags?: Array<{ value: unknown }> }).flags?.[0]?.value)
    const fromA = limit(a)
    await waitFor(() => upstream.requests.some((request) => request.body.includes('"u"')), 5000)
    expect(await limit(b)).toBe('new')
    expect(await fromA).toBe('old')
    upstream.set({ status: 503, text: '' })
    // Before: a's old answer was shared last, got the newer version, and b took it: every relay
    // (and one started later) served 'old' through the outage.
    await waitFor(async () => (await limit(a)) === 'new' && (await limit(b)) === 'new', 5000)
    const c = await proxy()
    await waitFor(async () => (await limit(c)) === 'new', 5000)
  })
})

describe('proxy mode: Redis restarted empty while the relays run and the upstream is down', () => {
  it('each relay writes back the answers it holds, so a relay that starts then serves them', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const proxy = () => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined })
    const a = await proxy()
    await waitFor(async () => (await status(a.server)).redis?.state === 'up', 20_000)
    const ask = (r: Relay) => evaluate(r.server, { targetingKey: 'ada' }).then(async (res) => ({ status: res.status, body: (await res.json()) as any }))
    expect((await ask(a)).status).toBe(200)
    const contexts = () => redis.command('KEYS', 'holdfast:*:doc:context:*')
    await waitFor(async () => (await contexts()).startsWith('*1\r\n'), 5000)
    upstream.set({ status: 503, text: '' })
    await redis.stop()
    await redis.start()
    // Before: nothing was written back (only a new upstream answer is shared): the store stayed
    // empty, and a relay started during the outage answered 503 for every context the fleet held.
    await waitFor(async () => (await contexts()).startsWith('*1\r\n'), 10_000)
    const c = await proxy()
    await waitFor(async () => (await ask(c)).status === 200, 5000)
    expect((await ask(c)).body).toMatchObject({ flags: [{ key: 'greeting', value: 'hello ada' }], metadata: { holdfast: { stale: true } } })
  })
})

describe('the command line', () => {
  it('--redis needs a relay source', async () => {
    // Three processes at once (a usage error's exit 2 and its words, the variable's secret kept out
    // of them, a URL only Redis's client refuses: exit 1); the other checks of the same options
    // without a process each. Five processes, two of them one after the other, took 17.8 s of the
    // 20 s limit beside two busy loops (each compiles the server through tsx).
    const [run, fromEnv, badPort] = await Promise.all([
      runBin(['--flags', 'examples/flags.json', '--redis', 'redis://127.0.0.1:1']),
      // HOLDFAST_REDIS_URL keeps a password out of the process list; it is read like --redis.
      runBin(['--flags', 'examples/flags.json'], { HOLDFAST_REDIS_URL: 'redis://:secret@127.0.0.1:1' }),
      runBin(['--flags-url', 'http://127.0.0.1:1/f.json', '--redis', 'redis://127.0.0.1:abc']),
    ])
    expect(run.code).toBe(2)
    expect(run.output).toMatch(/--redis goes with --flags-url or --upstream/)
    expect(fromEnv).toMatchObject({ code: 2, output: expect.stringMatching(/--redis goes with --flags-url or --upstream/) })
    expect(fromEnv.output).not.toContain('secret')
    expect(badPort).toMatchObject({ code: 1, output: expect.stringMatching(/invalid options: redis: Invalid URL/) })
    const flagsUrl = { 'flags-url': 'http://127.0.0.1:1/f.json' }
    expect(buildServerOptions({ ...flagsUrl, redis: 'http://nope' }, {})).toMatchObject({ ok: false, error: expect.stringMatching(/--redis must be a redis:\/\/ or rediss:\/\/ URL/) })
    expect(buildServerOptions({ ...flagsUrl, 'redis-lease-ttl': '5' }, {})).toMatchObject({ ok: false, error: expect.stringMatching(/--redis-lease-ttl needs --redis URL/) })
  })
})

interface RelayProcess {
  url: string
  process: ChildProcess
}

/** `holdfast-server --flags-url … --redis …` as a child process (so it can be killed with SIGKILL). */
async function relayProcess(redis: RedisServer, upstream: FakeUpstream): Promise<RelayProcess> {
  const dir = await tempDir()
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'packages/server/src/bin.ts', '--flags-url', `${upstream.url}/flags.json`, '--redis', redis.url, '--redis-lease-ttl', String(TTL_MS / 1000), '--poll-interval', '0.2', '--data-dir', dir, '--port', '0', '--max-event-loop-delay', '0'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "serving … at" line within 30 s:\n${output}`)), 30_000)
    const check = () => {
      const match = output.match(/serving .* at (http:\/\/\S+)/)
      if (match) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout!.on('data', check)
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`exited early:\n${output}`))
    })
  })
  return { url, process: child }
}
