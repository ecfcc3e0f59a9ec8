// CONTRACT §9, operations: `GET /metrics` is Prometheus text format, whatever the source and
// whatever has happened (failures, refusals, hostile input). A scraper refuses the whole page for
// one bad line (a family declared twice, a sample before its TYPE, an unescaped label value, a
// series twice), so the page is checked line by line here, as a strict scraper reads it, after
// traffic that touches every family a mode has.
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { startUpstream } from './relay-fakes'
import { DEMO_FLAGS, evaluate, post, startServer, tempDir, waitFor } from './helpers'
import { settled, useRedisFleet } from './redis-fleet'

const fleet = useRedisFleet()

/** Every way the page breaks the text format (0.0.4), or [] when a strict scraper takes it. */
function expositionProblems(text: string): string[] {
  const problems: string[] = []
  const types = new Map<string, string>()
  const helps = new Set<string>()
  const series = new Set<string>()
  const finished = new Set<string>()
  const sampled = new Set<string>()
  let current: string | undefined
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/
  const value = /^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)$/
  // The family a sample belongs to: a histogram's _bucket/_sum/_count, a summary's _sum/_count.
  const familyOf = (sample: string) => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = sample.slice(0, -suffix.length)
      if (sample.endsWith(suffix) && (types.get(base) === 'histogram' || types.get(base) === 'summary')) return base
    }
    return sample
  }
  if (!text.endsWith('\n')) problems.push('the page does not end with a newline')
  for (const line of text.split('\n')) {
    if (line === '') continue
    const comment = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line)
    if (comment) {
      const [, kind, family, rest = ''] = comment
      if (!name.test(family)) problems.push(`bad family name: ${line}`)
      if (kind === 'HELP') {
        if (helps.has(family)) problems.push(`HELP twice: ${family}`)
        helps.add(family)
      } else {
        if (types.has(family)) problems.push(`TYPE twice: ${family}`)
        if (sampled.has(family)) problems.push(`TYPE after samples: ${family}`)
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) problems.push(`bad type: ${line}`)
        types.set(family, rest)
      }
      continue
    }
    if (line.startsWith('#')) continue
    const sample = /^([^{\s]+)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line)
    if (!sample) {
      problems.push(`unreadable line: ${JSON.stringify(line)}`)
      continue
    }
    const [, metric, labels = '', number] = sample
    if (!name.test(metric)) problems.push(`bad metric name: ${line}`)
    if (!value.test(number)) problems.push(`bad value: ${line}`)
    const family = familyOf(metric)
    if (!types.has(family)) problems.push(`no TYPE before ${metric}`)
    if (family !== current) {
      if (finished.has(family)) problems.push(`family ${family} split in two`)
      if (current) finished.add(current)
      current = family
    }
    sampled.add(family)
    const pairs: string[] = []
    for (let rest = labels; rest.length > 0; ) {
      const pair = label.exec(rest)
      if (!pair) {
        problems.push(`bad labels: ${line}`)
        break
      }
      pairs.push(`${pair[1]}=${pair[2]}`)
      rest = rest.slice(pair[0].length)
    }
    const id = `${metric}{${pairs.sort().join(',')}}`
    if (series.has(id)) problems.push(`series twice: ${id}`)
    series.add(id)
    if (types.get(family) === 'histogram' && metric.endsWith('_bucket') && !pairs.some((p) => p.startsWith('le='))) problems.push(`bucket without le: ${line}`)
  }
  for (const [family, type] of types) {
    if (type !== 'histogram' || !sampled.has(family)) continue
    const buckets = [...series].filter((id) => id.startsWith(`${family}_bucket{`))
    if (!buckets.some((id) => /le=\+Inf/.test(id))) problems.push(`histogram ${family} has no +Inf bucket`)
    if (![...series].some((id) => id.startsWith(`${family}_count{`))) problems.push(`histogram ${family} has no _count`)
  }
  return problems
}

async function metricsOf(server: FlagServer): Promise<{ type: string | null; text: string }> {
  const response = await fetch(`${server.url}/metrics`)
  expect(response.status).toBe(200)
  return { type: response.headers.get('content-type'), text: await response.text() }
}

/** Traffic every mode answers: good, bad and hostile requests, events, unknown routes. */
async function traffic(server: FlagServer): Promise<void> {
  const answers = await Promise.all([
    evaluate(server, { targetingKey: 'u1', plan: 'pro' }),
    evaluate(server, { plan: 'no key' }),
    post(`${server.url}/ofrep/v1/evaluate/flags`, '{"context":'),
    post(`${server.url}/ofrep/v1/evaluate/flags/greeting`, { context: { targetingKey: 'u1' } }),
    post(`${server.url}/holdfast/v1/events`, { events: [{ id: 'e-1', type: 'custom', name: 'n', time: 1 }] }),
    post(`${server.url}/holdfast/v1/events`, { events: [{ id: 'e-1', type: 'custom', name: 'n', time: 1 }] }),
    post(`${server.url}/holdfast/v1/events`, { nope: true }),
    fetch(`${server.url}/no/such/route"\\`),
    fetch(`${server.url}/holdfast/v1/status`),
    fetch(`${server.url}/readyz`),
  ])
  await Promise.all(answers.map((r) => r.arrayBuffer()))
}

