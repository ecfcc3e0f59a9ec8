// Context changes that overlap a logout (4214e3c): a login before the answer to the switch the
// logout cut short lands, for another user or the same one; the SDK says one CONTEXT_CHANGED or
// ERROR once no change is pending, for the latest context.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags } from '../support/faultServer'
import { connect, settle, until } from './support'

const forUser = (request: { body?: { context?: { targetingKey?: string } } }) => flags([{ key: 'a', value: `for ${request.body?.context?.targetingKey}` }])

describe('a login while the switch a logout cut short is still out', () => {
  for (const next of ['user-3', 'user-2']) {
    it(`user-1 → user-2 (answer held) → logout → ${next}: CONTEXT_CHANGED once, READY, ${next}'s values`, async () => {
      const fault = await createFaultServer(forUser)
      try {
        const { client, domain, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
        let release = () => {}
        fault.next({ ...flags([{ key: 'a', value: 'for user-2' }]), after: new Promise<void>((r) => (release = r)) })
        const first = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
        await fault.waitForRequests(2)
        const logout = OpenFeature.setContext(domain, {})
        const login = OpenFeature.setContext(domain, { targetingKey: next })
        release()
        await Promise.allSettled([first, logout, login])
        await until(() => client.getStringValue('a', 'default') == `for ${next}`, `${next}'s value`)
        await settle()
        expect(client.providerStatus).toBe(ProviderStatus.READY)
        expect(client.getStringDetails('a', 'default')).toMatchObject({ value: `for ${next}` })
        expect(client.getStringDetails('a', 'default').errorCode).toBeUndefined()
        const after = events.slice(1).filter((e) => e != 'PROVIDER_RECONCILING')
        expect(after).toEqual(['PROVIDER_CONTEXT_CHANGED'])
      } finally {
        await fault.close()
      }
    })
  }
  for (const next of ['user-3', 'user-2']) {
    it(`user-1 → user-2 (answer held) → logout said (ERROR) → ${next} before that answer lands: READY with ${next}'s values, nothing after`, async () => {
      const fault = await createFaultServer(forUser)
      try {
        const { client, domain, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
        let release = () => {}
        fault.next({ ...flags([{ key: 'a', value: 'for user-2' }]), after: new Promise<void>((r) => (release = r)) })
        const first = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
        await fault.waitForRequests(2)
        await OpenFeature.setContext(domain, {}).catch(() => {})
        await first.catch(() => {})
        await settle()
        expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_RECONCILING', 'PROVIDER_RECONCILING', 'PROVIDER_ERROR'])
        const login = OpenFeature.setContext(domain, { targetingKey: next })
        await settle()
        release()
        await login
        await until(() => client.getStringValue('a', 'default') == `for ${next}`, `${next}'s value`)
        await settle()
        expect(client.providerStatus).toBe(ProviderStatus.READY)
        expect(client.getStringDetails('a', 'default').errorCode).toBeUndefined()
        expect(events.slice(4, 6)).toEqual(['PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED'])
        expect(events.slice(6).filter((e) => e != 'PROVIDER_READY')).toEqual([])
      } finally {
        await fault.close()
      }
    })
  }
})
