// Inside a MultiProvider, a context switch that ends with nothing to serve leaves the app's status
// ERROR: the SDK says READY for the MultiProvider's change microtasks after this provider's change
// resolves, so the provider's own ERROR must come after it, not before.
import { MultiProvider, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createFaultServer, flags, type RecordedRequest } from '../support/faultServer'
import { recordEvents, settle } from './support'

describe('a MultiProvider around the provider: a failed context switch', () => {
  for (const [who, why] of [
    ['down', 'its first attempt fails (503), nothing cached'],
    ['bad', 'the server refuses the context (400 INVALID_CONTEXT)'],
  ]) {
    it(`${why}: the status reads ERROR after the switch, and stays ERROR`, async () => {
      const fault = await createFaultServer((request: RecordedRequest) => {
        const key = request.body?.context?.targetingKey
        if (key == 'down') return { status: 503 }
        if (key == 'bad') return { status: 400, body: { errorCode: 'INVALID_CONTEXT', errorDetails: 'no' } }
        return flags([{ key: 'a', value: `for ${key}` }])
      })
      try {
        const holdfast = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: { warn() {}, error() {} } })
        const domain = `multi-failed-${who}`
        const client = OpenFeature.getClient(domain)
        const events = recordEvents(client)
        await OpenFeature.setProviderAndWait(domain, new MultiProvider([{ provider: holdfast }]), { targetingKey: 'u' })
        expect(client.getStringValue('a', 'default')).toBe('for u')
        await OpenFeature.setContext(domain, { targetingKey: who }).catch(() => {})
        await settle()
        expect(client.providerStatus).toBe(ProviderStatus.ERROR)
        expect(events.at(-1)).toBe('PROVIDER_ERROR')
        expect(client.getStringValue('a', 'default')).toBe('default')
        await holdfast.client!.refresh()
        await settle()
        expect(client.providerStatus).toBe(ProviderStatus.ERROR)
        await OpenFeature.setContext(domain, { targetingKey: 'v' })
        await settle()
        expect(client.providerStatus).toBe(ProviderStatus.READY)
        expect(client.getStringValue('a', 'default')).toBe('for v')
      } finally {
        await fault.close()
      }
    })
  }
})
