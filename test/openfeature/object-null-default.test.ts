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

  it('a boolean, string or number evaluation without a default (plain JS) gives TYPE_MISMATCH for a value of another type, never that value', async () => {
    // Before: getBooleanValue('plan') with no default handed the app the string 'pro', and
    // getNumberValue('limit', null) a boolean: the client reads a missing default as "any type".
    const fault = await createFaultServer(flags([
      { key: 'plan', value: 'pro' },
      { key: 'beta', value: true },
      { key: 'limit', value: 10 },
      { key: 'off', reason: 'DISABLED' },
    ]))
    try {
      const { client } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      const none = undefined as never
      const mismatch = (details: { value: unknown; errorCode?: string }) => expect(details).toMatchObject({ errorCode: ErrorCode.TYPE_MISMATCH })
      mismatch(client.getBooleanDetails('plan', none))
      mismatch(client.getBooleanDetails('limit', null as never))
      mismatch(client.getStringDetails('beta', none))
      mismatch(client.getNumberDetails('plan', null as never))
      expect(client.getBooleanDetails('plan', none).value).toBeUndefined()
      // A value of the asked type still passes, and a flag sent without a value is the caller's default.
      expect(client.getBooleanValue('beta', none)).toBe(true)
      expect(client.getStringValue('plan', null as never)).toBe('pro')
      expect(client.getNumberValue('limit', none)).toBe(10)
      expect(client.getBooleanDetails('off', null as never)).toMatchObject({ value: null, reason: 'DISABLED' })
    } finally {
      await fault.close()
    }
  })
})
