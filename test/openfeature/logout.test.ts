// A logged-out page (an OpenFeature context without targetingKey) asks the flag server nothing for
// the user who left: no polls, no focus refetches, no retries, while the events they logged still
// go out. A targetingKey coming back (the same user or another) fetches again.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags, held } from '../support/faultServer'
import { startEventsReceiver } from '../support/eventsReceiver'
import { fakeEnvironment } from '../support/environment'
import { connect, forUser, settle, until } from './support'

describe('logout (a context without targetingKey)', () => {
  it('stops polling the previous user; a targetingKey coming back polls again', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 'user-1 value' }]))
    try {
      const { client, domain, clock, provider } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory', refreshIntervalMs: 30_000 })
      expect(fault.requests).toHaveLength(1)
      clock.advance(30_000)
      await fault.waitForRequests(2)
      await provider.client!.refresh() // joins the poll, so no request is out at the logout

      await OpenFeature.setContext(domain, {})
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(client.getStringValue('a', 'default')).toBe('default')
      for (let i = 0; i < 4; i++) {
        clock.advance(30_000)
        await settle()
      }
      // Before: a request for user-1 every 30 s, values nobody on the page may see.
      expect(fault.requests.map((r) => r.body.context.targetingKey)).toEqual(['user-1', 'user-1'])

      await OpenFeature.setContext(domain, { targetingKey: 'user-1' })
      await fault.waitForRequests(3)
      await provider.client!.refresh() // joins that request
      await until(() => client.providerStatus === ProviderStatus.READY, 'READY')
      expect(client.getStringValue('a', 'default')).toBe('user-1 value')
      clock.advance(30_000)
      await fault.waitForRequests(4)
      expect(fault.requests.map((r) => r.body.context.targetingKey)).toEqual(['user-1', 'user-1', 'user-1', 'user-1'])
    } finally {
      await fault.close()
    }
  })

  it('no refetch on focus nor retry of a failed attempt for the user who left', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    try {
      const environment = fakeEnvironment()
      const { domain, clock } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory', refreshOnFocus: true, environment })
      fault.always({ status: 503 })
      clock.advance(10_000)
      environment.fire('focus') // focus: a refetch, which fails and schedules a retry
      await fault.waitForRequests(2)
      await settle()
      expect(clock.pending().length).toBeGreaterThan(0)

      await OpenFeature.setContext(domain, { plan: 'pro' })
      clock.advance(120_000)
      environment.fire('hidden')
      environment.fire('focus')
      await settle()
      expect(fault.requests).toHaveLength(2)
    } finally {
      await fault.close()
    }
  })

  it('events logged before the logout are still delivered', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    const receiver = await startEventsReceiver()
    try {
      const { client, domain, clock } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory', events: { url: receiver.url, exposures: false } })
      client.track('checkout')
      await OpenFeature.setContext(domain, {})
      client.track('after-logout') // ignored: nobody to attribute it to
      // The flush interval after the logout: user-1's event goes out although the page has no user.
      await until(() => {
        clock.advance(10_000)
        return receiver.events().length >= 1
      }, 'the event')
      await settle()
      expect(receiver.events().map((e) => [e.name, e.targetingKey])).toEqual([['checkout', 'user-1']])
    } finally {
      await receiver.close()
      await fault.close()
    }
  })

  it("with a `context` option (the anonymous user), an emptied context goes back to it, as at start", async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, domain } = await connect(fault.url, {}, { storage: 'memory', context: { targetingKey: 'anonymous' } })
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
      await OpenFeature.setContext(domain, { targetingKey: 'user-1' })
      expect(client.getStringValue('a', 'default')).toBe('for user-1')
      // The logout: OpenFeature.clearContext() sets {}, the very context the page started with.
      await OpenFeature.setContext(domain, {})
      // Before: PROVIDER_ERROR and every flag at the caller's default, where a reload of the same
      // page (same empty context) shows the anonymous user's values.
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
    } finally {
      await fault.close()
    }
  })

  // The same rule for a context that keeps attributes but names no user (a logout that clears only
  // the user's fields, an app that sets its locale before anyone signs in). Before: served as the
  // anonymous user at start, but PROVIDER_ERROR and every flag at the caller's default after a
  // logout to that very context, and setProviderAndWait rejected (TARGETING_KEY_MISSING) for it
  // once the provider was set again after onClose.
  it('with a `context` option, a context with attributes but no targetingKey goes back to it too: at a logout and when set again', async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, domain, provider } = await connect(fault.url, { locale: 'de' }, { storage: 'memory', context: { targetingKey: 'anonymous' } })
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
      await OpenFeature.setContext(domain, { targetingKey: 'user-1', locale: 'de' })
      expect(client.getStringValue('a', 'default')).toBe('for user-1')
      await OpenFeature.setContext(domain, { locale: 'de' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
      await fault.waitForRequests(3)
      expect(fault.requests.map((r) => r.body.context.targetingKey)).toEqual(['anonymous', 'user-1', 'anonymous'])

      await OpenFeature.clearProviders()
      await OpenFeature.setProviderAndWait(domain, provider, { locale: 'de' })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('for anonymous')
      // As at start, the OpenFeature context names no user: the provider serves whoever its
      // client holds, also when the app switches that client itself.
      await provider.client!.setContext({ targetingKey: 'user-2' })
      expect(client.getStringValue('a', 'default')).toBe('for user-2')
    } finally {
      await fault.close()
    }
  })

  // The SDK runs a change's ERROR handlers only once no other change is pending. Before: the
  // switch waited for its answer, so the logout's ERROR was never said while that answer was out
  // (the SDK's status ERROR, its handlers told nothing), and when it came the SDK said
  // CONTEXT_CHANGED (READY) for a switch already given up, then the provider said ERROR.
  it("a logout while a switch's answer is out: PROVIDER_ERROR at once, and nothing more when that answer comes", async () => {
    const fault = await createFaultServer(forUser)
    try {
      const { client, domain, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      const [reply, release] = held(flags([{ key: 'a', value: 'for user-2' }]))
      fault.always(reply)
      const login = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      await fault.waitForRequests(2)
      await OpenFeature.setContext(domain, {}).catch(() => {})
      await settle()
      expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_RECONCILING', 'PROVIDER_RECONCILING', 'PROVIDER_ERROR'])
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'default', errorCode: ErrorCode.TARGETING_KEY_MISSING })
      release()
      await login.catch(() => {})
      await fault.waitForRequests(2)
      await settle()
      expect(events).toHaveLength(4)
      expect(client.getStringValue('a', 'default')).toBe('default')
    } finally {
      await fault.close()
    }
  })

  it("the next user to log in is not shown the previous user's values while theirs load", async () => {
    // user-1 logs out (defaults on screen), user-2 logs in while the flag server is slow. Before:
    // the provider served user-1's values, held by the paused client, to user-2 until their own
    // came (a switch keeps the previous user's values as stand-ins; after a logout nothing stood).
    const fault = await createFaultServer(forUser)
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      expect(client.getStringValue('a', 'default')).toBe('for user-1')
      await OpenFeature.setContext(domain, {})
      expect(client.getStringValue('a', 'default')).toBe('default')
      fault.always('hang')
      const login = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      await fault.waitForRequests(2)
      expect(client.getStringValue('a', 'default')).toBe('default')
      expect(client.getStringDetails('a', 'default').value).toBe('default')
      void login.catch(() => {})
    } finally {
      await fault.close()
    }
  })
})
