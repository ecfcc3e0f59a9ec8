// Proxy mode's data dir is written after every change of content and otherwise at most every 30 s,
// so the age a restarted relay reports is at most 30 s older than the truth. Measured on the wall
// clock, NTP setting the relay's clock back an hour stopped the resaves of unchanged answers for
// the hour: a relay restarted then reported every answer up to an hour older than it was.
import { describe, expect, it } from 'vitest'
import { createGenerationStore } from '@holdfast/server'
import { tempDir, waitFor } from './helpers'
import { proxySourceFor, startUpstream } from './relay-fakes'

describe('proxy mode: the data dir after the clock is set back', () => {
  it('an unchanged answer is still saved again every 30 s, so a restart reports its true age', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: 'v1', reason: 'STATIC' }] }) })
    const dir = await tempDir()
    let clock = Date.now()
    const source = proxySourceFor(upstream, { now: () => clock, store: createGenerationStore({ dir }) })
    await source.open()
    const ask = () => source.evaluate!({ context: { targetingKey: 'ada' }, headers: {} } as never)
    const savedAt = () => source.relayStatus().dataDir?.lastSavedAt
    try {
      await ask()
      const first = clock
      await waitFor(() => savedAt() === first, 5000)
      // Forward 31 s: the unchanged answer is saved again (the control).
      clock += 31_000
      await ask()
      const second = clock
      await waitFor(() => savedAt() === second, 5000)
      // NTP sets the clock back an hour; then 31 s pass, and the upstream answers the same again.
      clock -= 3600_000
      await ask()
      clock += 31_000
      await ask()
      const fourth = clock
      // Before: nothing was saved for the hour (the data dir kept the answer's time before the step).
      await waitFor(() => savedAt() === fourth, 3000)
    } finally {
      await source.close()
      upstream.close()
    }
    // The restarted relay reads the answer's latest time, not the one from before the step.
    const { loaded } = await createGenerationStore({ dir }).loadNewest()
    const saved = JSON.parse(loaded!.payload) as { contexts: Array<{ fetchedAt: number }> }
    expect(saved.contexts[0].fetchedAt).toBe(clock)
  })
})
