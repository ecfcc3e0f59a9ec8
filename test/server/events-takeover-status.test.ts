// What an operator of the old relay sees once another server took its spool over. Before, its
// `events.forwarding` kept the state and `pending` it had at the takeover, and `oldestAgeMs` and
// holdfast_events_spool_oldest_age_seconds went on growing while the new holder drained the spool:
// an oldest-age (or `state="failing"`) alert on that relay fired for events that were being
// delivered by another.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { lockTiming } from '../../packages/server/src/events/lockTiming'
import { steppedClock } from './events-faults'
import { post, startServer, tempDir, waitFor } from './helpers'

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])

describe('a relay whose spool was taken over by another server', { timeout: 30_000 }, () => {
  it('no longer reports the spool as its own: forwarding state taken-over, nothing pending, no oldest age, in status and metrics', async () => {
    const refresh = lockTiming.refreshMs
    lockTiming.refreshMs = 50
    try {
      const clock = steppedClock()
      const spool = join(await tempDir(), 'spool')
      // The sink is down: events wait in the spool, the forwarder is `failing`.
      const relay = await startServer({ eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool, eventsForwarding: { clock } })
      const events = [1, 2, 3].map((n) => ({ id: `takeover-status-${process.pid}-${n}`, type: 'custom', name: 'c', time: 1 }))
      expect((await post(`${relay.url}/holdfast/v1/events`, { events })).status).toBe(202)
      await waitFor(() => relay.eventsForwarding!().state === 'failing', 5_000)
      clock.advance(60_000)
      expect(relay.eventsForwarding!()).toMatchObject({ pending: 3, oldestAgeMs: 60_000 })
      // Another host takes the lock over (this relay was paused past the lease).
      await writeFile(join(spool, 'LOCK'), JSON.stringify({ pid: 4242, host: 'other-host.invalid', since: '2026-12-05T06:00:00.000Z' }))
      await waitFor(async () => (await post(`${relay.url}/holdfast/v1/events`, { events: [] })).status === 503, 5_000)
      // The new holder drains the spool for an hour; this relay's clock runs on.
      clock.advance(3_600_000)
      const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { events: { takenOver?: unknown; forwarding: Record<string, unknown> } }
      expect(status.events.takenOver).toBeDefined()
      expect(status.events.forwarding).toMatchObject({ state: 'taken-over', pending: 0, oldestAgeMs: 0 })
      const metrics = await (await fetch(`${relay.url}/metrics`)).text()
      expect(metric(metrics, 'holdfast_events_spool_oldest_age_seconds')).toBe(0)
      expect(metric(metrics, 'holdfast_events_spool_pending')).toBe(0)
      expect(metrics).toMatch(/holdfast_events_upstream_state\{state="failing"\} 0/)
      expect(metrics).toMatch(/holdfast_events_upstream_state\{state="taken-over"\} 1/)
      expect(relay.eventsForwarding!()).toMatchObject({ state: 'taken-over', pending: 0, oldestAgeMs: 0 })
      await relay.close()
    } finally {
      lockTiming.refreshMs = refresh
    }
  })
})
