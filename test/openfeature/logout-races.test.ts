// Context changes that overlap a logout (4214e3c): a login before the answer to the switch the
// logout cut short lands, for another user or the same one; the SDK says one CONTEXT_CHANGED or
// ERROR once no change is pending, for the latest context.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags, held } from '../support/faultServer'
import { createClient } from '@holdfast/core'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { connect, forUser, recordEvents, settle, until } from './support'

describe('a login while the switch a logout cut short is still out', () => {
  for (const next of ['user-3', 'user-2']) {
    it(`user-1 → user-2 (answer held) → logout → ${next}: CONTEXT_CHANGED once, READY, ${next}'s values`, async () => {
      const fault = await createFaultServer(forUser)
      try {
        const { client, domain, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
        const [reply, release] = held(flags([{ key: 'a', value: 'for user-2' }]))
        fault.next(reply)
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
        const [reply, release] = held(flags([{ key: 'a', value: 'for user-2' }]))
        fault.next(reply)
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

describe('a logout while the provider initializes', () => {
  it("setProviderAndWait rejects at once (TARGETING_KEY_MISSING), and the first user's answer landing later says nothing", async () => {
    const fault = await createFaultServer(forUser)
    try {
      const [reply, release] = held(flags([{ key: 'a', value: 'for user-1' }]))
      fault.next(reply)
      const { client, domain, ready, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory', wait: false })
      await fault.waitForRequests(1)
      let outcome: unknown
      ready.then(
        () => (outcome = 'resolved'),
        (error) => (outcome = error),
      )
      await OpenFeature.setContext(domain, {}).catch(() => {})
      // Before: initialize waited for user-1's answer (for good with a server that never answers;
      // the clock's requestTimeoutMs otherwise), then rejected "the client is closed", or resolved
      // (READY) for a user no longer there once that answer came.
      await until(() => outcome !== undefined, 'setProviderAndWait to settle', 2000)
      expect(outcome).toMatchObject({ code: ErrorCode.TARGETING_KEY_MISSING })
      release()
      await fault.waitForRequests(1)
      await new Promise((r) => setTimeout(r, 100))
      await settle()
      expect(events).not.toContain('PROVIDER_READY')
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'default', errorCode: ErrorCode.TARGETING_KEY_MISSING })
      // The next login is served.
      await OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('for user-2')
    } finally {
      await fault.close()
    }
  })
})

describe('a client passed in that the app pauses itself during a switch', () => {
  it('is no logout: the switch waits for its answer, then CONTEXT_CHANGED with the new user\'s values', async () => {
    const fault = await createFaultServer(forUser)
    try {
      const shared = createClient({ url: fault.url, context: { targetingKey: 'user-1' }, storage: 'memory', storageName: uniqueStorageName('of'), refreshOnFocus: false, clock: createManualClock(), logger: createTestLogger() })
      const domain = 'holdfast-of-paused-shared'
      const client = OpenFeature.getClient(domain)
      const events = recordEvents(client)
      await OpenFeature.setContext(domain, { targetingKey: 'user-1' })
      await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared }))
      const [reply, release] = held(flags([{ key: 'a', value: 'for user-2' }]))
      fault.next(reply)
      const change = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      await fault.waitForRequests(2)
      shared.pause()
      await settle()
      // Before (since 4214e3c): the pause ended the switch: CONTEXT_CHANGED at once, user-1's values standing in.
      expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_RECONCILING'])
      release()
      await change
      expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED'])
      expect(client.getStringValue('a', 'default')).toBe('for user-2')
      await shared.close()
    } finally {
      await fault.close()
    }
  })
})
