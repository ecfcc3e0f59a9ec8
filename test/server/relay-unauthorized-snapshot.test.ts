// Proxy mode with a `--snapshot` Bootstrap: the snapshot stands in for the upstream while it is
// down or slow, for a context never seen that is the Bootstrap's own user (its targetingKey). It was made with the snapshot maker's credentials, so it
// must not stand in for credentials the upstream itself refuses: a revoked or made-up key would get
// flag values (200) where the relay, without a snapshot, answers 503, and
// `--on-upstream-unauthorized clear` promises "drops what it held (503 until the upstream answers
// again)".
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FlagServerOptions } from '@holdfast/server'
import { recordCredentials } from '../../packages/server/src/flags/snapshotCredentials'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { startUpstream, type Behaviour } from './relay-fakes'

const accepted: Behaviour = { ofrep: () => ({ flags: [{ key: 'a', value: false, reason: 'STATIC' }] }) }
const refused: Behaviour = { status: 401, json: { errorCode: 'UNAUTHORIZED' } }

// `madeWith`: the key the snapshot was made with, so that only the rule under test can say 503 (a
// snapshot stands in only for the credentials it was made with: relay-snapshot-credentials.test.ts).
async function relay(upstream: { url: string }, madeWith: string, options: Partial<FlagServerOptions> = {}) {
  const dir = await tempDir()
  const snapshot = join(dir, 'snap.json')
  const holdfastCredentials = recordCredentials({ Authorization: madeWith })
  await writeFile(snapshot, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'a', value: true, reason: 'STATIC' }], fetchedAt: Date.now() - 1000, holdfastCredentials }))
  return startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, snapshot, logger: recordingLogger(), ...options })
}

describe('proxy mode, --snapshot, and credentials the upstream refuses', () => {
  it('a key the upstream refuses while it accepts others gets 503, not the snapshot\'s values', async () => {
    const upstream = await startUpstream((request) => (request.headers.authorization === 'Bearer good' ? accepted : refused))
    const server = await relay(upstream, 'Bearer made-up')
    expect((await evaluate(server, { targetingKey: 'u' }, { Authorization: 'Bearer good' })).status).toBe(200)
    // The snapshot's own user, so only the credentials rule can say 503.
    const made = await evaluate(server, { targetingKey: 'anonymous' }, { Authorization: 'Bearer made-up' })
    // Before: 200 with flag `a` from the snapshot.
    expect(made.status).toBe(503)
    expect(made.headers.get('retry-after')).toBeTruthy()
  })

  it('--on-upstream-unauthorized clear: a revoked key\'s values go and nothing stands in for them (503)', async () => {
    let revoked = false
    const upstream = await startUpstream(() => (revoked ? refused : accepted))
    const server = await relay(upstream, 'Bearer k', { onUpstreamUnauthorized: 'clear' })
    const first = await evaluate(server, { targetingKey: 'anonymous' }, { Authorization: 'Bearer k' })
    expect(((await first.json()) as any).flags).toEqual([{ key: 'a', value: false, reason: 'STATIC' }])
    revoked = true
    const cleared = await evaluate(server, { targetingKey: 'anonymous' }, { Authorization: 'Bearer k' })
    // Before: 200, `a: true` from the snapshot.
    expect(cleared.status).toBe(503)
  })

  it('keep (default), every key refused (the relay\'s own access revoked): the snapshot still stands in for its own user, never seen', async () => {
    const upstream = await startUpstream(refused)
    const server = await relay(upstream, 'Bearer any')
    const answer = await evaluate(server, { targetingKey: 'anonymous' }, { Authorization: 'Bearer any' })
    expect(answer.status).toBe(200)
    expect(((await answer.json()) as any).metadata.holdfast).toMatchObject({ source: 'snapshot', stale: true })
  })
})
