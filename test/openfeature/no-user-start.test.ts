// A provider made without a `context`, started on an OpenFeature context that names no user (none
// ever set): initialize is refused (TARGETING_KEY_MISSING), the SDK says ERROR, and every
// evaluation gives the same reason the status does, not PROVIDER_NOT_READY.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer } from '../support/faultServer'
import { connect, forUser, settle } from './support'

describe('no `context` option and no targetingKey ever set', () => {
  it('the status is ERROR and evaluations say TARGETING_KEY_MISSING, until a user is named', async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, domain, ready, events } = await connect(fault.url, {}, { storage: 'memory', wait: false })
      await expect(ready).rejects.toMatchObject({ code: ErrorCode.TARGETING_KEY_MISSING })
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(events).toEqual(['PROVIDER_ERROR'])
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'default', reason: 'ERROR', errorCode: ErrorCode.TARGETING_KEY_MISSING })
      expect(fault.requests).toHaveLength(0)
      await OpenFeature.setContext(domain, { targetingKey: 'u1' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'for u1' })
    } finally {
      await fault.close()
    }
  })
})
