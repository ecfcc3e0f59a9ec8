// `getObjectValue(key, null)`: OpenFeature's object evaluation with "no config" as the default, a
// common way to write an optional structure. Holdfast's client reads a `null` default as "any
// type"; through OpenFeature the caller asked for a structure, so a flag whose type changed to a
// boolean or a string (a misedited flag) must give the default with TYPE_MISMATCH, not `true`
// where the app reads `cfg.items`. And an exposure is logged only for what the caller was given.
import { ErrorCode } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags, type RecordedRequest } from '../support/faultServer'
import { connect } from './support'

describe('an object evaluation with a null default', () => {
  it('gives null with TYPE_MISMATCH for a held boolean, string or number; objects and arrays pass; only those are exposed', async () => {
    const fault = await createFaultServer((request: RecordedRequest) =>
      request.path.startsWith('/events')
        ? { status: 202, body: {} }
        : flags([
            { key: 'cfg-bool', value: true, variant: 'on' },
            { key: 'cfg-string', value: 'oops' },
            { key: 'cfg-number', value: 3 },
            { key: 'cfg-object', value: { items: [1] }, variant: 'obj' },
            { key: 'cfg-array', value: [1, 2] },
          ]),
    )
    try {
      const { client, provider } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory', events: { url: `${fault.url}/events` } })
      for (const key of ['cfg-bool', 'cfg-string', 'cfg-number']) {
        expect(client.getObjectDetails(key, null)).toMatchObject({ value: null, reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH })
      }
      expect(client.getObjectValue('cfg-object', null)).toEqual({ items: [1] })
      expect(client.getObjectValue('cfg-array', null)).toEqual([1, 2])
      expect(client.getObjectDetails('cfg-object', null).errorCode).toBeUndefined()

      await provider.client!.flush()
      const exposed = fault.requests
        .filter((r) => r.path.startsWith('/events'))
        .flatMap((r) => r.body.events)
        .filter((e: { type: string }) => e.type === 'exposure')
        .map((e: { flagKey: string }) => e.flagKey)
        .sort()
      expect(exposed).toEqual(['cfg-array', 'cfg-object'])
    } finally {
      await fault.close()
    }
  })
})
