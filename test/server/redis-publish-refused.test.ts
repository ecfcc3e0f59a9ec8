// A Redis that stores the relays' documents but refuses to publish their change notices (an ACL
// user with `-publish`, or channel rules that cover SUBSCRIBE but not PUBLISH): the document
// lands (a script is not rolled back), and no relay is told. Before, the writer read its own write
// as failed, its status named a script line ("can't run this command … on @user_script:33"), and
// in proxy mode a context one relay had answered was never served by the others: through an
// upstream outage they answered its user 503 while Redis held the answer. Each test starts its own redis-server.
import { describe, expect, it, vi } from 'vitest'
import { role, settled, status, TTL_MS, useRedisFleet, values } from './redis-fleet'
import { post, recordingLogger, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'
import type { RedisServer } from '../support/redisServer'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

/** A redis-server whose user `relay` may do everything but PUBLISH; the URL the relays use. */
async function noPublish(): Promise<RedisServer> {
  const redis = await redisServer()
  expect(await redis.command('ACL', 'SETUSER', 'relay', 'on', '>pw', '~*', 'allchannels', '+@all', '-publish')).toBe('+OK\r\n')
  return { ...redis, url: redis.url.replace('redis://', 'redis://relay:pw@') }
}

describe('Redis refuses to publish the change notices', () => {
  it('--flags-url: the leader says the notice was refused and the document stored; a follower takes the change on its own read within a poll interval', async () => {
    const redis = await noPublish()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const [leader, follower] = await settled([await relay(redis, upstream, { pollIntervalSeconds: 1 }), await relay(redis, upstream, { pollIntervalSeconds: 1 })])
    for (const r of [leader, follower]) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(async () => (await values(leader.server)).flags.f0 === true, 10_000)
    const started = Date.now()
    await waitFor(async () => (await values(follower.server)).flags.f0 === true, 10_000)
    // One poll interval (1 s) at most, plus the leader's own poll: not for ever, not the lease's TTL.
    expect(Date.now() - started).toBeLessThan(3000)
    const said = (await status(leader.server)).redis
    expect(said.state).toBe('down')
    expect(said.lastError).toMatch(/change notice on holdfast:\S+:notices was refused \(ERR .+\): the document is stored/)
    // Its own write counted as written: the version it reports is the one the follower took.
    expect(said.version).toBe((await status(follower.server)).redis.version)
    expect(await (await fetch(`${leader.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_up 0$/m)
  })

  it('proxy mode: a context answered by one relay is served by another through an upstream outage (before: 503 for as long as it lasted)', async () => {
    const redis = await noPublish()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: 'hello', reason: 'STATIC' }] }) })
    const proxy = { flagsUrl: undefined, upstream: upstream.url, redis: { url: redis.url, commandTimeoutMs: 300 } } as never
    const a = await relay(redis, upstream, proxy)
    const b = await relay(redis, upstream, proxy)
    const ask = (r: typeof a) => post(`${r.server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'ada' } })
    // Ada's requests went to relay A; the answer is in Redis, but B was never told.
    expect((await ask(a)).status).toBe(200)
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:context:*')).startsWith('*1'), 10_000)
    expect((await status(a.server)).redis.lastError).toMatch(/change notice .* was refused/)
    upstream.set({ status: 503, text: 'down' })
    // The load balancer sends her to B now: its first answer is the 503 of a context it never held,
    // and the retry that 503 asks for gets A's answer, stale.
    expect((await ask(b)).status).toBe(503)
    let last: Response | undefined
    await waitFor(async () => (last = await ask(b)).status === 200, 8000, 500)
    const body = (await last!.json()) as { flags: Array<{ key: string; value: unknown }>; metadata: { holdfast: { stale: boolean } } }
    expect(body.flags[0]).toMatchObject({ key: 'greeting', value: 'hello' })
    expect(body.metadata.holdfast.stale).toBe(true)
    expect((await status(b.server)).redis.taken).toBe(1)
  })
  it('a leader that closes lets its lease go and says the release notice was refused, not that the release failed; a follower leads within the TTL', async () => {
    const redis = await noPublish()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const logs = [recordingLogger(), recordingLogger()]
    const relays = [await relay(redis, upstream, { logger: logs[0] }), await relay(redis, upstream, { logger: logs[1] })]
    const [leader, follower] = await settled(relays)
    const log = logs[relays.indexOf(leader)]
    const linesBefore = log.lines.length
    await leader.server.close()
    // The lease is gone (the script deleted it before its PUBLISH, as it always did)…
    expect(await redis.command('KEYS', 'holdfast:*:lease')).toBe('*0\r\n')
    // …and the leader read its own release as done. Before: the refused PUBLISH failed the whole
    // script, and its last words were "redis refused a command: … script: <sha>, on @user_script:…".
    const last = log.lines.slice(linesBefore)
    expect(last.filter((line) => /refused a command/.test(line))).toEqual([])
    // No notice reaches the follower: it takes the lease at its own next try, within the TTL.
    const closedAt = Date.now()
    await waitFor(async () => (await role(follower.server)) === 'leader', 10_000, 50)
    expect(Date.now() - closedAt).toBeLessThan(TTL_MS + 500)
  })
})
