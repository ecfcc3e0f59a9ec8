// A value Holdfast keeps through a server's per-flag error (CONTRACT §4: kept, stale, with the
// entry's errorCode) is served through OpenFeature as core's getDetails serves it, whatever the code.
import { ErrorCode } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags } from '../support/faultServer'
import { connect } from './support'

describe('values kept through a per-flag error', () => {
  it("a server's TYPE_MISMATCH for a held flag keeps its value (STALE, the code in flagMetadata); the caller's own mismatch is still the default", async () => {
    const fault = await createFaultServer(flags([{ key: 'limit', value: 5, variant: 'five', reason: 'STATIC' }, { key: 'name', value: 'ann' }]))
    try {
      const { client, provider } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      expect(client.getNumberValue('limit', 0)).toBe(5)
      // The server's rule for `limit` now returns another type: it answers TYPE_MISMATCH for it.
      fault.always(flags([{ key: 'limit', errorCode: 'TYPE_MISMATCH', errorDetails: 'rule returned a string' }, { key: 'name', value: 'ann' }]))
      await provider.client!.refresh()
      // Core serves the kept value, stale, with the server's code.
      expect(provider.client!.getDetails('limit', 0)).toMatchObject({ value: 5, stale: true, errorCode: 'TYPE_MISMATCH' })
      const limit = client.getNumberDetails('limit', 0)
      expect(limit).toMatchObject({ value: 5, variant: 'five', reason: 'STALE' })
      expect(limit.errorCode).toBeUndefined()
      expect(limit.flagMetadata).toMatchObject({ stale: true, source: 'network', errorCode: 'TYPE_MISMATCH' })
      // Asked as another type, the kept number is the caller's mismatch: the default, TYPE_MISMATCH.
      expect(client.getStringDetails('limit', 'x')).toMatchObject({ value: 'x', reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH })
      expect(client.getBooleanDetails('name', true)).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH })
      // A kept value equal to the caller's default is still the kept value, not a mismatch.
      const same = client.getNumberDetails('limit', 5)
      expect(same).toMatchObject({ value: 5, reason: 'STALE' })
      expect(same.errorCode).toBeUndefined()
    } finally {
      await fault.close()
    }
  })
})
