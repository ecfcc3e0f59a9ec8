// A change to the flags that lands between the SDK's PROVIDER_CONTEXT_CHANGED and the provider's
// own settling of that context change (a task later, 5daebc4c) was lost: the provider ignored
// client changes until then, and then took the values held as its baseline. An app that read
// its flags at CONTEXT_CHANGED (@openfeature/react-sdk's useFlag) kept the old value for good.
import { OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createTestClient } from '@holdfast/core/testing'
import { createTestLogger } from '../support/clock'
import { recordEvents, settle } from './support'

describe('a flag change right after a context change settles', () => {
  it('is reported as PROVIDER_CONFIGURATION_CHANGED', async () => {
    const shared = createTestClient({ context: { targetingKey: 'u' }, flags: { a: 'old', b: 1 } })
    const domain = 'context-change-window'
    const client = OpenFeature.getClient(domain)
    const events = recordEvents(client)
    await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }), { targetingKey: 'u' })
    let readAtContextChanged: string | undefined
    client.addHandler('PROVIDER_CONTEXT_CHANGED' as never, () => void (readAtContextChanged = client.getStringValue('a', 'default')))
    events.length = 0
    await OpenFeature.setContext(domain, { targetingKey: 'v' })
    // The answer for v (a poll, a live update, a refresh) lands right away.
    shared.set('a', 'new')
    await settle()
    await settle()
    expect(readAtContextChanged).toBe('old')
    expect(client.getStringValue('a', 'default')).toBe('new')
    expect(events).toEqual(['PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED', 'PROVIDER_CONFIGURATION_CHANGED[a]'])
    // Later changes still come once each.
    shared.set('b', 2)
    await settle()
    expect(events.slice(3)).toEqual(['PROVIDER_CONFIGURATION_CHANGED[b]'])
  })
})
