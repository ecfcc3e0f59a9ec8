// Proxy mode with a `--snapshot` Bootstrap (`holdfast-server snapshot --upstream URL --context JSON
// --header …`): one user's values, made with the CI's credentials. A relay that forwards each
// client's credentials (default `Authorization`) serves many keys, one tenant each: during an outage
// the snapshot may stand in only for the key it was made with, or tenant B's user would get values
// the upstream made for tenant A's key (CONTRACT §9: one key's values are never served to another).
// The snapshot records a salted hash of the headers it was made with (never the values); an older
// snapshot that records none is served only to requests that forward no credentials at all.
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createFlagServer, type FlagServerOptions } from '@holdfast/server'
import { recordCredentials } from '../../packages/server/src/flags/snapshotCredentials'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { startUpstream } from './relay-fakes'

/** One vendor, one project per key: tenant A's `plan` flag is "a-gold", tenant B's "b-basic". */
async function tenants() {
  let down = false
  const upstream = await startUpstream((request) => {
    if (down) return { status: 503, text: 'down' }
    const auth = request.headers.authorization
    if (auth === 'Bearer tenant-a') return { ofrep: () => ({ flags: [{ key: 'plan', value: 'a-gold', reason: 'STATIC' }] }) }
    if (auth === 'Bearer tenant-b') return { ofrep: () => ({ flags: [{ key: 'plan', value: 'b-basic', reason: 'STATIC' }] }) }
    if (auth === undefined) return { ofrep: () => ({ flags: [{ key: 'plan', value: 'public', reason: 'STATIC' }] }) }
    return { status: 401, json: { errorCode: 'UNAUTHORIZED' } }
  })
  return { upstream, goDown: () => (down = true) }
}

async function makeSnapshot(url: string, headers: string[]): Promise<string> {
  const out = join(await tempDir(), 'fallback.json')
  const code = await runSnapshotCli(['--upstream', url, '--context', '{"targetingKey":"anonymous"}', '--out', out, ...headers.flatMap((h) => ['--header', h])], { out: () => {}, err: () => {} })
  expect(code).toBe(0)
  return out
}

const relay = (url: string, snapshot: string, options: Partial<FlagServerOptions> = {}) =>
  startServer({ flags: undefined, upstream: url, snapshot, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })

async function plan(server: { url: string }, headers: Record<string, string>): Promise<{ status: number; plan?: unknown }> {
  const answer = await evaluate(server as never, { targetingKey: 'anonymous' }, headers)
  if (answer.status !== 200) return { status: answer.status }
  const body = (await answer.json()) as { flags: Array<{ key: string; value: unknown }> }
  return { status: 200, plan: body.flags.find((f) => f.key === 'plan')?.value }
}

