// Proxy mode's re-ask round is bounded in time (`reaskRoundMs`) so that the users seen most
// recently are asked again every round, however many contexts are held. The bound is a duration:
// a wall clock stepped back (NTP after a suspend, a VM moved) must not lift it.
import { describe, expect, it } from 'vitest'
import { createUpstreamSource } from '@holdfast/server'
import { recordingLogger } from './helpers'
import { startUpstream } from './relay-fakes'

const CONTEXTS = 100

describe('a re-ask round across a wall clock stepped back', () => {
  it('still stops at its bound, and says how long it took', async () => {
    const answer = () => ({ flags: [{ key: 'plan', value: 'same', reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    let offset = 0
    const source = createUpstreamSource({
      url: upstream.url,
      maxShrinkPercent: 50,
      onUnauthorized: { mode: 'keep' },
      timeoutMs: 1000,
      log: recordingLogger(),
      now: () => Date.now() + offset,
      reaskRoundMs: 200,
    })
    try {
      await source.open()
      for (let i = 0; i < CONTEXTS; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => source.evaluate!({ context: { targetingKey: `visitor-${i + j}` }, headers: {} } as never)))
      // 100 contexts at 30 ms an answer, 4 at a time: 750 ms for the whole round.
      upstream.set(() => ({ delayMs: 30, then: { ofrep: answer } }))
      const round = source.refreshDetails!()
      // The clock is set back an hour as the round starts.
      offset = -3600_000
      const result = await round
      // Before: the bound was read on the wall clock, an hour away from ending: the round asked
      // every context (with 10,000 at 2 s an answer, 80 minutes), and the users seen most recently
      // were not asked again until it ended.
      expect(result.asked).toBeLessThan(CONTEXTS)
      const reask = source.relayStatus!().reask!
      expect(reask.durationMs).toBeGreaterThanOrEqual(150)
      expect(reask.durationMs).toBeLessThan(2000)
    } finally {
      await source.close()
    }
  })
})
