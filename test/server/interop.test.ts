// The official OpenFeature OFREP web provider, which we did not write, reading our server in Node.
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider'
import { OpenFeature, type EvaluationContext } from '@openfeature/web-sdk'
import { afterEach, describe, expect, it } from 'vitest'
import { startServer } from './helpers'

let domainCounter = 0

afterEach(async () => {
  await OpenFeature.clearProviders()
})

/** A fresh OpenFeature domain with an OFREP provider pointed at `baseUrl`, cache off. */
async function connect(baseUrl: string, context: EvaluationContext, options: { headers?: [string, string][] } = {}) {
  const domain = `interop-${++domainCounter}`
  const statuses: number[] = []
  const provider = new OFREPWebProvider({
    baseUrl,
    cacheMode: 'disabled',
    headers: options.headers,
    // Plain fetch, only watched, so the test can see the 304s the provider receives.
    fetchImplementation: async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await fetch(input, init)
      statuses.push(response.status)
      return response
    },
  })
  await OpenFeature.setContext(domain, context)
  await OpenFeature.setProviderAndWait(domain, provider)
  return { client: OpenFeature.getClient(domain), statuses, domain }
}

describe('@openfeature/ofrep-web-provider against holdfast-server', () => {
  it('reads every value type, with targeting, reasons and variants', async () => {
    const server = await startServer()
    const { client } = await connect(server.url, { targetingKey: 'user-1', email: 'ann@example.com' })
    expect(client.getBooleanValue('kill-switch', true)).toBe(false)
    expect(client.getObjectValue('banner', {})).toEqual({ text: 'Hello', color: 'blue' })
    expect(client.getStringValue('greeting', 'default')).toBe('Hi')
    expect(client.getNumberValue('limit', 0)).toBe(5)
    const beta = client.getBooleanDetails('beta', false)
    expect(beta).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' })
    expect(beta.flagMetadata).toMatchObject({ owner: 'growth' })
    expect(beta.errorCode).toBeUndefined()
  })

  it('gives the caller default for a disabled flag (reason DISABLED) and an unknown one (FLAG_NOT_FOUND)', async () => {
    const server = await startServer()
    const { client } = await connect(server.url, { targetingKey: 'user-1' })
    expect(client.getBooleanDetails('retired', false)).toMatchObject({ value: false, reason: 'DISABLED' })
    expect(client.getBooleanDetails('retired', true)).toMatchObject({ value: true, reason: 'DISABLED' })
    expect(client.getBooleanDetails('no-such-flag', true)).toMatchObject({ value: true, errorCode: 'FLAG_NOT_FOUND' })
  })

  it('re-evaluates on a context change, and revalidates an unchanged answer with a 304', async () => {
    const server = await startServer()
    const { client, statuses, domain } = await connect(server.url, { targetingKey: 'user-2', plan: 'free' })
    expect(client.getBooleanValue('beta', false)).toBe(false)
    await OpenFeature.setContext(domain, { targetingKey: 'user-2', plan: 'pro' })
    expect(client.getBooleanValue('beta', false)).toBe(true)
    // Same user, an attribute that changes nothing: the provider sends its ETag, we say 304.
    await OpenFeature.setContext(domain, { targetingKey: 'user-2', plan: 'pro', theme: 'dark' })
    expect(statuses).toEqual([200, 200, 304])
    expect(client.getBooleanValue('beta', false)).toBe(true)
  })

  it('buckets the rollout the same way for the same user across providers', async () => {
    const server = await startServer()
    const values: boolean[] = []
    for (let i = 0; i < 20; i++) {
      const { client } = await connect(server.url, { targetingKey: `user-${i % 10}` })
      values.push(client.getBooleanValue('rollout', false))
    }
    expect(values.slice(10)).toEqual(values.slice(0, 10))
    expect(new Set(values)).toEqual(new Set([true, false]))
  })

  it('sends the API key via headers and fails on a wrong one', async () => {
    const server = await startServer({ apiKey: 'k-1' })
    const { client } = await connect(server.url, { targetingKey: 'user-1' }, { headers: [['Authorization', 'Bearer k-1']] })
    expect(client.getStringValue('greeting', 'default')).toBe('Hi')
    await expect(connect(server.url, { targetingKey: 'user-1' }, { headers: [['X-API-Key', 'wrong']] })).rejects.toThrow()
  })
})
