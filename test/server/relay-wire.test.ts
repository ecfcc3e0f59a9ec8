// The relay between two other OFREP implementations: whatever quirk the upstream has on the wire,
// what the relay answers its own clients (Holdfast, OpenFeature's OFREP providers) is OFREP.
import { describe, expect, it } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { evaluate, post, recordingLogger, startServer } from './helpers'
import { startUpstream, type FakeUpstream } from './relay-fakes'

async function relay(upstream: FakeUpstream): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger() })
}

async function answer(response: Response) {
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

describe('an upstream 400 whose body is not an OFREP error', () => {
  it('reaches the relay\'s clients as an OFREP error body (errorCode, errorDetails), on the bulk and the single-flag route', async () => {
    // A gateway or framework in front of the vendor answers its own 400 shapes.
    // `{"errorCode": "", "errorDetails": ""}`: a serializer without `omitempty` wrote no code.
    for (const json of [{ message: 'bad request' }, 'bad request', ['bad'], { errorCode: 42 }, null, { type: 'about:blank', title: 'Bad Request', status: 400 }, { errorCode: '', errorDetails: '' }, { errorCode: null }]) {
      const upstream = await startUpstream({ status: 400, json, contentType: 'application/problem+json' })
      const server = await relay(upstream)
      const bulk = await answer(await evaluate(server, { targetingKey: 'u' }))
      // Before: the gateway's body as it was ({"message":…}, "bad request", null…): no errorCode.
      expect(bulk.status, JSON.stringify(json)).toBe(400)
      expect(bulk.body, JSON.stringify(json)).toEqual({ errorCode: 'GENERAL', errorDetails: expect.stringContaining('answered 400') })
      const one = await answer(await post(`${server.url}/ofrep/v1/evaluate/flags/limit`, { context: { targetingKey: 'u' } }))
      expect(one.status, JSON.stringify(json)).toBe(400)
      expect(one.body, JSON.stringify(json)).toEqual({ key: 'limit', errorCode: 'GENERAL', errorDetails: expect.stringContaining('answered 400') })
    }
  })

  it('an OFREP error body is passed on as the upstream wrote it, with the key on the single-flag route', async () => {
    const upstream = await startUpstream({ status: 400, json: { errorCode: 'INVALID_CONTEXT', errorDetails: 'no email' } })
    const server = await relay(upstream)
    expect(await answer(await evaluate(server, { targetingKey: 'u' }))).toEqual({ status: 400, body: { errorCode: 'INVALID_CONTEXT', errorDetails: 'no email' } })
    // Before: without `key`, which OFREP's single-flag evaluationFailure requires.
    expect(await answer(await post(`${server.url}/ofrep/v1/evaluate/flags/limit`, { context: { targetingKey: 'u' } }))).toEqual({
      status: 400,
      body: { key: 'limit', errorCode: 'INVALID_CONTEXT', errorDetails: 'no email' },
    })
  })
})

// OFREP 0.3.0 (openapi.yaml, evaluationSuccess) requires `reason` in a success entry, with UNKNOWN
// among its values; CONTRACT §2 lets Holdfast's own client take an entry without one. The relay
// answers OFREP clients it did not write, so an upstream's entry without a reason goes on with
// UNKNOWN (the spec's word for it), everything else as the upstream wrote it. Pinned: found right.
describe('an upstream success entry without a reason', () => {
  it('goes on with reason UNKNOWN, its value, variant and metadata unchanged, on the bulk and the single-flag route', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'limit', value: 5, variant: 'five', metadata: { owner: 'ops' } }, { key: 'beta', value: true, reason: 'TARGETING_MATCH' }] }) })
    const server = await relay(upstream)
    const bulk = await answer(await evaluate(server, { targetingKey: 'u' }))
    expect(bulk.status).toBe(200)
    expect(bulk.body.flags).toEqual([
      { key: 'limit', value: 5, variant: 'five', reason: 'UNKNOWN', metadata: { owner: 'ops' } },
      { key: 'beta', value: true, reason: 'TARGETING_MATCH' },
    ])
    const one = await answer(await post(`${server.url}/ofrep/v1/evaluate/flags/limit`, { context: { targetingKey: 'u' } }))
    expect(one.body).toMatchObject({ key: 'limit', value: 5, variant: 'five', reason: 'UNKNOWN' })
  })
})
