// A rolling deploy: five relays on one Redis restarted one by one while the upstream keeps
// changing. What each relay serves is sampled throughout: no relay (its old process or the new
// one) ever serves an older generation after a newer one, and every status converges on the
// newest version. Real redis-server and fake upstream on 127.0.0.1.
import { describe, expect, it, vi } from 'vitest'
import { status, useRedisFleet, values, type Relay } from './redis-fleet'
import { tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

const { redisServer, relay } = useRedisFleet()

/** A flagd document whose flag `gen` is `n`, beside a few flags that never change. */
const generation = (n: number) => ({
  flags: {
    gen: { state: 'ENABLED', variants: { v: n }, defaultVariant: 'v' },
    ...Object.fromEntries([0, 1, 2].map((i) => [`f${i}`, { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' }])),
  },
})

describe('a rolling deploy of five relays while the upstream changes', () => {
  it('no relay goes back to an older generation, and every status converges on the newest version', async () => {
    const redis = await redisServer()
    let gen = 1
    const upstream = await startUpstream({ document: generation(gen) })
    // Each with its data dir, as in the README's recipe: a new process first serves what its
    // predecessor saved there.
    const dirs = await Promise.all([0, 1, 2, 3, 4].map(() => tempDir()))
    const relays: Relay[] = []
    for (const dir of dirs) relays.push(await relay(redis, upstream, { dataDir: dir }))
    const seen: number[][] = relays.map(() => [])
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        await Promise.all(
          relays.map(async (r, i) => {
            const answer = await values(r.server).catch(() => undefined)
            if (answer?.status === 200 && typeof answer.flags.gen === 'number') seen[i]!.push(answer.flags.gen)
          }),
        )
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    for (let i = 0; i < 5; i++) {
      upstream.set({ document: generation(++gen) })
      await new Promise((resolve) => setTimeout(resolve, 150))
      // The old process goes (releasing the lease if it held it); its successor starts at once.
      const old = relays[i]!
      await old.server.close()
      relays[i] = await relay(redis, upstream, { dataDir: dirs[i] })
      upstream.set({ document: generation(++gen) })
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.gen === gen, 10_000)
    sampling = false
    await sampler
    for (const [i, series] of seen.entries()) {
      // Sampled through the changes, not only before or after them.
      expect(new Set(series).size, `relay ${i}: ${series.join(',')}`).toBeGreaterThan(2)
      for (let k = 1; k < series.length; k++) expect(series[k], `relay ${i}: ${series.join(',')}`).toBeGreaterThanOrEqual(series[k - 1]!)
    }
    const versions = await Promise.all(relays.map(async (r) => (await status(r.server)).version))
    expect(new Set(versions).size).toBe(1)
  })
})