describe('a values snapshot in proxy mode stands in only for the credentials it was made with', () => {
  it('tenant A’s snapshot is served to tenant A’s key during an outage, never to tenant B’s or to no key (503)', async () => {
    const { upstream, goDown } = await tenants()
    const snapshot = await makeSnapshot(upstream.url, ['Authorization: Bearer tenant-a'])
    // The file records which headers, and a salted hash of their values: never the key itself.
    const text = await readFile(snapshot, 'utf8')
    expect(text).not.toMatch(/tenant-a/)
    expect(JSON.parse(text).holdfastCredentials).toMatchObject({ headers: ['authorization'] })
    goDown()
    const server = await relay(upstream.url, snapshot)
    expect(await plan(server, { Authorization: 'Bearer tenant-a' })).toEqual({ status: 200, plan: 'a-gold' })
    // Before: 200 with plan "a-gold" for tenant B's user, values made with tenant A's key.
    expect(await plan(server, { Authorization: 'Bearer tenant-b' })).toEqual({ status: 503 })
    expect(await plan(server, {})).toEqual({ status: 503 })
    await server.close()
  })

  it('a snapshot made with no credentials stands in only for requests that forward none', async () => {
    const { upstream, goDown } = await tenants()
    const snapshot = await makeSnapshot(upstream.url, [])
    // A plain Bootstrap (CONTRACT §3), nothing added: it records no headers because none were used.
    expect(Object.keys(JSON.parse(await readFile(snapshot, 'utf8'))).sort()).toEqual(['context', 'etag', 'fetchedAt', 'flags'])
    goDown()
    const server = await relay(upstream.url, snapshot)
    expect(await plan(server, {})).toEqual({ status: 200, plan: 'public' })
    expect(await plan(server, { Authorization: 'Bearer tenant-b' })).toEqual({ status: 503 })
    await server.close()
  })

  it('an older snapshot that records no credentials is served only to requests that forward none, and the log says why', async () => {
    const { upstream, goDown } = await tenants()
    goDown()
    const old = join(await tempDir(), 'old.json')
    await writeFile(old, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'plan', value: 'a-gold', reason: 'STATIC' }], fetchedAt: Date.now() - 1000 }))
    const logger = recordingLogger()
    const server = await relay(upstream.url, old, { logger })
    // Before: 200 "a-gold" to any key. A relay whose clients send no credentials is one tenant: served.
    expect(await plan(server, { Authorization: 'Bearer tenant-b' })).toEqual({ status: 503 })
    expect(await plan(server, {})).toEqual({ status: 200, plan: 'a-gold' })
    expect(logger.lines.join('\n')).toMatch(/old\.json records no credentials .*only to requests that forward none/)
    await server.close()
  })

  it('a snapshot made with a header the relay does not forward is never served, and the log says so at start', async () => {
    const { upstream, goDown } = await tenants()
    const snapshot = await makeSnapshot(upstream.url, ['Authorization: Bearer tenant-a', 'X-Tenant: a'])
    goDown()
    const logger = recordingLogger()
    const server = await relay(upstream.url, snapshot, { logger })
    expect(await plan(server, { Authorization: 'Bearer tenant-a', 'X-Tenant': 'a' })).toEqual({ status: 503 })
    expect(logger.lines.join('\n')).toMatch(/made with x-tenant, which the relay does not forward/)
    // The status and the metric say it too (before: usable, servedTo "its-credentials", and 1).
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { snapshot: Record<string, unknown> }
    expect(status.snapshot).toEqual({ path: snapshot, usable: false, error: expect.stringMatching(/made with x-tenant, which the relay does not forward/) })
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^holdfast_relay_snapshot_usable 0$/m)
    await server.close()
    // Forwarded, it is served to exactly those two values.
    const both = await relay(upstream.url, snapshot, { forwardHeaders: ['Authorization', 'X-Tenant'] })
    expect(await plan(both, { Authorization: 'Bearer tenant-a', 'X-Tenant': 'a' })).toEqual({ status: 200, plan: 'a-gold' })
    expect(await plan(both, { Authorization: 'Bearer tenant-a', 'X-Tenant': 'b' })).toEqual({ status: 503 })
    expect(((await (await fetch(`${both.url}/holdfast/v1/status`)).json()) as { snapshot: Record<string, unknown> }).snapshot).toMatchObject({ usable: true, kind: 'values', servedTo: 'its-credentials' })
    await both.close()
  })
})

// A definitions snapshot (`snapshot --flags-url|--flags`) holds no values and records no
// credentials: in proxy mode it is evaluated for whatever context comes, whichever key the request
// forwards. One relay per tenant (or clients that send no key) is what it is for; a relay whose
// clients are several tenants of the upstream serves every tenant's users from one set of
// definitions during an outage. That stays (refusing it would break the single-tenant relay whose
// clients send a key), but the operator is told at start and in the status.
describe('a definitions snapshot in proxy mode is served to every tenant, and the relay says so', () => {
  async function definitionsSnapshot(): Promise<string> {
    const dir = await tempDir()
    const flags = join(dir, 'flags.json')
    await writeFile(flags, JSON.stringify({ flags: { plan: { state: 'ENABLED', variants: { gold: 'a-gold', basic: 'basic' }, defaultVariant: 'gold' } } }))
    const out = join(dir, 'snapshot.json')
    expect(await runSnapshotCli(['--flags', flags, '--out', out], { out: () => {}, err: () => {} })).toBe(0)
    return out
  }

  it('forwarding credentials: a warning at start and snapshot.servedTo "every-request" in the status, naming the headers; what is served is unchanged', async () => {
    const { upstream, goDown } = await tenants()
    const snapshot = await definitionsSnapshot()
    goDown()
    const logger = recordingLogger()
    const server = await relay(upstream.url, snapshot, { logger, forwardHeaders: ['Authorization', 'X-Tenant'] })
    // Before: nothing said it; tenant B's user got tenant A's definitions without a word.
    const warning = logger.lines.find((line) => line.includes(snapshot) && /every/.test(line))
    expect(warning).toMatch(/definitions snapshot .* is served in proxy mode to every request whatever credentials it forwards \(authorization, x-tenant\)/)
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { snapshot: Record<string, unknown> }
    expect(status.snapshot).toMatchObject({ path: snapshot, usable: true, kind: 'definitions', servedTo: 'every-request', forwardHeaders: ['authorization', 'x-tenant'] })
    // Served as before: a single-tenant relay whose clients send a key keeps its snapshot.
    expect(await plan(server, { Authorization: 'Bearer tenant-a' })).toEqual({ status: 200, plan: 'a-gold' })
    expect(await plan(server, { Authorization: 'Bearer tenant-b' })).toEqual({ status: 200, plan: 'a-gold' })
  })

  it('a values snapshot says whose it is instead; a relay that forwards no headers has nothing to warn of', async () => {
    const { upstream, goDown } = await tenants()
    const values = await makeSnapshot(upstream.url, ['Authorization: Bearer tenant-a'])
    const snapshot = await definitionsSnapshot()
    goDown()
    const logger = recordingLogger()
    const withValues = await relay(upstream.url, values, { logger })
    expect(((await (await fetch(`${withValues.url}/holdfast/v1/status`)).json()) as { snapshot: Record<string, unknown> }).snapshot).toMatchObject({ kind: 'values', servedTo: 'its-credentials' })
    const none = await relay(upstream.url, snapshot, { logger, forwardHeaders: [] })
    expect(((await (await fetch(`${none.url}/holdfast/v1/status`)).json()) as { snapshot: Record<string, unknown> }).snapshot).toMatchObject({ kind: 'definitions', servedTo: 'every-request' })
    expect(logger.lines.filter((line) => /to every request/.test(line))).toEqual([])
  })
})

