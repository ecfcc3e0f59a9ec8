// CONTRACT §9 in proxy mode: at a start in an upstream outage, a context's answer read back from
// the data dir against a --snapshot made after it (f200fe9): what the user, the status and the
// metrics see, and what wins once the upstream has answered.
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import { tempDir } from './helpers'
import { startUpstream } from './relay-fakes'
import { bulk as bulkFor, proxyRelay, status, values } from './contract-fixtures'

const bulk = (server: FlagServer) => bulkFor(server, { targetingKey: 'anonymous' })
const limit = (value: number) => ({ ofrep: () => ({ flags: [{ key: 'limit', value, reason: 'STATIC' }] }) })
const bootstrap = (value: number, fetchedAt: number) => JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'limit', value, reason: 'STATIC' }], fetchedAt })
const definitions = (value: number, fetchedAt: number) =>
  JSON.stringify({ holdfastSnapshot: 1, kind: 'definitions', fetchedAt, version: 'build', definitions: { flags: { limit: { state: 'ENABLED', variants: { v: value }, defaultVariant: 'v' } } } })

/** A data dir holding the upstream's answer for `anonymous` (limit 1), the upstream then down. */
async function savedAnswer() {
  const dir = await tempDir()
  const dataDir = join(dir, 'data')
  const upstream = await startUpstream(limit(1))
  const first = await proxyRelay(upstream, { dataDir })
  const answered = await bulk(first)
  await first.close()
  upstream.set({ status: 503, text: 'down' })
  return { dir, dataDir, upstream, snapshot: join(dir, 'fallback.json'), fetchedAt: answered.body.metadata.holdfast.fetchedAt as number }
}

