// Every bulk answer the OFREP 0.3.0 spec allows (generated from test/fixtures/ofrep/openapi.yaml by
// test/support/specArbitrary.ts), served by an upstream stub on 127.0.0.1, is taken by a relay
// (`createFlagServer({ upstream })`): served on to its client, each entry as the upstream said it,
// and not counted as an invalid upstream answer. And a single-flag request to the relay is answered
// from it: the entry as a spec-valid single-flag response (serverEvaluationSuccess) or 404/400.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bulkAnswers, loadOfrep, type BulkAnswer } from '../support/specArbitrary'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { post, startServer, tempDir } from './helpers'
import { startUpstream } from './relay-fakes'

const spec = loadOfrep()
// SPEC_RUNS=2000 to hunt longer than CI does.
const RUNS = { numRuns: Number(process.env.SPEC_RUNS ?? 200), endOnFailure: true }

async function status(url: string): Promise<{ refused: number; upstream: { state: string; lastError?: unknown } }> {
  return (await (await fetch(`${url}/holdfast/v1/status`)).json()) as never
}

/**
 * The entry the relay serves for `entry` (CONTRACT §4 as the relay merges, nothing held before):
 * a success with its reason and metadata too. (A failure's metadata is not passed on: pinned nowhere.)
 */
function served(entry: Record<string, any>): Record<string, unknown> {
  if (entry.errorCode !== undefined) return { key: entry.key, errorCode: entry.errorCode }
  const out: Record<string, unknown> = { key: entry.key, reason: entry.reason }
  if (entry.value !== undefined) out.value = entry.value
  if (entry.variant !== undefined) out.variant = entry.variant
  if (entry.metadata !== undefined) out.metadata = entry.metadata
  return out
}

describe('every spec-valid upstream bulk answer is taken by the relay (OFREP 0.3.0)', () => {
  it('served on entry by entry, never refused', async () => {
    let answer: BulkAnswer = { body: { flags: [] } }
    const upstream = await startUpstream(() => ({ status: 200, json: answer.body, headers: answer.etag === undefined ? {} : ({ ETag: answer.etag } as Record<string, string>) }))
    const relay = await startServer({ flags: undefined, upstream: upstream.url, liveUpdates: false })
    let user = 0
    // CONTRACT §9: an upstream document with zero flags is refused (an outage's `{flags: []}` must
    // never read as "every kill switch is off"), and one whose every entry is FLAG_NOT_FOUND holds
    // zero flags too (a context never seen gets 503, a held one keeps its values): deliberate, so
    // those are left to the relay's own tests (relay-not-found.test.ts, relay-guard.test.ts).
    await fc.assert(
      fc.asyncProperty(bulkAnswers(spec).filter((a) => a.body.flags.some((e) => e.errorCode !== 'FLAG_NOT_FOUND')), async (generated) => {
        answer = generated
        const before = await status(relay.url)
        const response = await post(`${relay.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: `user-${++user}` } })
        const text = await response.text()
        expect(response.status, `${text}\nupstream sent ${JSON.stringify(generated)}`).toBe(200)
        const body = JSON.parse(text) as { flags: Array<Record<string, unknown>> }
        const byKey = new Map(body.flags.map((e) => [e.key, e]))
        for (const entry of generated.body.flags) {
          // FLAG_NOT_FOUND is passed on (the client removes the flag) or left out: either way not served as a value.
          if (entry.errorCode === 'FLAG_NOT_FOUND' && !byKey.has(entry.key)) continue
          expect(byKey.get(entry.key), JSON.stringify(entry)).toMatchObject(served(entry))
        }
        // One flag from the same answer (the relay answers it from the bulk answer it holds for the
        // context): a success as the upstream said it, a per-flag failure 400, FLAG_NOT_FOUND 404.
        // Keys a path segment can carry: not empty, not a dot segment (`.`, `..`: a URL resolves them
        // away), no lone surrogate (no UTF-8).
        for (const entry of generated.body.flags.filter((e) => !['', '.', '..'].includes(e.key) && e.key.isWellFormed()).slice(0, 2)) {
          const one = await post(`${relay.url}/ofrep/v1/evaluate/flags/${encodeURIComponent(entry.key)}`, { context: { targetingKey: `user-${user}` } })
          const said = await one.text()
          const expected = entry.errorCode === 'FLAG_NOT_FOUND' ? 404 : entry.errorCode !== undefined ? 400 : 200
          expect(one.status, `${said}\nfor ${JSON.stringify(entry)}`).toBe(expected)
          expect(JSON.parse(said), JSON.stringify(entry)).toMatchObject(expected === 404 ? { key: entry.key, errorCode: 'FLAG_NOT_FOUND' } : served(entry))
        }
        const after = await status(relay.url)
        expect(after.refused, JSON.stringify(after)).toBe(before.refused)
        expect(after.upstream.state, JSON.stringify(after)).toBe('ok')
      }),
      RUNS,
    )
  })

  // `holdfast-server snapshot --upstream` reads the same answers into a Bootstrap for `fallback`.
  // CONTRACT §9: it refuses to write an empty result, and an answer of per-flag failures alone
  // leaves nothing to write, so those are its own tests' (snapshot-write.test.ts). Per-flag
  // failures beside values are refused unless --allow-partial (snapshot-partial.test.ts), given here.
  it('by holdfast-server snapshot --upstream too: written, each entry in it', async () => {
    let answer: BulkAnswer = { body: { flags: [] } }
    const upstream = await startUpstream(() => ({ status: 200, json: answer.body, headers: answer.etag === undefined ? {} : ({ ETag: answer.etag } as Record<string, string>) }))
    const dir = await tempDir()
    let run = 0
    await fc.assert(
      fc.asyncProperty(bulkAnswers(spec).filter((a) => a.body.flags.some((e) => e.errorCode === undefined)), async (generated) => {
        answer = generated
        const out = join(dir, `fallback-${++run}.json`)
        const said: string[] = []
        const code = await runSnapshotCli(['--upstream', upstream.url, '--context', '{"targetingKey":"u"}', '--out', out, '--allow-partial'], { out: (m) => said.push(m), err: (m) => said.push(m) })
        expect(code, `${said.join('\n')}\nupstream sent ${JSON.stringify(generated)}`).toBe(0)
        const written = JSON.parse(await readFile(out, 'utf8')) as { flags: Array<Record<string, unknown>> }
        const byKey = new Map(written.flags.map((e) => [e.key, e]))
        for (const entry of generated.body.flags) {
          // A per-flag failure carries no value for a fallback: left out, or kept as it came.
          if (entry.errorCode !== undefined && !byKey.has(entry.key)) continue
          expect(byKey.get(entry.key), JSON.stringify(entry)).toMatchObject(served(entry))
        }
      }),
      { ...RUNS, numRuns: Math.ceil(RUNS.numRuns / 4) },
    )
  })
})
