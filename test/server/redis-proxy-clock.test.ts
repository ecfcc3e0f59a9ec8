// Proxy mode with --redis and --data-dir, on a real redis-server: a relay whose clock ran hours
// ahead wrote its data dir (every answer dated in its future). Restarted while the upstream is
// down, it must not prefer that data dir over a newer answer the fleet got meanwhile, nor write it
// back over the fleet's copy: the store's order (the version each answer was asked for at) decides
// where it can, not the times of two machines' clocks.
import { describe, expect, it, vi } from 'vitest'
import { createGenerationStore, createRedisStore, createSharedContexts, createUpstreamSource, type RelaySource } from '@holdfast/server'
import { useRedisFleet } from './redis-fleet'
import { recordingLogger, tempDir, waitFor } from './helpers'
import { proxySourceFor, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()
const HOURS = 3 * 3600_000

describe('proxy mode: a data dir written by a relay whose clock ran hours ahead', () => {
  it.each([
    ['set right', 0, true],
    ['still ahead', HOURS, true],
    // Its answer got without a place in the store's order (Redis away then, or an older server's
    // data dir): dated ahead of the clock at the restart, its time orders nothing.
    ['set right, its answer got while cut off from Redis', 0, false],
  ])('does not beat the newer answer the fleet got meanwhile after a restart (its clock %s), nor go back over it in Redis', async (_, skew, shared) => {
    const redis = await redisServer()
    let greeting = 'v1'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: greeting, reason: 'STATIC' }] }) })
    const dir = await tempDir()
    const proxy = (now: () => number, dataDir?: string, share = true): RelaySource => {
      const source = createUpstreamSource({
        url: upstream.url,
        maxShrinkPercent: 50,
        onUnauthorized: { mode: 'keep' },
        timeoutMs: 1000,
        heldAnswerAfterMs: 1000,
        log: recordingLogger(),
        now,
        ...(dataDir ? { store: createGenerationStore({ dir: dataDir }) } : {}),
        ...(share ? { share: (take, held) => createSharedContexts({ store: createRedisStore({ url: redis.url, namespace: 'proxy-clock', commandTimeoutMs: 300 }), take, held }) } : {}),
      })
      cleanups.push(() => source.close())
      return source
    }
    const ask = async (s: RelaySource) => {
      const answer = (await s.evaluate!({ context: { targetingKey: 'ada' }, headers: {} } as never)) as { status?: number; body: { flags?: Array<{ key: string; value: unknown }> } }
      return answer.body.flags?.[0]?.value
    }
    const stored = async () => (await redis.command('KEYS', 'holdfast:*:doc:context:*')).split('\r\n').filter((line) => line.startsWith('holdfast:'))
    const storedGreeting = async () => {
      const [key] = await stored()
      const reply = await redis.command('HGET', key, 'body')
      return (JSON.parse(reply.split('\r\n')[1]) as { flags: Array<{ value: unknown }> }).flags[0].value
    }

    // The relay with the fast clock answers Ada (v1), shares it (or cannot) and saves it to its data dir.
    const ahead = proxy(() => Date.now() + HOURS, dir, shared)
    await ahead.open()
    if (shared) await waitFor(() => ahead.relayStatus().redis?.state === 'up', 10_000)
    expect(await ask(ahead)).toBe('v1')
    if (shared) await waitFor(async () => (await stored()).length === 1, 10_000)
    await waitFor(() => ahead.relayStatus().dataDir?.lastSavedAt !== undefined, 10_000)
    await ahead.close()

    // Meanwhile another relay of the fleet (a right clock) answers Ada with the upstream's change.
    greeting = 'v2'
    const other = proxy(Date.now)
    await other.open()
    await waitFor(() => other.relayStatus().redis?.state === 'up', 10_000)
    expect(await ask(other)).toBe('v2')
    await waitFor(async () => (await stored()).length === 1 && (await storedGreeting()) === 'v2', 10_000)
    await other.close()

    // The upstream goes down; the relay restarts from its data dir.
    upstream.set({ status: 503, text: 'down' })
    const restarted = proxy(() => Date.now() + skew, dir)
    await restarted.open()
    await waitFor(() => restarted.relayStatus().redis?.state === 'up' && (restarted.relayStatus().redis?.taken ?? 0) >= 1, 5000).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Before: the data dir's answer, dated 3 h ahead (clamped to the restart), beat the store's by
    // the times: the relay served v1, and wrote it back over v2 in Redis for the whole fleet.
    expect(await ask(restarted)).toBe('v2')
    expect(await storedGreeting()).toBe('v2')
  })
})

// An answer whose content did not change is shared again at most every 30 s (it carries the newer
// fetchedAt, so the fleet and a restarted relay report the true age). Measured on the wall clock,
// NTP setting the relay's clock back an hour stopped those reshares for the hour.
describe('proxy mode with --redis: the clock set back', () => {
  it('an unchanged answer is still shared again every 30 s after the relay’s clock is set back an hour', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: 'v1', reason: 'STATIC' }] }) })
    let clock = Date.now()
    const source = proxySourceFor(upstream, {
      now: () => clock,
      share: (take, held) => createSharedContexts({ store: createRedisStore({ url: redis.url, namespace: 'proxy-reshare', commandTimeoutMs: 300 }), take, held }),
    })
    cleanups.push(() => source.close())
    await source.open()
    await waitFor(() => source.relayStatus().redis?.state === 'up', 10_000)
    const storedFetchedAt = async () => {
      const [key] = (await redis.command('KEYS', 'holdfast:*:doc:context:*')).split('\r\n').filter((line) => line.startsWith('holdfast:'))
      if (!key) return undefined
      return Number((await redis.command('HGET', key, 'fetchedAt')).split('\r\n')[1])
    }
    const ask = () => source.evaluate!({ context: { targetingKey: 'ada' }, headers: {} } as never)
    await ask()
    const first = clock
    await waitFor(async () => (await storedFetchedAt()) === first, 10_000)
    // Forward 31 s: the unchanged answer is shared again (the control).
    clock += 31_000
    await ask()
    const second = clock
    await waitFor(async () => (await storedFetchedAt()) === second, 10_000)
    // NTP sets the clock back an hour; then 31 s pass: shared again, as before the step.
    clock -= 3600_000
    await ask()
    clock += 31_000
    await ask()
    const fourth = clock
    // Before: nothing was shared for the hour (Redis kept the answer's time from before the step).
    await waitFor(async () => (await storedFetchedAt()) === fourth, 5000)
  })
})
