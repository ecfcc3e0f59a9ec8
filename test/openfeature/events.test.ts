// Provider events in the order an OpenFeature user sees them, driven by the reference server's
// outage controls: READY once values are held, STALE when an attempt fails while values are held,
// READY again on recovery, ERROR on 401 or a rejected context, CONFIGURATION_CHANGED naming the
// flags that changed — one per change batch. Retries run on a manual clock, so the only attempts
// are the ones a test asks for.
import { ErrorCode, MultiProvider, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { DEMO_FLAGS, startServer } from '../server/helpers'
import { createFaultServer, flags } from '../support/faultServer'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { connect, recordEvents, settle, until } from './support'

const ALL = `[${Object.keys(DEMO_FLAGS.flags).sort().join(',')}]`

describe('provider events through an outage', () => {
  it('READY, then STALE through 503 and {} with values kept, READY again on recovery, then one flag changing', async () => {
    const server = await startServer({ demoControls: true })
    const { client, provider, events } = await connect(server.url, { targetingKey: 'user-1' }, { storage: 'memory' })
    const holdfast = provider.client!
    expect(events).toEqual(['PROVIDER_READY'])
    // A flag no answer holds, read before the outage: the caller's default, confirmed missing. The
    // provider's reason is DEFAULT (the SDK reports ERROR for any resolution with an errorCode).
    const missing = () => client.getBooleanDetails('no-such-flag', true)
    const resolved = () => provider.resolveBooleanEvaluation('no-such-flag', true, { targetingKey: 'user-1' })
    expect(missing()).toMatchObject({ value: true, errorCode: ErrorCode.FLAG_NOT_FOUND, flagMetadata: { source: 'default', stale: false } })
    expect(resolved()).toMatchObject({ value: true, reason: 'DEFAULT', errorCode: ErrorCode.FLAG_NOT_FOUND })

    server.outage!.set({ mode: '503' })
    await holdfast.refresh()
    await settle()
    expect(client.providerStatus).toBe(ProviderStatus.STALE)
    // Every flag's details changed (reason STALE, flagMetadata.stale): one event names them all,
    // and not the missing flag, whose value did not change (only its flagMetadata.stale, now true).
    expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_STALE', `PROVIDER_CONFIGURATION_CHANGED${ALL}`])
    expect(missing()).toMatchObject({ value: true, errorCode: ErrorCode.FLAG_NOT_FOUND, flagMetadata: { source: 'default', stale: true } })
    expect(resolved()).toMatchObject({ value: true, reason: 'DEFAULT', errorCode: ErrorCode.FLAG_NOT_FOUND, flagMetadata: { stale: true } })
    expect(client.getStringDetails('greeting', 'default')).toMatchObject({ value: 'Hi', reason: 'STALE' })
    expect(client.getStringDetails('greeting', 'default').flagMetadata).toMatchObject({ stale: true, source: 'network' })

    // `{}` is not "every flag is gone": nothing changes, nothing is said.
    server.outage!.set({ mode: 'empty' })
    await holdfast.refresh()
    server.outage!.set({ mode: 'empty-flags' })
    await holdfast.refresh()
    await settle()
    expect(events).toHaveLength(3)
    expect(client.getBooleanValue('kill-switch', true)).toBe(false)
    expect(client.getNumberValue('limit', 0)).toBe(5)

    server.outage!.set({ mode: 'none' })
    await holdfast.refresh()
    await settle()
    expect(client.providerStatus).toBe(ProviderStatus.READY)
    expect(events.slice(3)).toEqual(['PROVIDER_READY', `PROVIDER_CONFIGURATION_CHANGED${ALL}`])
    expect(missing().flagMetadata).toMatchObject({ source: 'default', stale: false })
    expect(client.getStringDetails('greeting', 'default')).toMatchObject({ value: 'Hi', reason: 'STATIC' })

    server.setFlags({ ...DEMO_FLAGS, flags: { ...DEMO_FLAGS.flags, greeting: { ...DEMO_FLAGS.flags.greeting, defaultVariant: 'hello' } } })
    await holdfast.refresh()
    await settle()
    expect(events.slice(5)).toEqual(['PROVIDER_CONFIGURATION_CHANGED[greeting]'])
    expect(client.getStringValue('greeting', 'default')).toBe('Hello')

    // A refresh that confirms what is held says nothing.
    await holdfast.refresh()
    await settle()
    expect(events).toHaveLength(6)
  })

  it('names added and removed flags', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }, { key: 'b', value: 2 }]))
    try {
      const { client, provider, events } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      fault.always(flags([{ key: 'a', value: 1 }, { key: 'c', value: 3 }]))
      await provider.client!.refresh()
      await settle()
      expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_CONFIGURATION_CHANGED[b,c]'])
      expect(client.getNumberDetails('b', 0)).toMatchObject({ value: 0, errorCode: ErrorCode.FLAG_NOT_FOUND })
      expect(client.getNumberValue('c', 0)).toBe(3)
    } finally {
      await fault.close()
    }
  })

  it('initialize never rejects on a network failure: with nothing held it resolves, then says ERROR; recovery says READY', async () => {
    const fault = await createFaultServer({ status: 503 })
    try {
      const { client, provider, events } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      await settle()
      expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_ERROR'])
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(client.getBooleanDetails('x', true)).toMatchObject({ value: true, reason: 'ERROR' })
      fault.always(flags([{ key: 'x', value: false, reason: 'STATIC' }]))
      await provider.client!.refresh()
      await settle()
      expect(events.slice(2)).toEqual(['PROVIDER_READY', 'PROVIDER_CONFIGURATION_CHANGED[x]'])
      expect(client.getBooleanDetails('x', true)).toMatchObject({ value: false, reason: 'STATIC' })
    } finally {
      await fault.close()
    }
  })

  it('a wrong API key: setProviderAndWait rejects with PROVIDER_ERROR (status ERROR, not FATAL)', async () => {
    const server = await startServer({ apiKey: 'k-1' })
    const bad = connect(server.url, { targetingKey: 'u' }, { storage: 'memory', headers: { Authorization: 'Bearer wrong' } })
    await expect(bad).rejects.toThrow()
    const good = await connect(server.url, { targetingKey: 'u' }, { storage: 'memory', headers: { Authorization: 'Bearer k-1' } })
    expect(good.client.getStringValue('greeting', 'x')).toBe('Hi')
  })

  it('credentials revoked while values are held: PROVIDER_ERROR, and the held values are still served', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 'kept', reason: 'STATIC' }]))
    try {
      const { client, provider, events } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      fault.always({ status: 401 })
      await provider.client!.refresh()
      await settle()
      expect(events.slice(0, 2)).toEqual(['PROVIDER_READY', 'PROVIDER_ERROR'])
      expect(client.providerStatus).toBe(ProviderStatus.ERROR)
      expect(client.getStringDetails('a', 'default')).toMatchObject({ value: 'kept', reason: 'STALE' })
      fault.always(flags([{ key: 'a', value: 'kept', reason: 'STATIC' }]))
      await provider.client!.refresh()
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.READY)
    } finally {
      await fault.close()
    }
  })

  it('the ERROR event carries a message and an OpenFeature error code, never PROVIDER_FATAL', async () => {
    const fault = await createFaultServer(flags([{ key: 'a', value: 1 }]))
    try {
      const { client, provider } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      const seen: unknown[] = []
      client.addHandler('PROVIDER_ERROR' as never, (details) => void seen.push(details))
      fault.always({ status: 403 })
      await provider.client!.refresh()
      await settle()
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({ message: expect.any(String), errorCode: ErrorCode.GENERAL, metadata: { code: 'UNAUTHORIZED', httpStatus: 403 } })
      expect(OpenFeature.getClient(client.metadata.domain).providerStatus).toBe(ProviderStatus.ERROR)
    } finally {
      await fault.close()
    }
  })

  it('inside a MultiProvider: an outage after a context change that ended a first one still says STALE', async () => {
    // A MultiProvider knows its providers' states only from their own events; the SDK's READY after
    // a context change is not one of them. Before: STALE, then a context change while the service
    // came back (the provider said nothing: the SDK had said READY), then a second outage: the
    // MultiProvider still held this provider as STALE, saw no change, and the app stayed READY.
    const ok = flags([{ key: 'a', value: 1 }])
    const fault = await createFaultServer(ok)
    try {
      const holdfast = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: { warn() {}, error() {} } })
      const client = OpenFeature.getClient('multi')
      const events = recordEvents(client)
      await OpenFeature.setProviderAndWait('multi', new MultiProvider([{ provider: holdfast }]), { targetingKey: 'u' })
      fault.always({ status: 503 })
      await holdfast.client!.refresh()
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.STALE)
      fault.always(ok)
      await OpenFeature.setContext('multi', { targetingKey: 'u', plan: 'pro' })
      await holdfast.client!.refresh() // this context's answer, so the next attempt is the failing one
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      fault.always({ status: 503 })
      await holdfast.client!.refresh()
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.STALE)
      expect(events.filter((e) => e === 'PROVIDER_STALE')).toHaveLength(2)
    } finally {
      await fault.close()
    }
  })

  it('at the top level nothing is said twice: a refused context is one PROVIDER_ERROR (the SDK\'s); a change ending an outage adds one READY', async () => {
    const ok = flags([{ key: 'a', value: 1 }])
    const fault = await createFaultServer(ok)
    try {
      const { client, provider, domain, events } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      await OpenFeature.setContext(domain, { plan: 'pro' })
      await settle()
      expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_RECONCILING', 'PROVIDER_ERROR'])
      await OpenFeature.setContext(domain, { targetingKey: 'u' })
      await provider.client!.refresh() // joins the request a user back from a logout gets, so the 503 below answers the next one
      await settle()
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      fault.always({ status: 503 })
      await provider.client!.refresh()
      await settle()
      fault.always(ok)
      events.length = 0
      await OpenFeature.setContext(domain, { targetingKey: 'v' })
      await settle()
      expect(events).toEqual(['PROVIDER_RECONCILING', 'PROVIDER_CONTEXT_CHANGED', 'PROVIDER_READY'])
    } finally {
      await fault.close()
    }
  })

  it('logging events (exposures, track) says nothing: only flag changes make CONFIGURATION_CHANGED', async () => {
    const server = await startServer()
    const { client, events, provider } = await connect(server.url, { targetingKey: 'u' }, { events: { url: `${server.url}/holdfast/v1/events` } })
    for (const key of Object.keys(DEMO_FLAGS.flags)) client.getBooleanValue(key, false)
    for (let i = 0; i < 20; i++) client.track(`e${i}`, { value: i })
    await provider.client!.flush()
    await until(() => provider.client!.getEventStats().sent >= 20, 'the events to be sent')
    await settle()
    // The client told its subscribers about every queued and sent batch; none of that is a flag change.
    expect(events).toEqual(['PROVIDER_READY'])
  })
})
