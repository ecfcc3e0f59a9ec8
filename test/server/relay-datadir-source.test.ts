// A data dir holds what one source answered, for the credentials the relay sent there (CONTRACT §9:
// "the last good definitions", "the last good answer per context"). A relay restarted on the same
// data dir but pointed at another source (staging → production, another tenant's document), or
// sending other credentials there, must not serve what the old one answered: before, it served the
// old source's flags at start as `data-dir`, and for as long as the new source was down or refused
// its key. Redis keeps the fleets apart by a hash of the source and its credentials; the data dir
// now does the same.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FlagServerOptions } from '@holdfast/server'
import { evaluate, flagsByKey, recordingLogger, startServer, tempDir } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'

async function status(server: { url: string }): Promise<any> {
  return (await fetch(`${server.url}/holdfast/v1/status`)).json()
}

const byUrl = (upstream: FakeUpstream, dataDir: string, options: Partial<FlagServerOptions> = {}) =>
  startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, dataDir, pollIntervalSeconds: 3600, upstreamTimeoutMs: 500, logger: recordingLogger(), ...options })

describe('the data dir belongs to one source and its credentials', () => {
  it('--flags-url pointed at another URL does not serve the old URL’s definitions from the data dir', async () => {
    const dataDir = await tempDir()
    const staging = await startUpstream({ document: booleanFlags(3, 'on', 'staging-') })
    const first = await byUrl(staging, dataDir)
    expect(Object.keys(await flagsByKey(await evaluate(first, { targetingKey: 'u' })))).toEqual(['staging-0', 'staging-1', 'staging-2'])
    await first.close()

    // Re-pointed at production, which is down at the restart.
    const production = await startUpstream({ status: 503, text: 'down' })
    const second = await byUrl(production, dataDir)
    const answer = await evaluate(second, { targetingKey: 'u' })
    // Nothing of production's is held: 503 (CONTRACT §9), not staging's flags as production's.
    expect(answer.status).toBe(503)
    const seen = await status(second)
    expect(seen.ready).toBe(false)
    // Said, not silent: the generation skipped and why.
    expect(seen.dataDir.skipped[0]).toMatchObject({ reason: 'other-source' })
    expect(seen.dataDir.skippedBy).toMatchObject({ 'other-source': 1 })
    await second.close()

    // The same source as before still reads it back (the tag is stable across restarts).
    staging.set({ status: 503, text: 'down' })
    const third = await byUrl(staging, dataDir)
    const back = await evaluate(third, { targetingKey: 'u' })
    expect(back.status).toBe(200)
    const body = (await back.json()) as { flags: Array<{ key: string }>; metadata: { holdfast: { source: string } } }
    expect(body.flags.map((f) => f.key)).toEqual(['staging-0', 'staging-1', 'staging-2'])
    expect(body.metadata.holdfast.source).toBe('data-dir')
    await third.close()
  })

  it('--flags-url restarted with another key does not serve the old key’s definitions while the new one is refused', async () => {
    const dataDir = await tempDir()
    // One URL, a document per key (a vendor's per-environment SDK key).
    const upstream = await startUpstream((request) =>
      request.headers.authorization === 'Bearer tenant-a' ? { document: booleanFlags(2, 'on', 'tenant-a-') } : { status: 401, json: { error: 'unknown key' } },
    )
    const first = await byUrl(upstream, dataDir, { upstreamHeaders: { Authorization: 'Bearer tenant-a' } })
    expect((await evaluate(first, { targetingKey: 'u' })).status).toBe(200)
    await first.close()

    const second = await byUrl(upstream, dataDir, { upstreamHeaders: { Authorization: 'Bearer tenant-b' } })
    const answer = await evaluate(second, { targetingKey: 'u' })
    expect(answer.status).toBe(503)
    expect(await answer.text()).not.toMatch(/tenant-a-/)
    expect((await status(second)).upstream.state).toBe('unauthorized')
    await second.close()
  })

  it('--flags pointed at another file that is broken at the start does not serve the old file’s definitions', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const [a, b] = [join(dir, 'a.json'), join(dir, 'b.json')]
    await writeFile(a, JSON.stringify(booleanFlags(2, 'on', 'tenant-a-')))
    const first = await startServer({ flags: a, dataDir, logger: recordingLogger() })
    expect((await evaluate(first, { targetingKey: 'u' })).status).toBe(200)
    await first.close()
    await writeFile(b, '{ broken')
    // As with no data dir: the broken file stops the start. Before, a.json's flags were served as b.json's.
    await expect(startServer({ flags: b, dataDir, logger: recordingLogger() })).rejects.toThrow(/b\.json is invalid/)
  })

  it('--upstream pointed at another upstream does not serve the old one’s answers for the same context and key', async () => {
    const dataDir = await tempDir()
    const ofrep = (name: string) => ({ ofrep: (context: Record<string, unknown>) => ({ flags: [{ key: 'env', value: name, reason: 'STATIC' }, { key: 'user', value: String(context.targetingKey), reason: 'STATIC' }] }) })
    const staging = await startUpstream(ofrep('staging'))
    const relay = (upstream: FakeUpstream) => startServer({ flags: undefined, upstream: upstream.url, dataDir, upstreamTimeoutMs: 400, logger: recordingLogger() })
    const first = await relay(staging)
    const headers = { Authorization: 'Bearer k' }
    expect((await flagsByKey(await evaluate(first, { targetingKey: 'u' }, headers))).env.value).toBe('staging')
    await first.close()

    const production = await startUpstream({ status: 503, text: 'down' })
    const second = await relay(production)
    const answer = await evaluate(second, { targetingKey: 'u' }, headers)
    expect(answer.status).toBe(503)
    expect(await answer.text()).not.toMatch(/staging/)
    expect((await status(second)).dataDir.skipped[0]).toMatchObject({ reason: 'other-source' })
    await second.close()

    // The same upstream written another way (a trailing slash, the host in capitals) is the same source.
    staging.set({ status: 503, text: 'down' })
    const third = await startServer({ flags: undefined, upstream: `${staging.url.replace('http://', 'HTTP://')}/`, dataDir, upstreamTimeoutMs: 400, logger: recordingLogger() })
    expect((await flagsByKey(await evaluate(third, { targetingKey: 'u' }, headers))).env).toMatchObject({ value: 'staging' })
    await third.close()
  })
})
