// --flags-url --redis: a follower's freshness is the leader's word, and the leader's word ages. A
// leader that stops reporting (killed: its lease lasts one TTL more; hung with its lease renewed)
// while the upstream is down left every follower saying "fresh" (stale: false) on the strength of
// its last `ok` report: up to a lease TTL plus a poll timeout (~20 s by default) for a dead leader,
// for ever for a hung one. Real redis-server; the follower's clock is the test's.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, createSharedDefinitions } from '@holdfast/server'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { booleanFlags, urlSourceFor } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

const { cleanups, redisServer } = useRedisFleet()
const POLL_MS = 200
const TIMEOUT_MS = 2000

describe('a leader that goes silent', () => {
  // Set back: NTP steps the follower's clock back an hour after the report. Before, the report
  // looked an hour ahead and the follower said fresh for the hour whatever became of the leader;
  // now its age is measured on the steady clock (across a step back, the time a monotonic clock saw pass).
  // Quiet, then set back: nothing read the follower's clock for longer than that (real time) before
  // the step. Before, the step counted as no time and so did the quiet before it: the leader's
  // silence looked a moment old, fresh for a poll, its timeout and the margin more.
  it.each([
    ['', 'none'],
    [' (its clock set back an hour after the report)', 'back'],
    [' (its clock set back an hour after a quiet longer than that)', 'quiet'],
  ] as const)("a follower says stale once the leader's last report is older than a poll and its timeout, and fresh again when one comes%s", async (_, step) => {
    const redis = await redisServer()
    const store = () => createRedisStore({ url: redis.url, namespace: 'silent', commandTimeoutMs: 300 })
    // The leader: holds the lease (renewed for as long as it lives) and reports only when told.
    const leader = createSharedDefinitions({ store: store(), leaseTtlMs: 30_000, take: () => true })
    cleanups.push(() => leader.stop())
    await leader.start()
    await waitFor(() => leader.role() === 'leader', 10_000)
    const text = JSON.stringify(booleanFlags(3, 'on'))
    const report = () => leader.polled({ ok: true, text, fetchedAt: Date.now() }, { state: 'ok', lastSuccessAt: Date.now(), lastAttemptAt: Date.now() })
    report()

    let clock = Date.now()
    // Never asked: a follower does not poll (and nothing listens there).
    const follower = urlSourceFor({ url: 'http://127.0.0.1:9' }, {
      pollIntervalMs: POLL_MS,
      timeoutMs: TIMEOUT_MS,
      now: () => clock,
      share: (hooks) => createSharedDefinitions({ store: store(), leaseTtlMs: 30_000, ...hooks }),
    })
    cleanups.push(() => follower.close())
    await follower.open()
    await waitFor(() => follower.relayStatus().redis?.role === 'follower' && follower.relayStatus().ready && follower.relayStatus().upstream.state === 'ok', 10_000)
    expect(follower.freshness()).toMatchObject({ source: 'upstream', stale: false })

    if (step === 'quiet') {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS + TIMEOUT_MS + 3000))
      clock -= 3600_000
    } else {
      if (step === 'back') {
        clock -= 3600_000
        expect(follower.freshness()!.stale).toBe(false)
      }
      // Within a poll interval and a poll's timeout of the report, the next one may still be on its way.
      clock += POLL_MS + TIMEOUT_MS
      expect(follower.freshness()!.stale).toBe(false)
      clock += 5000
    }
    // Past that (and a margin for Redis), nothing vouches for the flags: the leader's "ok" is unknown now.
    expect(follower.freshness()!.stale).toBe(true)
    expect(follower.relayStatus().stale).toBe(true)

    // The leader reports again: fresh.
    report()
    await waitFor(() => follower.freshness()!.stale === false, 10_000)
    expect(follower.relayStatus().stale).toBe(false)
  })
})
