// What an operator sees on /metrics about events: accepted, duplicates, refusals, fsync latency,
// and, on a relay, the spool's depth and oldest age.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, startServer, tempDir, waitFor } from './helpers'

let counter = 0
const event = () => ({ id: `met-${process.pid}-${++counter}`, type: 'custom', name: 'clicked', time: 1 })
const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text()
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

// Waits inside (up to 10-15 s on a busy machine) stay below the test limit.
describe('events metrics', { timeout: 60_000 }, () => {
  it('counts accepted, duplicate and refused events, ids remembered and fsyncs', async () => {
    const server = await startServer({ eventsFile: join(await tempDir(), 'events.jsonl') })
    const a = event()
    await post(`${server.url}/holdfast/v1/events`, { events: [a, event()] })
    await post(`${server.url}/holdfast/v1/events`, { events: [a] })
    await fetch(`${server.url}/holdfast/v1/events`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"events":[]}' })
    await post(`${server.url}/holdfast/v1/events`, { events: [{ id: 'x' }] })
    const text = await scrape(server.url)
    expect(value(text, 'holdfast_events_accepted_total')).toBe(2)
    expect(value(text, 'holdfast_events_duplicates_total')).toBe(1)
    expect(value(text, 'holdfast_events_rejected_total{reason="unsupported_media_type"}')).toBe(1)
    expect(value(text, 'holdfast_events_rejected_total{reason="invalid"}')).toBe(1)
    expect(value(text, 'holdfast_events_dedupe_ids')).toBe(2)
    expect(value(text, 'holdfast_events_fsync_seconds_count')).toBe(1)
    // No spool here (--events-file): no sample, not a 0 (metrics-unknown.test.ts).
    expect(value(text, 'holdfast_events_spool_pending')).toBeUndefined()
  })

  it('on a relay: spool depth, oldest age and upstream state while the sink is down, then delivered', async () => {
    const sink = await startServer({ eventsFile: join(await tempDir(), 'sink.jsonl'), demoControls: true })
    sink.outage!.set({ events: true, retryAfter: 1 })
    const relay = await startServer({ eventsUpstream: `${sink.url}/holdfast/v1/events`, eventsSpoolDir: join(await tempDir(), 'spool') })
    await post(`${relay.url}/holdfast/v1/events`, { events: [event(), event(), event()] })
    await waitFor(() => relay.eventsForwarding!().state === 'failing', 10_000)
    const down = await scrape(relay.url)
    expect(value(down, 'holdfast_events_spool_pending')).toBe(3)
    expect(value(down, 'holdfast_events_spool_oldest_age_seconds')).toBeGreaterThanOrEqual(0)
    expect(value(down, 'holdfast_events_upstream_state{state="failing"}')).toBe(1)
    expect(value(down, 'holdfast_events_upstream_state{state="ok"}')).toBe(0)
    sink.outage!.set({ events: false })
    await waitFor(() => relay.eventsForwarding!().pending === 0, 15_000)
    const up = await scrape(relay.url)
    expect(value(up, 'holdfast_events_spool_pending')).toBe(0)
    expect(value(up, 'holdfast_events_forwarded_total{outcome="delivered"}')).toBe(3)
    expect(value(up, 'holdfast_events_upstream_state{state="ok"}')).toBe(1)
  })
})
