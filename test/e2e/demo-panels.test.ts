// The demo's events panel sentence (examples/react), for every reason events can wait, including
// the event stats' `lastError` (401/403/404/405/410: the URL or key is wrong) and an older client
// without one (derived from the flag status). No browser: the sentence is a pure function.
import { describe, expect, it } from 'vitest'
import type { EventStats, Status } from '@holdfast/react'
import { whyWaiting } from '../../examples/react/src/components/EventsPanel'

const ready: Status = { state: 'ready', source: 'network', storage: 'indexeddb' }
const stats = (extra: Partial<EventStats> & Record<string, unknown>) => ({ queued: 0, sent: 0, dropped: 0, retries: 0, ...extra }) as EventStats

describe("the demo's events panel: why events wait", () => {
  it('says nothing waits when the queue is empty, whatever failed before', () => {
    expect(whyWaiting(stats({ retries: 9, lastError: { code: 'HTTP', message: 'x', httpStatus: 503 } }), ready)).toBe('Nothing waiting.')
  })

  it("names the events endpoint's own answer when the client reports it", () => {
    const s = stats({ queued: 4, lastError: { code: 'HTTP', message: 'HTTP 503 from the events endpoint', httpStatus: 503 } })
    expect(whyWaiting(s, ready)).toBe('4 events waiting: the events endpoint answered 503: HTTP 503 from the events endpoint. Retrying with backoff.')
  })

  it.each([401, 403, 404, 405, 410])('after %i says the URL or key is wrong and that the events are kept', (httpStatus) => {
    const s = stats({ queued: 1, lastError: { code: 'HTTP', message: 'm', httpStatus } })
    expect(whyWaiting(s, ready)).toBe(`1 event waiting: the events endpoint answered ${httpStatus}, so its URL or key is wrong. They are kept and retried with backoff.`)
  })

  it('without lastError, derives the reason from a failing flag server, then from a failed send, then the schedule', () => {
    const down: Status = { ...ready, state: 'stale', error: { code: 'HTTP', message: 'm', httpStatus: 503 } }
    expect(whyWaiting(stats({ queued: 2, retries: 1 }), down)).toMatch(/^2 events waiting: sends fail while the flag server answers 503/)
    expect(whyWaiting(stats({ queued: 2, retries: 1 }), { ...down, error: { code: 'TIMEOUT', message: 'm' } })).toMatch(/flag server fails \(TIMEOUT\)/)
    // No send failed yet: a failing flag server alone says nothing about the events.
    expect(whyWaiting(stats({ queued: 2 }), down)).toBe('2 events waiting for the next send (every 3 s, or "Flush now").')
    expect(whyWaiting(stats({ queued: 2, retries: 2 }), ready)).toBe('2 events waiting: the last send failed. Retrying with backoff.')
    expect(whyWaiting(stats({ queued: 2 }), ready)).toBe('2 events waiting for the next send (every 3 s, or "Flush now").')
  })
})
