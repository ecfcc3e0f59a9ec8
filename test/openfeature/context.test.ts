// OpenFeature.setContext switching the user the Holdfast way: the new user's values, their cached
// values at once on a return visit (no flash, no wait), never another context's ETag, and a
// context without a targetingKey rejected (PROVIDER_ERROR) instead of serving someone else's values.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { startServer } from '../server/helpers'
import { createFaultServer, delayed, flags } from '../support/faultServer'
import { connect, settle, until } from './support'

describe('context changes', () => {
  it('re-evaluates for the new user, with RECONCILING then CONTEXT_CHANGED', async () => {
    const server = await startServer()
    const { client, domain, events } = await connect(server.url, { targetingKey: 'user-1', plan: 'free' }, { storage: 'memory' })
    expect(client.getBooleanValue('beta', true)).toBe(false)
    await OpenFeature.setContext(domain, { targetingKey: 'user-2', email: 'bo@example.com' })
    expect(client.getBooleanDetails('beta', false)).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' })
    expect(client.providerStatus).toBe(ProviderStatus.READY)
    expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED'])
  })

  it('a returning user gets their cached values at once while the server hangs, then the network confirms them', async () => {
    const server = await startServer({ demoControls: true })
    const { client, domain, provider, events } = await connect(server.url, { targetingKey: 'user-1', plan: 'pro' }, { storage: 'memory' })
    await OpenFeature.setContext(domain, { targetingKey: 'user-2' })
    expect(client.getBooleanValue('beta', true)).toBe(false)

    server.outage!.set({ mode: 'hang' })
    // Resolves without waiting for the hanging request: user-1 is known to this page.
    await OpenFeature.setContext(domain, { targetingKey: 'user-1', plan: 'pro' })
    expect(client.providerStatus).toBe(ProviderStatus.READY)
    const cached = client.getBooleanDetails('beta', false)
    expect(cached).toMatchObject({ value: true, reason: 'CACHED' })
    expect(cached.flagMetadata).toMatchObject({ source: 'cache', stale: false })

    const before = events.length
    server.outage!.set({ mode: 'none' })
    await until(() => provider.client!.getStatus().source === 'network', 'the network answer')
    await settle()
    expect(client.getBooleanDetails('beta', false)).toMatchObject({ value: true, reason: 'TARGETING_MATCH' })
    // The same values, now from the network: one CONFIGURATION_CHANGED (source and reason moved), no status event.
    expect(events.slice(before)).toHaveLength(1)
    expect(events.slice(before)[0]).toMatch(/^PROVIDER_CONFIGURATION_CHANGED\[.*beta.*\]$/)
  })

  it('never sends one context’s ETag for another', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }], '"etag-user-1"'))
    try {
      const { domain } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      fault.always(flags([{ key: 'a', value: 2 }], '"etag-user-2"'))
      await OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      fault.always({ status: 304 })
      await OpenFeature.setContext(domain, { targetingKey: 'user-1' })
      await until(() => fault.requests.length >= 3, 'the third request')
      const sent = fault.requests.map((r) => [r.body?.context?.targetingKey, r.headers['if-none-match']])
      expect(sent.slice(0, 2)).toEqual([
        ['user-1', undefined],
        ['user-2', undefined],
      ])
      // Back to user-1: their own ETag or none, never user-2's.
      expect(sent[2][0]).toBe('user-1')
      expect([undefined, '"etag-user-1"']).toContain(sent[2][1])
    } finally {
      await fault.close()
    }
  })

  it('keeps the previous values on screen while an unknown user loads (no flash of defaults)', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 'user-1 value' }]))
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      // user-2's answer takes a while; until it lands the screen keeps user-1's values.
      fault.always(delayed(flags([{ key: 'a', value: 'user-2 value' }]), 1500))
      const switching = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      await fault.waitForRequests(2)
      expect(client.providerStatus).toBe(ProviderStatus.RECONCILING)
      expect(client.getStringValue('a', 'default')).toBe('user-1 value')
      await switching
      expect(client.getStringValue('a', 'default')).toBe('user-2 value')
    } finally {
      await fault.close()
    }
  })

  // Two ways B's answer can come late. A switch made while nothing else is out sends B's request
  // alone, and the switch back abandons it: its answer never reaches the page. A switch made while
  // a request is out (a burst of switches, one per render) sends B's as part of the burst, and the
  // switch back waits for it rather than abandon it: B's answer then arrives while A is the user,
  // and only the generation check (flags/syncState.ts) keeps it off the screen. Each test waits for
  // its own event (B's request abandoned; B's answer handled by the client), never a fixed time.
  it("A -> B -> A while B is slow: ends on A, B's request abandoned", async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 'A' }]))
    try {
      const { client, domain, events } = await connect(fault.url, { targetingKey: 'A' }, { storage: 'memory' })
      // B's answer never comes by itself: only the switch back can end its request.
      fault.next('hang')
      fault.always(flags([{ key: 'a', value: 'A' }]))
      const toB = OpenFeature.setContext(domain, { targetingKey: 'B' })
      await fault.waitForRequests(2)
      await Promise.all([toB, OpenFeature.setContext(domain, { targetingKey: 'A' })])
      // Abandoned: the server will never send B's answer, so nothing of B's is left to arrive.
      await until(() => fault.requests[1].abandoned && fault.requests[2]?.answered, "B's request abandoned, A's answered")
      await until(() => client.providerStatus === ProviderStatus.READY, 'READY on A')
      expect(client.getStringValue('a', 'x')).toBe('A')
      // One CONTEXT_CHANGED for the two switches (the SDK's), nothing saying B's flags arrived.
      expect(events.filter((e) => e === 'PROVIDER_CONTEXT_CHANGED')).toHaveLength(1)
      expect(events).not.toContain('PROVIDER_ERROR')
    } finally {
      await fault.close()
    }
  })

  it("A -> B -> A in a burst while B is slow: B's answer arrives after the switch back and never shows", async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 'A' }]))
    try {
      const { client, domain, events, provider } = await connect(fault.url, { targetingKey: 'A' }, { storage: 'memory' })
      let releaseB!: () => void
      const gateB = new Promise<void>((resolve) => (releaseB = resolve))
      // A request for A out (a poll, a focus refetch): the switch to B abandons it and sends B's as
      // part of a burst; B's answer is held until the page is A's again.
      fault.next('hang', { ...flags([{ key: 'a', value: 'B' }]), after: gateB }, 'hang')
      void provider.client!.refresh()
      await fault.waitForRequests(2)
      const toB = OpenFeature.setContext(domain, { targetingKey: 'B' })
      await fault.waitForRequests(3)
      const toA = OpenFeature.setContext(domain, { targetingKey: 'A' })
      // One request at a time per client: this joins the request out, B's, and settles once B's
      // answer has been received and handled. A's own request (the next, held) goes only after it.
      const bHandled = provider.client!.refresh()
      releaseB()
      await bHandled
      await settle()
      expect(fault.requests[2]).toMatchObject({ answered: true, body: { context: { targetingKey: 'B' } } })
      expect(client.getStringDetails('a', 'x')).toMatchObject({ value: 'A' })
      expect(events).not.toContain('PROVIDER_CONFIGURATION_CHANGED[a]')
      // A's own request follows B's answer (held: A's cached values stay on screen meanwhile).
      await fault.waitForRequests(4)
      expect(fault.requests[3].body.context.targetingKey).toBe('A')
      await Promise.all([toB, toA])
      expect(client.getStringValue('a', 'x')).toBe('A')
      expect(events).not.toContain('PROVIDER_ERROR')
    } finally {
      await fault.close()
    }
  })

  it('the user set while the provider initializes (a login as the page starts): setProviderAndWait resolves, READY, their values; never "client closed"', async () => {
    // Before: initialize saw its own switch superseded while the new user's request was out, took
    // the client for closed and rejected: PROVIDER_ERROR "the client is closed", no PROVIDER_READY
    // ever, and setProviderAndWait threw into the app although the new user's values came.
    const fault = await createFaultServer((r) => delayed(flags([{ key: 'a', value: `${r.body?.context?.targetingKey} value` }]), 300))
    try {
      const { client, domain, events, ready } = await connect(fault.url, { targetingKey: 'A' }, { storage: 'memory', wait: false })
      await fault.waitForRequests(1)
      const login = OpenFeature.setContext(domain, { targetingKey: 'B' })
      await expect(ready).resolves.toBeUndefined()
      await login
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(client.getStringValue('a', 'default')).toBe('B value')
      expect(events).toContain('PROVIDER_READY')
      expect(events).not.toContain('PROVIDER_ERROR')
      expect(fault.requests.map((r) => r.body?.context?.targetingKey)).toEqual(['A', 'B'])
    } finally {
      await fault.close()
    }
  })

  it('a context without targetingKey: PROVIDER_ERROR, defaults with TARGETING_KEY_MISSING; a valid one recovers', async () => {
    const server = await startServer()
    const { client, domain, events } = await connect(server.url, { targetingKey: 'user-1' }, { storage: 'memory' })
    await OpenFeature.setContext(domain, { plan: 'pro' })
    expect(client.providerStatus).toBe(ProviderStatus.ERROR)
    expect(events.at(-1)).toBe('PROVIDER_ERROR')
    expect(client.getStringDetails('greeting', 'default')).toMatchObject({ value: 'default', errorCode: ErrorCode.TARGETING_KEY_MISSING })
    await OpenFeature.setContext(domain, { targetingKey: 'user-3' })
    expect(client.providerStatus).toBe(ProviderStatus.READY)
    expect(client.getStringValue('greeting', 'default')).toBe('Hi')
  })

  it('a context the server rejects (400): PROVIDER_ERROR, and OpenFeature.setContext does not throw', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    try {
      const { client, domain, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      fault.always({ status: 400, body: { errorCode: 'INVALID_CONTEXT', errorDetails: 'country must be a string' } })
      await OpenFeature.setContext(domain, { targetingKey: 'user-2', country: 7 })
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(events.slice(-1)).toEqual(['PROVIDER_ERROR'])
      // user-1's value is not served as user-2's.
      expect(client.getNumberDetails('a', 0)).toMatchObject({ value: 0, reason: 'ERROR' })
    } finally {
      await fault.close()
    }
  })

  it('a BigInt attribute: PROVIDER_ERROR with INVALID_CONTEXT, nothing thrown, no request for a context it cannot send', async () => {
    // Before: the BigInt silently became null, the user was evaluated as if the attribute were
    // null (a rule on it quietly took the other branch), and the provider said READY.
    const fault = await createFaultServer(flags([{ key: 'a', value: 'user-1 value' }]))
    try {
      const { client, domain, events } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      await OpenFeature.setContext(domain, { targetingKey: 'user-2', seats: 10n as never })
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(events.at(-1)).toBe('PROVIDER_ERROR')
      expect(fault.requests).toHaveLength(1)
      // user-1's value is not served as user-2's.
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'default', reason: 'ERROR' })
      await OpenFeature.setContext(domain, { targetingKey: 'user-2', seats: 10 })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(fault.requests.at(-1)!.body.context).toEqual({ targetingKey: 'user-2', seats: 10 })
    } finally {
      await fault.close()
    }
  })

  it('odd attributes: Dates as ISO strings, a cycle or a throwing getter dropped, never a throw', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    try {
      const { domain, client } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      const odd: Record<string, unknown> = { targetingKey: 'user-2', signedUpAt: new Date(Date.UTC(2024, 0, 2)) }
      odd.self = odd
      Object.defineProperty(odd, 'boom', { enumerable: true, get: () => { throw new Error('getter') } })
      await OpenFeature.setContext(domain, odd as never)
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      const sent = fault.requests.at(-1)!.body.context
      expect(sent).toEqual({ targetingKey: 'user-2', signedUpAt: '2024-01-02T00:00:00.000Z', self: null, boom: null })
      // Another date is another context: it is fetched, not taken for the same one. (user-2's
      // cached values show at once, so the request may land after setContext resolves.)
      const count = fault.requests.length
      await OpenFeature.setContext(domain, { targetingKey: 'user-2', signedUpAt: new Date(Date.UTC(2025, 0, 2)) })
      await fault.waitForRequests(count + 1)
      expect(fault.requests.at(-1)!.body.context.signedUpAt).toBe('2025-01-02T00:00:00.000Z')
    } finally {
      await fault.close()
    }
  })
})
