// The relay options of CONTRACT §9, spelled as an operator types them, run as a real
// holdfast-server process: each one must change what the process does, not only parse.
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { serverProcess } from './events-process'
import { post, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

interface Status {
  ready: boolean
  source: string
  version: string | null
  fetchedAt?: number
  upstream: { state: string; lastSuccessAt?: number; lastError?: unknown }
  refused: number
  refusedBy?: Record<string, number>
  flags?: number
}

const statusOf = async (url: string) => (await (await fetch(`${url}/holdfast/v1/status`)).json()) as Status
const bulk = async (url: string, context: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const response = await post(`${url}/ofrep/v1/evaluate/flags`, { context }, headers)
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as { flags: Array<{ key: string; value?: unknown }>; metadata?: { holdfast?: { source: string; stale: boolean } } } }
}

describe('holdfast-server --flags-url with every relay option, as a process', () => {
  it('--snapshot, --data-dir, --poll-interval, --max-shrink, --admin-key and --on-upstream-unauthorized each do what they say', async () => {
    const dir = await tempDir()
    const snapshotFile = join(dir, 'flags.snapshot.json')
    const upstream = await startUpstream({ document: booleanFlags(10, 'off') })
    const lines: string[] = []
    expect(await runSnapshotCli(['--flags-url', `${upstream.url}/flags.json`, '--out', snapshotFile], { out: (l) => lines.push(l), err: (l) => lines.push(l) })).toBe(0)
    upstream.set({ status: 503, text: 'down' })

    const server = serverProcess([
      '--flags-url', `${upstream.url}/flags.json`, '--snapshot', snapshotFile, '--data-dir', join(dir, 'data'),
      '--poll-interval', '0.1', '--max-shrink', '20', '--admin-key', 'admin-secret', '--on-upstream-unauthorized', 'clear',
      '--port', '0', '--max-event-loop-delay', '0',
    ])
    const url = await server.url()
    // --snapshot: the upstream is down and the data dir empty, so the snapshot is served, stale.
    const fromSnapshot = await bulk(url, { targetingKey: 'u' })
    expect(fromSnapshot.status).toBe(200)
    expect(fromSnapshot.body.flags).toHaveLength(10)
    expect(fromSnapshot.body.metadata?.holdfast).toMatchObject({ source: 'snapshot', stale: true })
    expect(await statusOf(url)).toMatchObject({ ready: true, source: 'snapshot', upstream: { state: 'failing' } })

    // --poll-interval 0.1: the upstream's return is picked up without any request asking for it.
    upstream.set({ document: booleanFlags(10) })
    await waitFor(async () => (await statusOf(url)).source === 'upstream', 10_000)
    const fresh = await statusOf(url)
    expect(fresh).toMatchObject({ ready: true, upstream: { state: 'ok' } })
    const refusedBefore = fresh.refused
    expect(typeof fresh.version).toBe('string')
    expect(fresh.fetchedAt).toBeGreaterThan(0)

    // --max-shrink 20: dropping 3 of 10 (30 %) is refused; the default 50 would have taken it.
    upstream.set({ document: booleanFlags(7) })
    await waitFor(async () => ((await statusOf(url)).refusedBy?.shrink ?? 0) > 0, 10_000)
    expect((await statusOf(url)).refused).toBeGreaterThan(refusedBefore)
    expect((await bulk(url, { targetingKey: 'u' })).body.flags).toHaveLength(10)

    // --admin-key: refresh needs it as a Bearer token, and names the version and the changed keys.
    expect((await post(`${url}/holdfast/v1/refresh`, '')).status).toBe(401)
    expect((await post(`${url}/holdfast/v1/refresh`, '', { Authorization: 'Bearer wrong' })).status).toBe(401)
    upstream.set({ document: { flags: { ...booleanFlags(10).flags, extra: { state: 'ENABLED', variants: { on: true }, defaultVariant: 'on' } } } })
    const refreshed = await post(`${url}/holdfast/v1/refresh`, '', { Authorization: 'Bearer admin-secret' })
    const refreshBody = (await refreshed.json()) as { version: string; changed: string[] }
    expect(refreshed.status, JSON.stringify(refreshBody)).toBe(200)
    expect(refreshBody.changed).toEqual(['extra'])
    expect(refreshBody.version).toBe((await statusOf(url)).version)

    // --on-upstream-unauthorized clear: a 401 drops what is held; OFREP gets 503 + Retry-After, never a 401.
    upstream.set({ status: 401, text: 'revoked' })
    await waitFor(async () => (await bulk(url, { targetingKey: 'u' })).status === 503, 10_000)
    const cleared = await bulk(url, { targetingKey: 'u' })
    expect(cleared.retryAfter).toMatch(/^\d+$/)
    expect(await statusOf(url)).toMatchObject({ ready: false, upstream: { state: 'unauthorized' } })
    expect((await fetch(`${url}/readyz`)).status).toBe(503)
    await server.kill()
  }, 60_000)
})

describe('holdfast-server --upstream with its options, as a process', () => {
  it('--forward-header replaces the default Authorization, keys the cache, and --data-dir serves after a restart', async () => {
    const dir = await tempDir()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'who', value: String(context.targetingKey) }] }) })
    const args = ['--upstream', upstream.url, '--forward-header', 'X-Tenant', '--data-dir', join(dir, 'data'), '--port', '0', '--max-event-loop-delay', '0']
    const first = serverProcess(args)
    const url = await first.url()
    const answered = await bulk(url, { targetingKey: 'alice' }, { 'X-Tenant': 'acme', Authorization: 'Bearer browser-token' })
    expect(answered.status).toBe(200)
    expect(answered.body.flags).toMatchObject([{ key: 'who', value: 'alice' }])
    const asked = upstream.requests.filter((r) => r.method === 'POST' && r.body.includes('alice'))
    expect(asked.at(-1)!.headers['x-tenant']).toBe('acme')
    // Only the named headers go upstream: naming X-Tenant replaces the default Authorization.
    expect(asked.at(-1)!.headers.authorization).toBeUndefined()
    // The data dir is written behind the answer: wait for its generation, then restart with the upstream down.
    await waitFor(async () => (await readdir(join(dir, 'data')).catch(() => [])).some((f) => f.startsWith('gen-')), 10_000)
    first.child.kill('SIGTERM')
    await first.exited
    upstream.set({ status: 503, text: 'down' })
    const second = serverProcess(args)
    const again = await second.url()
    const held = await bulk(again, { targetingKey: 'alice' }, { 'X-Tenant': 'acme' })
    expect(held.status).toBe(200)
    expect(held.body.flags).toMatchObject([{ key: 'who', value: 'alice' }])
    expect(held.body.metadata?.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    // Another tenant's header is another cache entry: never served alice's acme answer.
    const other = await bulk(again, { targetingKey: 'alice' }, { 'X-Tenant': 'globex' })
    expect(other.status).toBe(503)
    expect(other.retryAfter).toMatch(/^\d+$/)
    await second.kill()
  }, 60_000)
})
