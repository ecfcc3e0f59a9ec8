// OpenFeature.close() shuts a provider down (spec 1.6.1); the web SDK 1.10 leaves its status as it
// was. A provider that built its own client closes it and can give only defaults after: the
// status the app reads must not stay READY then.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer } from '../support/faultServer'
import { connect, forUser, settle } from './support'

describe('OpenFeature.close()', () => {
  it('a provider that built its own client no longer reads READY once closed, and its evaluations say why', async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, events } = await connect(fault.url, { targetingKey: 'u1' }, { storage: 'memory' })
      expect(client.getStringValue('a', 'default')).toBe('for u1')
      await OpenFeature.close()
      await settle()
      const details = client.getStringDetails('a', 'default')
      expect(details).toMatchObject({ value: 'default', reason: 'ERROR', errorCode: ErrorCode.PROVIDER_NOT_READY })
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(events.at(-1)).toBe('PROVIDER_ERROR')
    } finally {
      await fault.close()
    }
  })
})
