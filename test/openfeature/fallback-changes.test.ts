// A flag that only the build-time `fallback` holds is shown until the first answer for the user;
// if that answer does not have it, the flag falls back to the caller's default, and
// PROVIDER_CONFIGURATION_CHANGED must name it. An app that re-reads the keys named there (the
// OpenFeature way to follow changes without re-reading every flag) otherwise kept showing the
// fallback value while every fresh read said the default. Here the answer comes from a relay
// serving its last known good (stale), so the provider says STALE, never READY: nothing else
// tells the app to read everything again.
import { OpenFeature, ProviderEvents, type EventDetails } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createFaultServer, flags } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { recordEvents, settle } from './support'

const fallback = {
  context: { targetingKey: 'anyone' },
  flags: [
    { key: 'greeting', value: 'fallback hello' },
    { key: 'new-checkout', value: true },
  ],
  fetchedAt: 1,
}

describe('a flag only the fallback held', () => {
  it('is named in CONFIGURATION_CHANGED when the first answer leaves it out, so a page following those events shows the default', async () => {
    const fault = await createFaultServer({ status: 503 })
    try {
      const domain = 'fallback-changes'
      const provider = new HoldfastWebProvider({
        url: fault.url,
        storage: 'memory',
        storageName: uniqueStorageName('of-fallback'),
        refreshOnFocus: false,
        clock: createManualClock(),
        logger: createTestLogger(),
        fallback,
      })
      const client = OpenFeature.getClient(domain)
      const events = recordEvents(client)
      // A first visit while the service is down: the fallback serves.
      await OpenFeature.setProviderAndWait(domain, provider, { targetingKey: 'user-1' })
      // What a page shows, re-read for the keys each CONFIGURATION_CHANGED names.
      const shown = { checkout: client.getBooleanValue('new-checkout', false) }
      client.addHandler(ProviderEvents.ConfigurationChanged, (details?: EventDetails) => {
        if ((details as { flagsChanged?: string[] } | undefined)?.flagsChanged?.includes('new-checkout')) shown.checkout = client.getBooleanValue('new-checkout', false)
      })
      expect(shown.checkout).toBe(true)

      // A relay answers from its data dir (stale): `new-checkout` was deleted upstream.
      fault.always({
        status: 200,
        body: { flags: [{ key: 'greeting', value: 'hello' }], metadata: { holdfast: { source: 'data-dir', fetchedAt: Date.now() - 1000, stale: true } } },
      })
      await provider.client!.refresh()
      await settle()
      expect(client.getBooleanValue('new-checkout', false)).toBe(false)
      expect(events.slice(1)).toEqual(['PROVIDER_ERROR', 'PROVIDER_STALE', 'PROVIDER_CONFIGURATION_CHANGED[greeting,new-checkout]'])
      expect(shown.checkout).toBe(false)
    } finally {
      await fault.close()
    }
  })
})
