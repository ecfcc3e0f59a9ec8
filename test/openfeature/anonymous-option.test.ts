// The `context` option's anonymous user serves an OpenFeature context that names no user (adeb328),
// and only such a one: a context that names its user with a key Holdfast cannot send (a number,
// `{ targetingKey: user.id }` with a numeric id) is that user, not the anonymous visitor.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags } from '../support/faultServer'
import { connect, forUser, settle, until } from './support'

describe('the `context` option and a targetingKey that is not a string', () => {
  it("a login with a numeric targetingKey is refused (TARGETING_KEY_MISSING, PROVIDER_ERROR), never served the anonymous user's values", async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, domain, events } = await connect(fault.url, {}, { storage: 'memory', context: { targetingKey: 'anonymous' } })
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
      await OpenFeature.setContext(domain, { targetingKey: 42 as unknown as string }).catch(() => {})
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(events.at(-1)).toBe('PROVIDER_ERROR')
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'default', errorCode: ErrorCode.TARGETING_KEY_MISSING })
      // An empty one is the usual `{ targetingKey: user?.id ?? '' }` of a logout: the anonymous user.
      await OpenFeature.setContext(domain, { targetingKey: '' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
    } finally {
      await fault.close()
    }
  })

  it('started on a context with a numeric targetingKey, setProviderAndWait rejects as without the option', async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, ready } = await connect(fault.url, { targetingKey: 7 as unknown as string }, { storage: 'memory', context: { targetingKey: 'anonymous' }, wait: false })
      await expect(ready).rejects.toMatchObject({ code: ErrorCode.TARGETING_KEY_MISSING })
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'default', errorCode: ErrorCode.TARGETING_KEY_MISSING })
      expect(fault.requests).toHaveLength(0)
      // The same user named as Holdfast can send it: the client starts for them.
      const domain = client.metadata.domain!
      await OpenFeature.setContext(domain, { targetingKey: '7' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('for 7')
    } finally {
      await fault.close()
    }
  })
})

describe("the `context` option's anonymous user and the OpenFeature context's attributes", () => {
  const forLocale = (request: { body?: { context?: { targetingKey?: string; locale?: string } } }) =>
    flags([{ key: 'a', value: `${request.body?.context?.targetingKey}/${request.body?.context?.locale}` }])

  it('a locale set while nobody is signed in is sent for the anonymous user, at start and when it changes', async () => {
    const fault = await createFaultServer(forLocale)
    try {
      const { client, domain } = await connect(fault.url, { locale: 'de' }, { storage: 'memory', context: { targetingKey: 'anonymous' } })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('anonymous/de')
      // The same user's values stand in at once (no flash) while the new attributes are asked for,
      // as for a signed-in user whose attributes change.
      await OpenFeature.setContext(domain, { locale: 'fr' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      await until(() => client.getStringValue('a', 'default') == 'anonymous/fr', 'the value for fr')
      await OpenFeature.setContext(domain, {})
      await until(() => client.getStringValue('a', 'default') == 'anonymous/undefined', 'the value without a locale')
      expect(fault.requests.map((r) => JSON.stringify(r.body.context))).toEqual([
        '{"targetingKey":"anonymous","locale":"de"}',
        '{"targetingKey":"anonymous","locale":"fr"}',
        '{"targetingKey":"anonymous"}',
      ])
    } finally {
      await fault.close()
    }
  })
})
