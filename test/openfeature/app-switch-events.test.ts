// An app that switches the Holdfast client it passed in (its own setContext, the OpenFeature
// context naming no user so the provider follows the client): one switch, one
// PROVIDER_CONFIGURATION_CHANGED naming the flags whose values moved.
import { OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createClient } from '@holdfast/core'
import { createFaultServer, flags, type RecordedRequest } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { recordEvents, settle, until } from './support'

describe("the app switches a shared client's user itself", () => {
  it('one PROVIDER_CONFIGURATION_CHANGED for one switch', async () => {
    const fault = await createFaultServer((request: RecordedRequest) => flags([{ key: 'who', value: String(request.body?.context?.targetingKey) }, { key: 'same', value: 1 }]))
    const shared = createClient({ url: fault.url, context: { targetingKey: 'dave' }, storage: 'memory', storageName: uniqueStorageName('of-switch'), refreshOnFocus: false, clock: createManualClock(), logger: createTestLogger() })
    try {
      const domain = 'app-switch-events'
      const client = OpenFeature.getClient(domain)
      const events = recordEvents(client)
      await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }))
      expect(client.getStringValue('who', 'DEFAULT')).toBe('dave')
      events.length = 0
      await shared.setContext({ targetingKey: 'erin' })
      await until(() => client.getStringValue('who', 'DEFAULT') == 'erin', "erin's values")
      await settle()
      expect(events).toHaveLength(1)
      expect(events[0]).toMatch(/^PROVIDER_CONFIGURATION_CHANGED\[.*who/)
    } finally {
      await shared.close()
      await fault.close()
    }
  })
})