// The published JSON Schema (bootstrap.schema.json) is what a CI step checks a snapshot against
// before shipping it. It took any strings as `holdfastCredentials.headers`, while the relay serves
// a record only to requests whose forwarded names (lower case, sorted, each once) are its names:
// `Authorization` or a name twice passed the check, and the relay then said at start that the
// snapshot could be served to nobody (or it silently never matched). Generated records whose
// hash is right for the headers the request forwards; their names in any case, order, twice, or one
// the relay cannot forward (`host`).
describe('the published schema of holdfastCredentials agrees with the relay', () => {
  const published = z.fromJSONSchema(JSON.parse(readFileSync(new URL('../../packages/server/schema/bootstrap.schema.json', import.meta.url), 'utf8')))
  const spelling = (name: string) => fc.constantFrom(name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1))
  const record = fc
    .uniqueArray(fc.constantFrom('authorization', 'x-tenant', 'x-b', 'host'), { minLength: 1, maxLength: 3 })
    .chain((names) =>
      fc.record({
        names: fc.constant(names),
        // Half the time the names as the command writes them (lower case, once) in any order: the
        // valid records, which the first arbitrary alone made 1 run in 40 at most (the relay's sort
        // could be taken out and the property still passed).
        listed: fc.oneof(
          fc.shuffledSubarray(names, { minLength: names.length, maxLength: names.length }),
          fc.tuple(...names.map(spelling)).chain((spelt) => fc.shuffledSubarray([...spelt, ...spelt], { minLength: spelt.length, maxLength: spelt.length + 1 })),
        ),
      }),
    )
    // Every name listed at least once (in some spelling): the others are not what is under test.
    .filter(({ names, listed }) => names.every((name) => listed.some((l) => l.toLowerCase() === name)))

  it('schema-valid ⇔ served to a request forwarding those headers, the upstream down', async () => {
    const upstream = await startUpstream({ status: 503, text: 'down' })
    await fc.assert(
      fc.asyncProperty(record, async ({ names, listed }) => {
        const values = Object.fromEntries(names.map((name) => [name, `v-${name}`]))
        const holdfastCredentials = { ...recordCredentials(values), headers: listed }
        const snapshot = join(await tempDir(), 'snap.json')
        const document = { context: { targetingKey: 'anonymous' }, flags: [{ key: 'a', value: true, reason: 'STATIC' }], fetchedAt: 1_700_000_000_000, holdfastCredentials }
        await writeFile(snapshot, JSON.stringify(document))
        const valid = published.safeParse(document).success
        const forwardHeaders = names.filter((name) => name !== 'host')
        let served = false
        const server = await createFlagServer({ flags: undefined, upstream: upstream.url, snapshot, forwardHeaders, upstreamTimeoutMs: 400, port: 0, logger: recordingLogger(), maxEventLoopDelayMs: 0 }).catch(() => undefined)
        if (server) {
          try {
            const answer = await evaluate(server, { targetingKey: 'anonymous' }, Object.fromEntries(forwardHeaders.map((name) => [name, values[name]!])))
            served = answer.status === 200
          } finally {
            await server.close()
          }
        }
        expect({ listed, served }).toEqual({ listed, served: valid })
      }),
      { numRuns: 40 },
    )
  }, 60_000)
})

