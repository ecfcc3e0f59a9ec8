// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: a drop
// marker (d06ecda) is read as a drop only of the context it names and in that context's place. One
// found under another context's key (copied there by hand, or by a tool moving keys) names a
// context it was not written for: it is no drop of either, and an answer no relay can read.
import { describe, expect, it, vi } from 'vitest'
import { PRO, proxyClear } from './dropFixtures'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, recordingLogger, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

describe('--upstream --redis, clear: a drop marker under another context\'s key', () => {
  it('is no drop of the context it names nor of its own: a relay started in the outage serves the other user, and the log says what it could not read', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const ask = async (server: { url: string }, targetingKey: string) => {
      const response = await evaluate(server as never, { targetingKey })
      return { status: response.status, value: ((await response.json()) as any).flags?.[0]?.value }
    }
    const contextKeys = async () => (await redis.command('KEYS', '*:doc:context:*')).split('\r\n').filter((line) => line.startsWith('holdfast:'))
    // A relay answers two users; the store holds both answers, each under its context's key.
    const a = await relay(redis, upstream, proxyClear(upstream))
    await waitFor(async () => (await status(a.server)).redis?.state === 'up', 20_000)
    expect(await ask(a.server, 'x')).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await contextKeys()).length === 1, 5000, 20)
    const [keyOfX] = await contextKeys()
    expect(await ask(a.server, 'y')).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await contextKeys()).length === 2, 5000, 20)
    const keyOfY = (await contextKeys()).find((key) => key !== keyOfX)!
    await waitFor(async () => (await status(a.server)).redis?.unshared === 0, 10_000)
    // Under x's key, at a version newer than both answers, a drop marker naming y's context.
    const hashOfY = keyOfY.slice(keyOfY.lastIndexOf(':') + 1)
    const versionOf = async (key: string) => Number((await redis.command('HGET', key, 'version')).split('\r\n')[1])
    const version = Math.max(await versionOf(keyOfX), await versionOf(keyOfY)) + 1
    const marker = JSON.stringify({ kind: 'dropped', key: hashOfY, at: Date.now() })
    await redis.command('HSET', keyOfX, 'version', String(version), 'body', marker)

    // The upstream goes down; a relay new to the fleet starts and reads the store.
    upstream.set({ status: 503, text: 'down' })
    const log = recordingLogger()
    const b = await relay(redis, upstream, { ...proxyClear(upstream), logger: log })
    await waitFor(async () => (await status(b.server)).redis?.state === 'up', 20_000)
    await waitFor(async () => (await status(b.server)).contexts === 1, 10_000, 20)
    // y's answer is taken and served: the marker is no drop of y (read as one, y's answer, older
    // than it, would be refused, or dropped, and y answered 503).
    const first = await ask(b.server, 'y')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect([first, await ask(b.server, 'y')]).toEqual([
      { status: 200, value: 'pro' },
      { status: 200, value: 'pro' },
    ])
    // Nor of x, whose place it is in: it is no marker of x's, and never served as values; x has
    // nothing to serve on this relay (503), as with any unreadable document.
    expect((await ask(b.server, 'x')).status).toBe(503)
    // The log says the store holds something it cannot read, and nothing was dropped here.
    expect(log.lines.filter((line) => /cannot read|dropped/.test(line)), log.lines.join('\n')).toEqual([expect.stringMatching(new RegExp(`cannot read an answer in the store \\(the latest at version ${version}\\)`))])
    expect((await status(b.server)).redis.taken).toBe(1)
    // The relay that answered both keeps serving both in the outage (the marker, never announced,
    // looked up after the upstream's failure, is refused as unreadable there too).
    for (const user of ['x', 'y']) expect((await ask(a.server, user)).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (const user of ['x', 'y']) expect((await ask(a.server, user)).status).toBe(200)
  })
})