describe('§9 persistence in proxy mode: a context read back from the data dir against the --snapshot, at a restart in an upstream outage', () => {
  for (const [kind, snapshotText] of [['a values snapshot (Bootstrap)', bootstrap], ['a definitions snapshot', definitions]] as const) {
    it(`${kind} made after the data dir's answer is served, not the older answer, and the status names it (source snapshot, its fetchedAt)`, async () => {
      const { dataDir, upstream, snapshot, fetchedAt } = await savedAnswer()
      // Built after the answer was saved (a deploy over an old volume), dated no later than now.
      await new Promise((r) => setTimeout(r, 10))
      const takenAt = Date.now()
      expect(takenAt).toBeGreaterThan(fetchedAt)
      await writeFile(snapshot, snapshotText(7, takenAt))
      const server = await proxyRelay(upstream, { dataDir, snapshot })
      const answer = await bulk(server)
      expect(answer.status).toBe(200)
      expect(values(answer.body)).toEqual({ limit: 7 })
      expect(answer.body.metadata.holdfast).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
      // Before (c20ed4a), the status said data-dir and the saved answer's older time.
      const now = await status(server)
      expect({ source: now.source, fetchedAt: now.fetchedAt, stale: now.stale }).toEqual({ source: 'snapshot', fetchedAt: takenAt, stale: true })
    })

    it(`${kind} made before the data dir's answer loses to it`, async () => {
      const { dataDir, upstream, snapshot, fetchedAt } = await savedAnswer()
      await writeFile(snapshot, snapshotText(7, fetchedAt - 1000))
      const server = await proxyRelay(upstream, { dataDir, snapshot })
      const answer = await bulk(server)
      expect(values(answer.body)).toEqual({ limit: 1 })
      expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt, stale: true })
    })
  }

  it('once the upstream has answered the context, its answer is served through the next failure, not the snapshot', async () => {
    const { dataDir, upstream, snapshot, fetchedAt } = await savedAnswer()
    await new Promise((r) => setTimeout(r, 10))
    await writeFile(snapshot, definitions(7, Date.now()))
    const server = await proxyRelay(upstream, { dataDir, snapshot })
    expect(values((await bulk(server)).body)).toEqual({ limit: 7 })
    upstream.set(limit(9))
    // (Once the breaker the outage opened lets a request through: its first probe is within 1.2 s.)
    let fresh = await bulk(server)
    await vi.waitFor(async () => expect(values((fresh = await bulk(server)).body)).toEqual({ limit: 9 }), { timeout: 5000, interval: 100 })
    upstream.set({ status: 500, text: 'down again' })
    const after = await bulk(server)
    expect(values(after.body)).toEqual({ limit: 9 })
    expect(after.body.metadata.holdfast).toMatchObject({ source: 'upstream', fetchedAt: fresh.body.metadata.holdfast.fetchedAt, stale: true })
  })

  it('a snapshot dated in the future (a CI clock ahead) whose file was written before the data dir\'s answer loses to it', async () => {
    const { dataDir, upstream, snapshot, fetchedAt } = await savedAnswer()
    await writeFile(snapshot, definitions(7, Date.now() + 365 * 86_400_000))
    const written = new Date(fetchedAt - 60_000)
    await utimes(snapshot, written, written)
    const server = await proxyRelay(upstream, { dataDir, snapshot })
    const answer = await bulk(server)
    expect(values(answer.body)).toEqual({ limit: 1 })
    expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt, stale: true })
  })

  it('a snapshot dated the same moment as the data dir\'s answer (a tie) loses to it', async () => {
    const { dataDir, upstream, snapshot, fetchedAt } = await savedAnswer()
    await writeFile(snapshot, definitions(7, fetchedAt))
    const server = await proxyRelay(upstream, { dataDir, snapshot })
    const answer = await bulk(server)
    expect(values(answer.body)).toEqual({ limit: 1 })
    expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt, stale: true })
    expect((await status(server)).source).toBe('data-dir')
  })

  it('with --on-upstream-unauthorized keep, credentials the upstream refuses (401) keep their saved answer: the snapshot stands in for an upstream that is down, not one that refuses them', async () => {
    const { dataDir, upstream, snapshot, fetchedAt } = await savedAnswer()
    await new Promise((r) => setTimeout(r, 10))
    await writeFile(snapshot, definitions(7, Date.now()))
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    const server = await proxyRelay(upstream, { dataDir, snapshot })
    const answer = await bulk(server)
    expect(values(answer.body)).toEqual({ limit: 1 })
    expect(answer.body.metadata.holdfast).toEqual({ source: 'data-dir', fetchedAt, stale: true })
  })
})

describe('--on-upstream-unauthorized clear: a snapshot dated the very moment of the drop', () => {
  it('is not served to the context dropped (503): only a snapshot taken after the drop may be', async () => {
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const snapshot = join(dir, 'fallback.json')
    const upstream = await startUpstream(limit(1))
    const start = (options: Partial<FlagServerOptions> = {}) => proxyRelay(upstream, { dataDir, onUpstreamUnauthorized: 'clear', ...options })
    const first = await start()
    expect((await bulk(first)).status).toBe(200)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await bulk(first)).status).toBe(503)
    await first.close()
    // When the data dir says the context was dropped.
    let droppedAt: number | undefined
    for (const name of await readdir(dataDir)) {
      const cleared = (await readFile(join(dataDir, name), 'utf8')).match(/"cleared":\[\{"key":"[^"]+","at":(\d+)\}\]/)
      if (cleared) droppedAt = Math.max(droppedAt ?? 0, Number(cleared[1]))
    }
    expect(droppedAt).toBeDefined()
    await writeFile(snapshot, bootstrap(7, droppedAt!))
    upstream.set({ status: 503, text: 'down' })
    const tie = await start({ snapshot })
    expect((await bulk(tie)).status).toBe(503)
    await tie.close()
    await writeFile(snapshot, bootstrap(7, droppedAt! + 1))
    const after = await start({ snapshot })
    expect(values((await bulk(after)).body)).toEqual({ limit: 7 })
  })
})