// The snapshot command took `--header "X-Tenant: a" --header "x-tenant: b"` (the same header in
// two spellings, as a CI script that appends a header to a template's may): it sent both and wrote
// `holdfastCredentials.headers: ["x-tenant", "x-tenant"]`, a file its own published schema refuses
// and no relay serves (refused at start as "edited by hand?"). The same spelling twice kept the
// last value without a word. The command line is wrong: exit 2, nothing asked, nothing written.
describe('snapshot --header: one header given twice', () => {
  for (const twice of [['X-Tenant: a', 'x-tenant: b'], ['X-Tenant: a', 'X-Tenant: b']]) {
    it(`${twice.join(' and ')}: a usage error naming it, the source not asked, no file`, async () => {
      let asked = 0
      const upstream = await startUpstream(() => (asked++, { ofrep: () => ({ flags: [{ key: 'plan', value: 'x', reason: 'STATIC' }] }) }))
      const out = join(await tempDir(), 'fallback.json')
      const err: string[] = []
      const code = await runSnapshotCli(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out, ...twice.flatMap((h) => ['--header', h])], { out: () => {}, err: (line) => err.push(line) })
      expect({ code, asked, written: await readFile(out, 'utf8').catch(() => 'none') }).toEqual({ code: 2, asked: 0, written: 'none' })
      expect(err.join('\n')).toMatch(/--header x-tenant is given twice/i)
    })
  }
})

// Files older commands wrote whose record the schema refuses since 43e262f: `--header "If-Match: x"`
// was taken until 9d362c2 (recorded as "if-match"), `--header "X-Tenant: a" --header "x-tenant: b"`
// until the command refused it (recorded twice). Such a file can be served to nobody, which is said
// and is no refusal to start (upstreamStart.ts): the relay starts, not ready, 503 until the upstream
// answers. Read by the stricter schema as a record "that cannot be read (edited by hand?)", it went
// the way of a torn file instead: restarted during an upstream outage with nothing else to serve,
// the relay refused to start (createFlagServer rejected, the process exited: a crash loop).
describe('a values snapshot whose record no request can match, as an older command wrote it', () => {
  const records: Array<[string, Record<string, string>, RegExp]> = [
    ['made with --header If-Match (taken until 9d362c2)', { 'If-Match': 'x' }, /if-match/],
    ['made with one header in two spellings', { 'X-Tenant': 'a', 'x-tenant': 'b' }, /x-tenant/],
  ]
  for (const [name, headers, named] of records) {
    it(`${name}: the relay starts during an upstream outage, 503, and the status says why`, async () => {
      const upstream = await startUpstream({ status: 503, text: 'down' })
      const snapshot = join(await tempDir(), 'old.json')
      const document = { context: { targetingKey: 'anonymous' }, flags: [{ key: 'plan', value: 'a-gold', reason: 'STATIC' }], fetchedAt: 1_700_000_000_000, holdfastCredentials: recordCredentials(headers) }
      await writeFile(snapshot, JSON.stringify(document))
      const logger = recordingLogger()
      const started = await createFlagServer({ flags: undefined, upstream: upstream.url, snapshot, forwardHeaders: ['Authorization', 'X-Tenant'], upstreamTimeoutMs: 400, port: 0, logger, maxEventLoopDelayMs: 0 }).catch((error: Error) => error)
      expect(started instanceof Error ? started.message : 'started').toBe('started')
      if (started instanceof Error) return
      try {
        expect(await plan(started, { 'X-Tenant': 'a' })).toEqual({ status: 503 })
        const status = (await (await fetch(`${started.url}/holdfast/v1/status`)).json()) as { snapshot: Record<string, unknown> }
        expect(status.snapshot).toEqual({ path: snapshot, usable: false, error: expect.stringMatching(named) })
        expect(status.snapshot.error).toMatch(/served to nobody/)
      } finally {
        await started.close()
      }
    })
  }
})
