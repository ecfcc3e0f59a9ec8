// Proxy mode under --on-upstream-unauthorized clear-after=S: a key's values go once the upstream has
// refused it for S seconds. A 200 for another context of that key, to a request sent before the
// key's first 401 and answered after it, is the upstream's earlier word: it must not start the count
// again, or the revoked key's values are served for longer than S (as long as such answers come).
import { describe, expect, it } from 'vitest'
import { createUpstreamSource } from '@holdfast/server'
import { startHoldingUpstream } from './dropFixtures'
import { recordingLogger, waitFor } from './helpers'

describe('proxy mode: clear-after and a 200 sent before the first 401', () => {
  it('does not put off the drop: the key’s values go S seconds after its first 401; a 200 to a request sent after it still ends the count', async () => {
    // The other user's request, sent while the key was accepted: answered 200, but only later.
    const upstream = await startHoldingUpstream('other')
    const clock = { at: 1_800_000_000_000 }
    // The held-answer wait past the upstream's answers here: each evaluate returns the upstream's word.
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'clear-after', seconds: 60 }, timeoutMs: 20_000, heldAnswerAfterMs: 20_000, log: recordingLogger(), now: () => clock.at })
    await source.open()
    try {
      const ask = async (user: string) => {
        const answer = await source.evaluate!({ context: { targetingKey: user }, headers: { authorization: 'Bearer revoked' } })
        return { status: answer.status, value: (answer.body as { flags?: Array<{ value: unknown }> }).flags?.[0]?.value }
      }
      expect(await ask('victim')).toEqual({ status: 200, value: 'pro' })
      expect(await ask('other')).toEqual({ status: 200, value: 'pro' })
      // The other user's request goes out and waits at the upstream.
      upstream.hold()
      const other = ask('other')
      await waitFor(() => upstream.held() !== undefined, 5000)
      // The key is revoked: the victim's first 401 (values kept for 60 s).
      upstream.set('revoked')
      expect(await ask('victim')).toEqual({ status: 200, value: 'pro' })
      // The request sent before that 401 is answered now: 200, the upstream's earlier word.
      upstream.release()
      expect(await other).toEqual({ status: 200, value: 'pro' })
      // 61 s of nothing but 401s for the key since its first: its values go.
      clock.at += 61_000
      // Before: 200 'pro' (stale), the count started again at this 401, and 60 s more of it.
      expect(await ask('victim')).toEqual({ status: 503, value: undefined })

      // A 200 to a request sent after the 401s still ends the count: the key accepted again, then
      // refused again, keeps its values for 60 s from that refusal.
      upstream.set('ok')
      expect(await ask('other')).toEqual({ status: 200, value: 'pro' })
      clock.at += 1000
      upstream.set('revoked')
      expect(await ask('other')).toEqual({ status: 200, value: 'pro' })
      clock.at += 59_000
      expect(await ask('other')).toEqual({ status: 200, value: 'pro' })
      clock.at += 2000
      expect(await ask('other')).toEqual({ status: 503, value: undefined })
    } finally {
      await source.close()
    }
  })
})
