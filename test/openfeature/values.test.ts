// Values through the official OpenFeature web SDK, read synchronously from Holdfast's store:
// every type, the server's reasons and variants, flagMetadata with Holdfast's source, stale and
// updatedAt, and the OpenFeature error codes.
import { ErrorCode, OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createFaultServer, flags, held } from '../support/faultServer'
import { startServer } from '../server/helpers'
import { connect } from './support'

describe('evaluations against holdfast-server', () => {
  it('reads every value type with the server reason, the variant and Holdfast metadata', async () => {
    const server = await startServer()
    const { client, events } = await connect(server.url, { targetingKey: 'user-1', email: 'ann@example.com' })
    expect(client.providerStatus).toBe(ProviderStatus.READY)
    expect(events).toEqual(['PROVIDER_READY'])
    expect(client.getBooleanValue('kill-switch', true)).toBe(false)
    expect(client.getObjectValue('banner', {})).toEqual({ text: 'Hello', color: 'blue' })
    expect(client.getStringValue('greeting', 'default')).toBe('Hi')
    expect(client.getNumberValue('limit', 0)).toBe(5)
    const beta = client.getBooleanDetails('beta', false)
    expect(beta).toMatchObject({ flagKey: 'beta', value: true, variant: 'on', reason: 'TARGETING_MATCH' })
    expect(beta.errorCode).toBeUndefined()
    expect(beta.flagMetadata).toMatchObject({ owner: 'growth', source: 'network', stale: false })
    expect(beta.flagMetadata.updatedAt).toEqual(expect.any(Number))
  })

  it('gives the default with FLAG_NOT_FOUND, TYPE_MISMATCH, and the server reason for a disabled flag', async () => {
    const server = await startServer()
    const { client } = await connect(server.url, { targetingKey: 'user-1' })
    expect(client.getBooleanDetails('no-such-flag', true)).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.FLAG_NOT_FOUND })
    // greeting holds a string; asking for a number is a type mismatch, and the default comes back.
    expect(client.getNumberDetails('greeting', 7)).toMatchObject({ value: 7, reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH })
    expect(client.getObjectDetails('greeting', { a: 1 })).toMatchObject({ value: { a: 1 }, errorCode: ErrorCode.TYPE_MISMATCH })
    expect(client.getBooleanDetails('retired', true)).toMatchObject({ value: true, reason: 'DISABLED' })
    expect(client.getBooleanDetails('retired', false)).toMatchObject({ value: false, reason: 'DISABLED' })
    expect(client.getBooleanDetails('retired', false).errorCode).toBeUndefined()
  })

  it('the provider itself says DEFAULT for the caller\'s default (a flag it holds no value for), ERROR for a type mismatch', async () => {
    const server = await startServer()
    const { provider } = await connect(server.url, { targetingKey: 'user-1' })
    // The SDK turns any resolution with an errorCode into reason ERROR; what the provider resolves
    // is DEFAULT with the code, as Holdfast's contract has it for the caller's default.
    expect(provider.resolveBooleanEvaluation('no-such-flag', true)).toMatchObject({ value: true, reason: 'DEFAULT', errorCode: ErrorCode.FLAG_NOT_FOUND })
    expect(provider.resolveNumberEvaluation('greeting', 7)).toMatchObject({ value: 7, reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH })
  })

  it('maps per-flag errors: a known code passes, an unknown one is GENERAL, a kept value stays a value (STALE)', async () => {
    const fault = await createFaultServer(
      flags([
        { key: 'a', value: 'one', reason: 'STATIC', variant: 'v1' },
        { key: 'b', errorCode: 'PARSE_ERROR', errorDetails: 'bad rule' },
        { key: 'c', errorCode: 'VENDOR_SPECIFIC' },
        { key: 'd', errorCode: 'TARGETING_KEY_MISSING' },
      ]),
    )
    try {
      const { client, provider } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      expect(client.getStringDetails('b', 'x')).toMatchObject({ value: 'x', reason: 'ERROR', errorCode: ErrorCode.PARSE_ERROR })
      const c = client.getStringDetails('c', 'x')
      expect(c).toMatchObject({ value: 'x', reason: 'ERROR', errorCode: ErrorCode.GENERAL })
      expect(c.flagMetadata.errorCode).toBe('VENDOR_SPECIFIC')
      expect(client.getStringDetails('d', 'x')).toMatchObject({ errorCode: ErrorCode.TARGETING_KEY_MISSING })
      // Next answer: `a` fails on the server. Holdfast keeps its last known good value; OpenFeature
      // would replace any value carrying an errorCode with the default, so the code goes to metadata.
      fault.always(flags([{ key: 'a', errorCode: 'GENERAL' }]))
      await provider.client!.refresh()
      const a = client.getStringDetails('a', 'default')
      expect(a).toMatchObject({ value: 'one', variant: 'v1', reason: 'STALE' })
      expect(a.errorCode).toBeUndefined()
      expect(a.flagMetadata).toMatchObject({ stale: true, source: 'network', errorCode: 'GENERAL' })
    } finally {
      await fault.close()
    }
  })

  it('a server that writes every optional field empty (Go, Java: errorCode "", reason "", variant "", metadata null) gives values, not errors', async () => {
    const empty = { reason: '', variant: '', errorCode: '', errorDetails: '', metadata: null }
    const fault = await createFaultServer(flags([{ key: 'on', value: true, ...empty }, { key: 'off', value: null, ...empty, errorCode: null, reason: '' }] as never))
    try {
      const { client } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      // Before: `on` was the caller's default with an empty errorCode (read as a failure entry), and
      // a value with `reason: ""` came out with the reason "" instead of OpenFeature's UNKNOWN.
      const on = client.getBooleanDetails('on', false)
      expect(on).toMatchObject({ value: true, reason: 'UNKNOWN' })
      expect(on.errorCode).toBeUndefined()
      expect(on.variant).toBeUndefined()
      expect(client.getBooleanDetails('off', true)).toMatchObject({ value: true, reason: 'DEFAULT' })
    } finally {
      await fault.close()
    }
  })

  it('nothing held because the service failed: the default with the failure, never FLAG_NOT_FOUND', async () => {
    // Before: every flag said FLAG_NOT_FOUND ("not among the flags held for this context") on a
    // first visit during an outage, and after a switch to a new user whose first attempt failed:
    // error hooks and logs blamed a deleted flag for what was a 503.
    const fault = await createFaultServer({ status: 503 })
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      const down = client.getBooleanDetails('kill-switch', true)
      expect(down).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.GENERAL })
      expect(down.errorMessage).toMatch(/HTTP 503/)
      fault.always(flags([{ key: 'kill-switch', value: false }]))
      await OpenFeature.setContext(domain, { targetingKey: 'v' })
      expect(client.getBooleanValue('kill-switch', true)).toBe(false)
      expect(client.getBooleanDetails('gone', true).errorCode).toBe(ErrorCode.FLAG_NOT_FOUND)
      fault.always({ status: 401 })
      await OpenFeature.setContext(domain, { targetingKey: 'w' })
      const refused = client.getBooleanDetails('kill-switch', true)
      expect(refused).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.GENERAL })
      expect(refused.errorMessage).toMatch(/401/)
    } finally {
      await fault.close()
    }
  })

  it('nothing held yet while the answer for a user is out (a login after a logout, a switch after a failed one): PROVIDER_NOT_READY, never FLAG_NOT_FOUND', async () => {
    // Nothing stands in then (the previous user's values are gone). Before: every flag said
    // FLAG_NOT_FOUND ("not held for this context") until the answer came, so error hooks and logs
    // blamed deleted flags for every login after a logout.
    const answer = flags([{ key: 'kill-switch', value: false }])
    const fault = await createFaultServer(answer)
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'user-1' }, { storage: 'memory' })
      await OpenFeature.setContext(domain, {})
      let [reply, release] = held(answer)
      fault.always(reply)
      const login = OpenFeature.setContext(domain, { targetingKey: 'user-2' })
      await fault.waitForRequests(2)
      const loading = client.getBooleanDetails('kill-switch', true)
      expect(loading).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.PROVIDER_NOT_READY, flagMetadata: { source: 'default' } })
      release()
      await login
      expect(client.getBooleanValue('kill-switch', true)).toBe(false)
      expect(client.getBooleanDetails('gone', true).errorCode).toBe(ErrorCode.FLAG_NOT_FOUND)

      fault.always({ status: 503 })
      await OpenFeature.setContext(domain, { targetingKey: 'user-3' })
      ;[reply, release] = held(answer)
      fault.always(reply)
      const next = OpenFeature.setContext(domain, { targetingKey: 'user-4' })
      await fault.waitForRequests(4)
      expect(client.getBooleanDetails('kill-switch', true)).toMatchObject({ value: true, errorCode: ErrorCode.PROVIDER_NOT_READY })
      release()
      await next
      expect(client.getBooleanValue('kill-switch', true)).toBe(false)
    } finally {
      await fault.close()
    }
  })

  it('serves a bootstrap at once: READY without waiting for a server that hangs', async () => {
    const fault = await createFaultServer('hang')
    try {
      const bootstrap = { context: { targetingKey: 'u' }, flags: [{ key: 'checkout', value: true, variant: 'on', reason: 'TARGETING_MATCH' }], fetchedAt: Date.now() - 60_000 }
      const { client, events } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory', bootstrap, context: { targetingKey: 'u' } })
      expect(client.providerStatus).toBe(ProviderStatus.READY)
      expect(events).toEqual(['PROVIDER_READY'])
      const details = client.getBooleanDetails('checkout', false)
      expect(details).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' })
      expect(details.flagMetadata).toMatchObject({ source: 'bootstrap', stale: false, updatedAt: bootstrap.fetchedAt })
    } finally {
      await fault.close()
    }
  })

  it('resolves synchronously and never throws, even when called outside the SDK before initialize', () => {
    const provider = new HoldfastWebProvider({ url: 'http://127.0.0.1:9', storage: 'memory' })
    expect(provider.resolveBooleanEvaluation('x', true)).toMatchObject({ value: true, errorCode: ErrorCode.PROVIDER_NOT_READY })
    expect(provider.metadata.name).toBe('holdfast')
    expect(provider.runsOn).toBe('client')
    expect(OpenFeature.getProvider('unused-domain')).toBeDefined()
  })
})
