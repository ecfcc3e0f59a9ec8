// CONTRACT §9 operations, `GET /metrics`: a gauge whose value the relay does not have is no
// sample at all, never a 0. prom-client gives a gauge without labels a 0 of its own until it is
// set, and `reset()` puts that 0 back; so before, a relay that had never served anything said
// `holdfast_relay_served_age_seconds 0` (what it serves is fresh: the alert the README recommends
// never fired), one that never reached Redis said `holdfast_redis_last_ok_age_seconds 0` (Redis
// answered just now), and every relay without `--snapshot` or `--data-dir` said
// `holdfast_relay_snapshot_usable 0` / `holdfast_relay_data_dir_used 0`, the values that mean
// "the snapshot is torn" and "the data dir's mount hung": an alert on either fired on every relay.
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createServerMetrics, type FlagServer } from '@holdfast/server'
import { DEMO_FLAGS, evaluate, startServer, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

/** The value of the sample `name` (no labels) on the metrics page, or undefined when there is none. */
async function sample(server: FlagServer, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

/**
 * The wall clock of everything made from now on, Date.now included (a relay reads it when it is
 * made): `setBack(ms)` steps it back as NTP would. Restored after the test.
 */
function steppableClock(): { setBack: (ms: number) => void } {
  const wall = Date.now.bind(Date)
  let offset = 0
  vi.spyOn(Date, 'now').mockImplementation(() => wall() + offset)
  onTestFinished(() => void vi.restoreAllMocks())
  return { setBack: (ms) => (offset -= ms) }
}

/** The relay's `GET /holdfast/v1/status`. */
async function statusOf(server: FlagServer): Promise<{ fetchedAt: number; ageSeconds: number; stale: boolean }> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { fetchedAt: number; ageSeconds: number; stale: boolean }
}

describe('a gauge the relay has no value for is absent, never 0', () => {
  it('--upstream with nothing served: no age, no last success, no snapshot or data dir it was not given', async () => {
    const upstream = await startUpstream({ status: 503, text: 'down' })
    const server = await startServer({ flags: undefined, upstream: upstream.url })
    expect(await sample(server, 'holdfast_relay_ready')).toBe(0)
    // A timestamp says "never" with 0 (the epoch), so `time() - it > N` alerts fire.
    expect(await sample(server, 'holdfast_relay_last_success_timestamp_seconds')).toBe(0)
    for (const name of [
      'holdfast_relay_served_age_seconds',
      'holdfast_flag_definitions_age_seconds',
      'holdfast_relay_reask_duration_seconds',
      'holdfast_relay_snapshot_usable',
      'holdfast_relay_data_dir_used',
    ]) {
      expect({ name, value: await sample(server, name) }).toEqual({ name, value: undefined })
    }

    // Once something is served, its age is there (and a real number).
    upstream.set({ ofrep: () => ({ flags: [{ key: 'a', value: true }] }) })
    expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
    expect(await sample(server, 'holdfast_relay_served_age_seconds')).toBeGreaterThanOrEqual(0)
    expect(await sample(server, 'holdfast_relay_last_success_timestamp_seconds')).toBeGreaterThan(1e9)
  })

  it('--flags FILE: the age of the definitions served is there', async () => {
    const server = await startServer()
    expect(await sample(server, 'holdfast_flag_definitions_age_seconds')).toBeGreaterThanOrEqual(0)
  })

  it('--flags-url: no contexts held (definitions evaluate any context), so no holdfast_relay_contexts sample, not a 0', async () => {
    const upstream = await startUpstream({ document: DEMO_FLAGS })
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json` })
    await waitFor(async () => (await evaluate(server, { targetingKey: 'u1' })).status === 200, 10_000)
    // Before: 0 however many users it served, read on a dashboard as "no user reached this relay".
    expect(await sample(server, 'holdfast_relay_contexts')).toBeUndefined()
    // Proxy mode holds one answer per context: counted.
    const proxied = await startUpstream({ ofrep: () => ({ flags: [{ key: 'a', value: true, reason: 'STATIC' }] }) })
    const proxy = await startServer({ flags: undefined, upstream: proxied.url })
    expect((await evaluate(proxy, { targetingKey: 'u1' })).status).toBe(200)
    expect(await sample(proxy, 'holdfast_relay_contexts')).toBe(1)
  })

  it('--flags-url with Redis never reached: no "Redis answered 0 s ago"', async () => {
    const upstream = await startUpstream({ document: DEMO_FLAGS })
    // Nothing listens on port 1: every command fails.
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, redis: 'redis://127.0.0.1:1' })
    await waitFor(async () => (await evaluate(server, { targetingKey: 'u1' })).status === 200, 10_000)
    expect(await sample(server, 'holdfast_redis_up')).toBe(0)
    expect(await sample(server, 'holdfast_redis_last_ok_age_seconds')).toBeUndefined()
    // The definitions served do have an age.
    expect(await sample(server, 'holdfast_flag_definitions_age_seconds')).toBeGreaterThanOrEqual(0)
  })
})

describe('the events spool gauges on a server that forwards no events', () => {
  // A server with --events-file (or memory only) has no spool: before, it said
  // `holdfast_events_spool_pending 0`, `…_oldest_age_seconds 0` and `…_upstream_state{state="ok"} 0`,
  // and a fleet's sum of pending events, or a "no state is 1" alert, counted it as a spool.
  const SPOOL_GAUGES = [
    'holdfast_events_spool_pending',
    'holdfast_events_spool_oldest_age_seconds',
    'holdfast_events_spool_cursor_unsaved_events',
    'holdfast_events_dead_letter_bytes',
    'holdfast_events_dead_letter_full',
    'holdfast_events_upstream_state',
  ]
  const samples = async (server: FlagServer) => (await (await fetch(`${server.url}/metrics`)).text()).split('\n').filter((line) => SPOOL_GAUGES.some((name) => line.startsWith(`${name} `) || line.startsWith(`${name}{`)))

  it('has no sample of them (the HELP and TYPE lines stay), while a forwarding relay has every one', async () => {
    for (const options of [{ eventsFile: join(await tempDir(), 'events.jsonl') }, {}]) {
      const server = await startServer(options)
      expect(await samples(server)).toEqual([])
      const text = await (await fetch(`${server.url}/metrics`)).text()
      expect(text).toContain('# TYPE holdfast_events_spool_pending gauge')
    }
    const sink = await startServer({ eventsFile: join(await tempDir(), 'sink.jsonl') })
    const relay = await startServer({ eventsUpstream: `${sink.url}/holdfast/v1/events`, eventsSpoolDir: join(await tempDir(), 'spool') })
    const forwarding = await samples(relay)
    expect(forwarding).toContain('holdfast_events_spool_pending 0')
    expect(forwarding).toContain('holdfast_events_upstream_state{state="ok"} 1')
    expect(new Set(forwarding.map((line) => line.split(/[ {]/)[0]))).toEqual(new Set(SPOOL_GAUGES))
  })
})

describe('the age of what is served', () => {
  it('grows through an outage, also after the wall clock was set back an hour', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'a', value: true, reason: 'STATIC' }] }) })
    const server = await startServer({ flags: undefined, upstream: upstream.url })
    expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
    upstream.set({ status: 503, text: 'down' })
    expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
    expect(await sample(server, 'holdfast_relay_served_age_seconds')).toBeLessThan(1)
    const wall = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => wall() - 3_600_000)
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500))
      // Before, what is served looked fetched an hour ahead: 0 s old for the hour, and the alert
      // the README recommends (on this age) never fired however long the outage lasted.
      expect(await sample(server, 'holdfast_relay_served_age_seconds')).toBeGreaterThanOrEqual(1.4)
    } finally {
      vi.restoreAllMocks()
    }
  })

  it("the status' ageSeconds grows too (proxy mode, --flags-url and --flags FILE), also after the relay's clock was set back an hour", async () => {
    const clock = steppableClock()
    // The flags document for --flags-url (GET), OFREP answers for proxy mode (POST).
    const upstream = await startUpstream((request) => (request.method === 'GET' ? { document: DEMO_FLAGS } : { ofrep: () => ({ flags: [{ key: 'a', value: true, reason: 'STATIC' }] }) }))
    const proxy = await startServer({ flags: undefined, upstream: upstream.url })
    const url = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 0.2 })
    const file = await startServer({})
    expect((await evaluate(proxy, { targetingKey: 'u1' })).status).toBe(200)
    await waitFor(async () => (await evaluate(url, { targetingKey: 'u1' })).status === 200, 10_000)
    upstream.set({ status: 503, text: 'down' })
    expect((await evaluate(proxy, { targetingKey: 'u1' })).status).toBe(200)
    for (const server of [proxy, url]) expect((await statusOf(server)).ageSeconds).toBeLessThanOrEqual(1)
    const fileAge = (await statusOf(file)).ageSeconds
    clock.setBack(3_600_000)
    await new Promise((resolve) => setTimeout(resolve, 2600))
    // Before: what is held looked fetched an hour ahead, and the status said 0 s old for the
    // hour the outage went on (while holdfast_relay_served_age_seconds grew).
    expect((await statusOf(proxy)).ageSeconds, 'proxy mode').toBeGreaterThanOrEqual(2)
    expect((await statusOf(url)).ageSeconds, '--flags-url').toBeGreaterThanOrEqual(2)
    // A local file read before the step: as old as it was, and 2.6 s more (before: 0 for the hour).
    expect((await statusOf(file)).ageSeconds, '--flags FILE').toBeGreaterThanOrEqual(fileAge + 2)
  })

  it('of the definitions grows too, also after the metrics clock was set back an hour', async () => {
    const metrics = createServerMetrics()
    let clock = Date.now()
    const fetchedAt = clock
    metrics.bind({ definitionsFetchedAt: () => fetchedAt, now: () => clock })
    const age = async () => (await metrics.registry.getSingleMetric('holdfast_flag_definitions_age_seconds')!.get()).values[0]?.value
    expect(await age()).toBe(0)
    clock -= 3_600_000
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // Before: 0 s old for the hour.
    expect(await age()).toBeGreaterThanOrEqual(1.4)
  })
})

describe('the newest answer held, after the wall clock was set back', () => {
  it('is one the upstream gave after the step, not one dated ahead of the clock from before it', async () => {
    const clock = steppableClock()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'a', value: true, reason: 'STATIC' }] }) })
    const server = await startServer({ flags: undefined, upstream: upstream.url })
    expect((await evaluate(server, { targetingKey: 'before-the-step' })).status).toBe(200)
    expect(await sample(server, 'holdfast_relay_served_age_seconds')).toBeLessThan(1)
    clock.setBack(3_600_000)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // The upstream answers another user now: what is served was vouched for just now.
    expect((await evaluate(server, { targetingKey: 'after-the-step' })).status).toBe(200)
    const status = await statusOf(server)
    // Before: the answer from before the step, dated an hour ahead of the clock, stayed "newest"
    // for the hour: the status named a time an hour ahead, and the served age grew from it while
    // the upstream answered every request (an alert on it fired for the hour with nothing wrong).
    expect(status.fetchedAt).toBeLessThanOrEqual(Date.now())
    expect(Date.now() - status.fetchedAt).toBeLessThan(1000)
    expect(status.stale).toBe(false)
    expect(await sample(server, 'holdfast_relay_served_age_seconds')).toBeLessThan(1)
  })
})
