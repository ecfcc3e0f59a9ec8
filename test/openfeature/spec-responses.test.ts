// Every spec-valid OFREP 0.3.0 bulk answer (generated from test/fixtures/ofrep/openapi.yaml by
// test/support/specArbitrary.ts) served from a real server on 127.0.0.1 is taken by
// HoldfastWebProvider: the provider becomes ready, and each success entry's value resolves through
// the official OpenFeature web SDK with no error code, its variant, reason and metadata as sent.
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { createFaultServer, type FaultServer } from '../support/faultServer'
import { bulkAnswers, loadOfrep } from '../support/specArbitrary'
import { connect } from './support'

const spec = loadOfrep()
// SPEC_RUNS=2000 to hunt longer than CI does.
const RUNS = { numRuns: Number(process.env.SPEC_RUNS ?? 60), endOnFailure: true }

let server: FaultServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

describe('every spec-valid bulk answer is taken by the OpenFeature provider (OFREP 0.3.0)', () => {
  it('ready, and each success value resolved as sent', async () => {
    server = await createFaultServer()
    await fc.assert(
      fc.asyncProperty(bulkAnswers(spec), async (answer) => {
        const headers: Record<string, string> = answer.etag === undefined ? {} : { ETag: answer.etag }
        server!.always({ status: 200, body: answer.body, headers })
        const { client, events } = await connect(server!.url, { targetingKey: 'spec-user' }, { storage: 'memory', liveUpdates: false })
        expect(events, JSON.stringify(answer.body)).toContain('PROVIDER_READY')
        for (const entry of answer.body.flags) {
          if (entry.errorCode !== undefined || entry.value === undefined) continue
          const v = entry.value
          const details =
            typeof v === 'boolean'
              ? client.getBooleanDetails(entry.key, !v)
              : typeof v === 'number'
                ? client.getNumberDetails(entry.key, 0)
                : typeof v === 'string'
                  ? client.getStringDetails(entry.key, `not ${v}`)
                  : client.getObjectDetails(entry.key, {})
          expect(details.errorCode, JSON.stringify(entry)).toBeUndefined()
          expect(details.value, JSON.stringify(entry)).toEqual(v)
          // The rest of the entry as sent: `""` is no variant and no reason (resolution.ts).
          expect(details.variant, JSON.stringify(entry)).toBe(entry.variant || undefined)
          expect(details.reason, JSON.stringify(entry)).toBe(entry.reason || 'UNKNOWN')
          // The server's metadata, beside Holdfast's own source, stale and updatedAt (which win a clash).
          const own = new Set(['source', 'stale', 'updatedAt', 'errorCode'])
          const sent = Object.fromEntries(Object.entries((entry.metadata ?? {}) as Record<string, unknown>).filter(([name]) => !own.has(name)))
          expect(details.flagMetadata, JSON.stringify(entry)).toMatchObject({ ...sent, source: 'network', stale: false })
        }
      }),
      RUNS,
    )
  })
})
