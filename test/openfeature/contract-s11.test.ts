// CONTRACT §11 through the official web SDK: every evaluation's `flagMetadata` carries Holdfast's
// `source`, `updatedAt` and `stale`, including when the caller's default is all there is (nothing
// held after a failed first attempt, or after a switch whose first attempt failed), which is when
// an app most needs to tell "the server said so" from "nothing known".
import { ErrorCode, OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createTestLogger } from '../support/clock'
import { createFaultServer, flags } from '../support/faultServer'
import { connect, settle, until } from './support'

describe('flagMetadata says where a value came from, also when nothing is held (§11)', () => {
  it('a first visit while the server is down: the default, with source default and stale', async () => {
    const fault = await createFaultServer({ status: 503 })
    try {
      const { client } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      await settle()
      const details = client.getBooleanDetails('checkout', true)
      expect(details.value).toBe(true)
      // CONTRACT §3: stale "when the latest attempt failed" (this test asserted only a boolean).
      expect(details.flagMetadata).toMatchObject({ source: 'default', stale: true })
    } finally {
      await fault.close()
    }
  })

  it("a switch to a user whose first attempt fails: the default, with source default (not the previous user's)", async () => {
    const fault = await createFaultServer(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'alice' }, { storage: 'memory' })
      expect(client.getBooleanDetails('checkout', true)).toMatchObject({ value: false, flagMetadata: { source: 'network', stale: false } })
      fault.always({ status: 503 })
      await OpenFeature.setContext(domain, { targetingKey: 'bob' })
      await settle()
      const details = client.getBooleanDetails('checkout', true)
      expect(details.value).toBe(true)
      expect(details.flagMetadata).toMatchObject({ source: 'default', stale: true })
    } finally {
      await fault.close()
    }
  })

  // CONTRACT §5 through §11: while the new user's first answer is out, the previous user's value
  // stands in (no flash of defaults) but says it is not the new user's: source fallback, STALE.
  it("a switch while the new user's answer is out: the previous user's value, with source fallback, reason STALE", async () => {
    const fault = await createFaultServer(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'alice' }, { storage: 'memory' })
      fault.always('hang')
      void OpenFeature.setContext(domain, { targetingKey: 'bob' })
      await settle()
      expect(client.getBooleanDetails('checkout', true)).toMatchObject({ value: false, reason: 'STALE', flagMetadata: { source: 'fallback', stale: true } })
    } finally {
      await fault.close()
    }
  })

  // The provider's own early answers: the caller's default without asking the client. They said
  // nothing in flagMetadata (undefined source and stale) where every other default says source default.
  it('a context without targetingKey (a logout): the default, with source default and stale false', async () => {
    const fault = await createFaultServer(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
    try {
      const { client, domain } = await connect(fault.url, { targetingKey: 'alice' }, { storage: 'memory' })
      await OpenFeature.setContext(domain, { plan: 'pro' })
      expect(client.getBooleanDetails('checkout', true)).toMatchObject({
        value: true,
        errorCode: ErrorCode.TARGETING_KEY_MISSING,
        flagMetadata: { source: 'default', stale: false },
      })
    } finally {
      await fault.close()
    }
  })

  it('a domain whose context names another user: the default, with source default and stale false', async () => {
    const fault = await createFaultServer(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
    try {
      // A domain with no provider of its own reads the default provider, with its own context.
      const provider = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: createTestLogger() })
      await OpenFeature.setProviderAndWait(provider, { targetingKey: 'alice' })
      await OpenFeature.setContext('s11-bob', { targetingKey: 'bob' })
      expect(OpenFeature.getClient('s11-bob').getBooleanDetails('checkout', true)).toMatchObject({
        value: true,
        errorCode: ErrorCode.INVALID_CONTEXT,
        flagMetadata: { source: 'default', stale: false },
      })
    } finally {
      await OpenFeature.setContext({})
      await fault.close()
    }
  })

  // A refusal hands out the caller's default as every default is handed out: stale while the
  // client's latest attempt failed (§3), as Holdfast's own getDetails says for that key then. They
  // said stale false whatever the client's attempts did.
  it('a logout (no targetingKey) while the server is down: the default, with stale true, as Holdfast says', async () => {
    const fault = await createFaultServer(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
    try {
      const { client, domain, provider } = await connect(fault.url, { targetingKey: 'alice' }, { storage: 'memory' })
      fault.always({ status: 503 })
      expect(await provider.client!.refresh()).toMatchObject({ state: 'stale' })
      await OpenFeature.setContext(domain, { plan: 'pro' })
      for (const key of ['checkout', 'never-held']) {
        expect(client.getBooleanDetails(key, true)).toMatchObject({
          value: true,
          errorCode: ErrorCode.TARGETING_KEY_MISSING,
          flagMetadata: { source: 'default', stale: true },
        })
        expect(provider.client!.getDetails(key, true).stale).toBe(true)
      }
      // The server back and the user named again: the next default is not stale.
      fault.always(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
      await OpenFeature.setContext(domain, { targetingKey: 'alice' })
      await until(() => provider.client!.getStatus().state == 'ready', 'the attempt after the login')
      expect(client.getBooleanDetails('never-held', true).flagMetadata).toMatchObject({ source: 'default', stale: false })
    } finally {
      await fault.close()
    }
  })

  it('a domain whose context names another user, while the server is down: the default, with stale true, as Holdfast says', async () => {
    const fault = await createFaultServer(flags([{ key: 'checkout', value: false, reason: 'STATIC' }]))
    try {
      const provider = new HoldfastWebProvider({ url: fault.url, storage: 'memory', refreshOnFocus: false, logger: createTestLogger() })
      await OpenFeature.setProviderAndWait(provider, { targetingKey: 'alice' })
      fault.always({ status: 503 })
      expect(await provider.client!.refresh()).toMatchObject({ state: 'stale' })
      await OpenFeature.setContext('s11-bob-down', { targetingKey: 'bob' })
      for (const key of ['checkout', 'never-held']) {
        expect(OpenFeature.getClient('s11-bob-down').getBooleanDetails(key, true)).toMatchObject({
          value: true,
          errorCode: ErrorCode.INVALID_CONTEXT,
          flagMetadata: { source: 'default', stale: true },
        })
        expect(provider.client!.getDetails(key, true).stale).toBe(true)
      }
    } finally {
      await OpenFeature.setContext({})
      await fault.close()
    }
  })

  it('a provider that could not start (no targetingKey anywhere): the default, with source default and stale false', async () => {
    const provider = new HoldfastWebProvider({ url: 'http://127.0.0.1:9', storage: 'memory', logger: createTestLogger() })
    await expect(OpenFeature.setProviderAndWait('s11-no-key', provider, {})).rejects.toMatchObject({ code: ErrorCode.TARGETING_KEY_MISSING })
    expect(OpenFeature.getClient('s11-no-key').getBooleanDetails('checkout', true)).toMatchObject({
      value: true,
      // The reason the SDK's ERROR gives (before, PROVIDER_NOT_READY beside a status of ERROR).
      errorCode: ErrorCode.TARGETING_KEY_MISSING,
      flagMetadata: { source: 'default', stale: false },
    })
  })
})
