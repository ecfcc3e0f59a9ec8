// A context change's settle runs a task after the SDK's CONTEXT_CHANGED (5daebc4c); a logout (a
// context with no targetingKey, refused at once) in that task settled first, and the change's
// READY last: the provider took that READY as the SDK's belief and said the logout's ERROR again.
import { OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createTestClient } from '@holdfast/core/testing'
import { createTestLogger } from '../support/clock'
import { recordEvents, settle } from './support'

describe('a logout right after a context change resolves', () => {
  it('says ERROR once, and the provider does not contradict it', async () => {
    const shared = createTestClient({ context: { targetingKey: 'u' }, flags: { a: 'old' } })
    const domain = 'overlap-settle-logout'
    const client = OpenFeature.getClient(domain)
    const events = recordEvents(client)
    await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }), { targetingKey: 'u' })
    events.length = 0
    await OpenFeature.setContext(domain, { targetingKey: 'v' })
    await OpenFeature.setContext(domain, {})
    await settle()
    await settle()
    expect(events).toEqual(['PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED', 'PROVIDER_RECONCILING', 'PROVIDER_ERROR'])
    expect(client.providerStatus).toBe('ERROR')
    // A login again: the provider's own READY follows the SDK's (said after an ERROR, for a
    // MultiProvider around it, events.test), and a change in the settle's task is reported once.
    events.length = 0
    await OpenFeature.setContext(domain, { targetingKey: 'w' })
    shared.set('a', 'new')
    await settle()
    await settle()
    expect(events).toEqual(['PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED', 'PROVIDER_READY', 'PROVIDER_CONFIGURATION_CHANGED[a]'])
    expect(client.providerStatus).toBe('READY')
  })
})
