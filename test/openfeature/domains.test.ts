// A domain with no provider of its own reads the default provider (OpenFeature spec 1.1.3), and
// its own context, set with OpenFeature.setContext(domain, …), reaches no provider's
// onContextChange (spec 3.2.4.2; the web SDK only stores it). The default provider holds the
// default context's user: it must not serve that user's values, nor log events as that user,
// for an evaluation whose context names someone else.
import { ErrorCode, OpenFeature } from '@openfeature/web-sdk'
import { afterEach, describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createFaultServer, flags } from '../support/faultServer'
import { startEventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { until } from './support'

afterEach(async () => {
  await OpenFeature.clearProviders()
  await OpenFeature.setContext({})
})

describe('a domain without its own provider', () => {
  it("gets the caller's default, not the default user's value, when its context names another user", async () => {
    const fault = await createFaultServer((request) => flags([{ key: 'a', value: `for ${request.body?.context?.targetingKey}` }]))
    try {
      const provider = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: createTestLogger(), clock: createManualClock() })
      await OpenFeature.setProviderAndWait(provider, { targetingKey: 'A' })
      await OpenFeature.setContext('checkout', { targetingKey: 'B' })
      expect(OpenFeature.getClient().getStringValue('a', 'x')).toBe('for A')
      // Before: 'for A' — user A's value, reason and variant, served to a client whose context is B.
      expect(OpenFeature.getClient('checkout').getStringDetails('a', 'x')).toMatchObject({ value: 'x', reason: 'ERROR', errorCode: ErrorCode.INVALID_CONTEXT })
      // A context for the default provider's own user, or none of its own, reads as usual.
      await OpenFeature.setContext('same-user', { targetingKey: 'A', plan: 'pro' })
      expect(OpenFeature.getClient('same-user').getStringValue('a', 'x')).toBe('for A')
      expect(OpenFeature.getClient('no-context').getStringValue('a', 'x')).toBe('for A')
      // A domain context without targetingKey is nobody's: not A's either.
      await OpenFeature.setContext('logged-out', { plan: 'pro' })
      expect(OpenFeature.getClient('logged-out').getStringDetails('a', 'x')).toMatchObject({ value: 'x', errorCode: ErrorCode.INVALID_CONTEXT })
      expect(fault.requests.map((r) => r.body?.context?.targetingKey)).toEqual(['A'])
    } finally {
      await fault.close()
    }
  })

  it('track() from that domain is not logged as the default user', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    const receiver = await startEventsReceiver()
    try {
      const logger = createTestLogger()
      const provider = new HoldfastWebProvider({
        url: fault.url,
        storage: 'memory',
        storageName: uniqueStorageName('domains'),
        refreshOnFocus: false,
        logger,
        events: { url: receiver.url, exposures: false },
      })
      await OpenFeature.setProviderAndWait(provider, { targetingKey: 'A' })
      await OpenFeature.setContext('checkout', { targetingKey: 'B' })
      OpenFeature.getClient('checkout').track('purchase')
      OpenFeature.getClient().track('visit')
      await provider.client!.flush()
      await until(() => receiver.events().length >= 1, 'the events')
      // Before: 'purchase' arrived as user A's.
      expect(receiver.events().map((e) => [e.name, e.targetingKey])).toEqual([['visit', 'A']])
      expect(logger.warnings.join('\n')).toMatch(/track\("purchase"\)/)
    } finally {
      await receiver.close()
      await fault.close()
    }
  })
})
