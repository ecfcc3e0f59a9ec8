// The single-flag route `POST /ofrep/v1/evaluate/flags/{key}` is for server-side OFREP providers.
// Through an upstream outage the relay answers it from what it holds, as the bulk route does; the
// bulk answer says so in `metadata.holdfast.stale` (CONTRACT §9), but OFREP's single-flag answer
// has no flag-set metadata, and its flag `metadata` takes strings, numbers and booleans only (an
// object there is dropped by the OFREP providers: `toFlagMetadata` in @openfeature/ofrep-core). So
// a stale answer says it the OpenFeature way, reason STALE, with `holdfastStale`, `holdfastSource`
// and `holdfastFetchedAt` in the flag metadata, which reach `flagMetadata` in any OFREP provider.
import { toResolutionDetails } from '@openfeature/ofrep-core'
import { describe, expect, it } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

async function one(server: FlagServer, key: string, headers: Record<string, string> = {}) {
  const response = await post(`${server.url}/ofrep/v1/evaluate/flags/${key}`, { context: { targetingKey: 'ann' } }, headers)
  return { status: response.status, body: (await response.json()) as Record<string, any> }
}

describe('the single-flag route says when its answer is stale', () => {
  it('proxy mode: a held answer served through an outage is reason STALE with holdfastStale in its metadata; a fresh one is as the upstream wrote it', async () => {
    let down = false
    const upstream = await startUpstream(() => (down ? { status: 503, text: 'down' } : { ofrep: () => ({ flags: [{ key: 'checkout', value: 'v2', reason: 'TARGETING_MATCH', variant: 'new', metadata: { team: 'pay' } }] }) }))
    const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, logger: recordingLogger() })
    const fresh = await one(server, 'checkout', { Authorization: 'Bearer k' })
    expect(fresh).toEqual({ status: 200, body: { key: 'checkout', value: 'v2', reason: 'TARGETING_MATCH', variant: 'new', metadata: { team: 'pay' } } })
    down = true
    const stale = await one(server, 'checkout', { Authorization: 'Bearer k' })
    // Before: the same body as when fresh, nothing saying the upstream was down.
    expect(stale.status).toBe(200)
    // Why the upstream chose the value is kept beside it, as holdfastReason: STALE alone lost it.
    expect(stale.body).toEqual({
      key: 'checkout',
      value: 'v2',
      reason: 'STALE',
      variant: 'new',
      metadata: { team: 'pay', holdfastStale: true, holdfastSource: 'upstream', holdfastFetchedAt: expect.any(Number), holdfastReason: 'TARGETING_MATCH' },
    })
    // What an OpenFeature OFREP provider makes of it.
    expect(toResolutionDetails(stale.body as never, 'v1')).toMatchObject({ value: 'v2', reason: 'STALE', flagMetadata: { team: 'pay', holdfastStale: true, holdfastSource: 'upstream', holdfastReason: 'TARGETING_MATCH' } })
    await server.close()
  })

  it('--flags-url: definitions served through an outage (here from the data dir after a restart) say so too', async () => {
    const dataDir = await tempDir()
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const options = { flags: undefined, flagsUrl: `${upstream.url}/flags.json`, dataDir, pollIntervalSeconds: 3600, upstreamTimeoutMs: 400, logger: recordingLogger() }
    const first = await startServer(options)
    expect((await one(first, 'f0')).body).toMatchObject({ key: 'f0', value: true, reason: 'STATIC' })
    expect((await one(first, 'f0')).body.metadata?.holdfastStale).toBeUndefined()
    await first.close()
    upstream.set({ status: 503, text: 'down' })
    const second = await startServer(options)
    const stale = await one(second, 'f0')
    expect(stale.status).toBe(200)
    expect(stale.body).toMatchObject({ key: 'f0', value: true, reason: 'STALE', metadata: { holdfastStale: true, holdfastSource: 'data-dir', holdfastFetchedAt: expect.any(Number), holdfastReason: 'STATIC' } })
    await second.close()
  })

  it('proxy mode: a value kept through a per-flag error (already reason STALE in the bulk answer) served through an outage has no holdfastReason, not holdfastReason STALE', async () => {
    let phase: 'ok' | 'flag-error' | 'down' = 'ok'
    const upstream = await startUpstream(() =>
      phase === 'down'
        ? { status: 503, text: 'down' }
        : {
            ofrep: () => ({
              flags: [
                phase === 'ok' ? { key: 'checkout', value: 'v2', reason: 'TARGETING_MATCH', variant: 'new' } : { key: 'checkout', errorCode: 'GENERAL', errorDetails: 'rule broke' },
                { key: 'other', value: true, reason: 'STATIC' },
              ],
            }),
          },
    )
    const server = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 400, logger: recordingLogger() })
    expect((await one(server, 'checkout')).body).toMatchObject({ value: 'v2', reason: 'TARGETING_MATCH' })
    // The upstream answers, but not for this flag: its value is kept (CONTRACT §4), and the bulk
    // answer, whose entries the single-flag route picks from, says STALE in place of the reason.
    phase = 'flag-error'
    expect(await one(server, 'checkout')).toMatchObject({ status: 200, body: { value: 'v2', reason: 'STALE', metadata: { errorCode: 'GENERAL' } } })
    phase = 'down'
    const stale = await one(server, 'checkout')
    expect(stale).toMatchObject({ status: 200, body: { value: 'v2', reason: 'STALE', metadata: { holdfastStale: true, holdfastSource: 'upstream', errorCode: 'GENERAL' } } })
    // Before: holdfastReason "STALE", the reason STALE stood in for being STALE; a provider that
    // acts on holdfastReason (DEFAULT: the caller's fallback is as good) met a value it never names.
    expect(stale.body.metadata).not.toHaveProperty('holdfastReason')
    // The other flag, chosen STATIC, keeps its reason beside STALE as before.
    expect((await one(server, 'other')).body).toMatchObject({ reason: 'STALE', metadata: { holdfastReason: 'STATIC' } })
    await server.close()
  })

  it('--flags-url: a targeted value served while the upstream is down keeps why it was chosen (holdfastReason), for the matched user and the default alike', async () => {
    const plan = {
      flags: {
        plan: { state: 'ENABLED', variants: { basic: 'basic', pro: 'pro' }, defaultVariant: 'basic', targeting: { if: [{ '==': [{ var: 'targetingKey' }, 'ann'] }, 'pro', null] } },
      },
    }
    const upstream = await startUpstream({ document: plan })
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 0.1, upstreamTimeoutMs: 400, logger: recordingLogger() })
    const ask = async (targetingKey: string) => {
      const response = await post(`${server.url}/ofrep/v1/evaluate/flags/plan`, { context: { targetingKey } })
      return { status: response.status, body: (await response.json()) as Record<string, any> }
    }
    expect((await ask('ann')).body).toMatchObject({ value: 'pro', reason: 'TARGETING_MATCH' })
    upstream.set({ status: 503, text: 'down' })
    await waitFor(async () => (await ask('ann')).body.reason === 'STALE', 10_000)
    expect(await ask('ann')).toMatchObject({ status: 200, body: { value: 'pro', reason: 'STALE', metadata: { holdfastStale: true, holdfastSource: 'upstream', holdfastReason: 'TARGETING_MATCH' } } })
    expect((await ask('bob')).body).toMatchObject({ value: 'basic', reason: 'STALE', metadata: { holdfastStale: true, holdfastReason: 'DEFAULT' } })
    await server.close()
  })
})