describe('GET /metrics is Prometheus text format in every mode (§9 operations)', () => {
  it('--flags FILE, with a path a label must escape, after refused edits', async () => {
    const dir = await tempDir()
    const path = join(dir, 'fl"ags\\ one.json')
    await writeFile(path, JSON.stringify(DEMO_FLAGS))
    const server = await startServer({ flags: path, dataDir: join(dir, 'data') })
    await traffic(server)
    // An emptied file is refused (and counted), the previous definitions stay in service.
    await writeFile(path, JSON.stringify({ flags: {} }))
    await server.reloadFlags().catch(() => undefined)
    await traffic(server)
    const { type, text } = await metricsOf(server)
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(expositionProblems(text)).toEqual([])
    expect(text).toMatch(/^holdfast_http_requests_total\{/m)
  })

  it('--flags-url with a data dir, through an upstream that fails, shrinks and answers HTML', async () => {
    const many = { flags: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}`, DEMO_FLAGS.flags['kill-switch']])) }
    const upstream = await startUpstream({ document: many })
    const dir = await tempDir()
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, dataDir: join(dir, 'data'), pollIntervalSeconds: 0.1 })
    await traffic(server)
    for (const behaviour of [{ status: 503 }, { document: { flags: { f0: many.flags.f0 } } }, { status: 200, text: '<html/>', contentType: 'text/html' }] as const) {
      upstream.set(behaviour)
      const before = upstream.requests.length
      while (upstream.requests.length < before + 2) await new Promise((r) => setTimeout(r, 50))
      await traffic(server)
    }
    const { type, text } = await metricsOf(server)
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(expositionProblems(text)).toEqual([])
    expect(text).toMatch(/^holdfast_flag_reload_failures_total/m)
  })

  it('--upstream (proxy mode), with forwarded keys, refused answers and an outage', async () => {
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'a', value: String(context.targetingKey) }, { key: 'b', value: 1 }] }) })
    const dir = await tempDir()
    const server = await startServer({ flags: undefined, upstream: upstream.url, dataDir: join(dir, 'data') })
    await traffic(server)
    await Promise.all(['k1', 'k2', 'k"3\\'].map(async (key) => (await evaluate(server, { targetingKey: 'u2' }, { Authorization: `Bearer ${key}` })).arrayBuffer()))
    upstream.set({ status: 200, json: { flags: [] } })
    await traffic(server)
    upstream.set({ status: 500, text: 'down' })
    await traffic(server)
    const { type, text } = await metricsOf(server)
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(expositionProblems(text)).toEqual([])
    expect(text).toMatch(/^holdfast_relay_upstream_requests_total\{/m)
  })

  it('--redis, on the leader and a follower, before and after Redis goes down', async () => {
    const upstream = await startUpstream({ document: DEMO_FLAGS })
    const redis = await fleet.redisServer()
    const relays = await settled([await fleet.relay(redis, upstream), await fleet.relay(redis, upstream)])
    const check = async () => {
      for (const { server } of relays) {
        await traffic(server)
        const { type, text } = await metricsOf(server)
        expect(type).toMatch(/^text\/plain; version=0\.0\.4/)
        expect(expositionProblems(text)).toEqual([])
        expect(text).toMatch(/^holdfast_redis_role\{/m)
      }
    }
    await check()
    await redis.stop()
    await waitFor(async () => (await (await fetch(`${relays[1].server.url}/metrics`)).text()).includes('holdfast_redis_up 0'), 10_000)
    await check()
  })

  it('the checker itself refuses what a strict scraper refuses', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n'
    expect(expositionProblems(ok)).toEqual([])
    expect(expositionProblems(ok + '# TYPE a_total counter\n')).toContain('TYPE twice: a_total')
    expect(expositionProblems(ok + 'a_total{x="1"} 3\n')).toContain('series twice: a_total{x=1}')
    expect(expositionProblems(ok.replace('{x="1"}', '{x="a"b"}'))).toEqual([expect.stringMatching(/^bad labels/)])
    expect(expositionProblems('b 1\n')).toContain('no TYPE before b')
    expect(expositionProblems(`${ok}# TYPE c gauge\nc 1\na_total{x="2"} 1\n`)).toContain('family a_total split in two')
    expect(expositionProblems(ok.trimEnd())).toContain('the page does not end with a newline')
  })
})
