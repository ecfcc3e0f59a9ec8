// CONTRACT §9: in proxy mode the relay merges per flag "exactly as the client does"; §4: a value
// kept through a per-flag error is `stale` and carries the entry's `errorCode`. What a browser
// sees through the relay must be what it sees talking to the upstream itself: the kept value,
// stale, with the upstream's code; and a browser that holds nothing yet (or any OFREP client)
// must get the kept value, never the caller's default.
//
// The code cannot ride on the entry as `errorCode`: an entry with one is a failure entry to every
// OFREP client (the official provider checks `'errorCode' in entry`; Holdfast's merge too), and
// the kept value would be lost for a client holding none. It rides in the flag's metadata, which
// OFREP allows on a success entry, and Holdfast reads it from there when the reason is STALE.
import { afterEach, describe, expect, it } from 'vitest'
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider'
import { OpenFeature } from '@openfeature/web-sdk'
import { createClient, type FlagClient } from '@holdfast/core'
import type { FlagServer } from '@holdfast/server'
import { recordingLogger, startServer } from './helpers'
import { startUpstream, type FakeUpstream } from './relay-fakes'

const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  await OpenFeature.clearProviders()
})

const healthy = { ofrep: () => ({ flags: [{ key: 'checkout', value: 'v2', reason: 'TARGETING_MATCH', variant: 'new', metadata: { team: 'pay' } }, { key: 'limit', value: 10, reason: 'STATIC' }] }) }
const ruleBroken = { ofrep: () => ({ flags: [{ key: 'checkout', errorCode: 'GENERAL', errorDetails: 'rules engine down' }, { key: 'limit', value: 10, reason: 'STATIC' }] }) }

async function browser(url: string): Promise<FlagClient> {
  const client = createClient({ url, context: { targetingKey: 'ann' }, storage: 'memory', refreshOnFocus: false, liveUpdates: false, logger: { warn() {}, error() {} } })
  clients.push(client)
  await client.start()
  return client
}

async function relayOn(upstream: FakeUpstream): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, logger: recordingLogger() })
}

describe('a value the relay kept through a per-flag error', () => {
  it('reaches a browser as it would from the upstream itself: the kept value, stale, with the upstream\'s errorCode', async () => {
    const upstream = await startUpstream(healthy)
    const server = await relayOn(upstream)
    const direct = await browser(upstream.url)
    const viaRelay = await browser(server.url)
    expect(viaRelay.getValue('checkout', 'v1')).toBe('v2')

    upstream.set(ruleBroken)
    await direct.refresh()
    await viaRelay.refresh()
    const expected = { value: 'v2', variant: 'new', stale: true, errorCode: 'GENERAL' }
    expect(direct.getDetails('checkout', 'v1')).toMatchObject(expected)
    // Before: errorCode undefined through the relay.
    expect(viaRelay.getDetails('checkout', 'v1')).toMatchObject(expected)
    expect(viaRelay.getDetails('limit', 0)).toMatchObject({ value: 10, stale: false })
    expect(viaRelay.getDetails('limit', 0).errorCode).toBeUndefined()

    // A browser that holds nothing yet gets the relay's kept value too (not the caller's default).
    const newcomer = await browser(server.url)
    expect(newcomer.getDetails('checkout', 'v1')).toMatchObject(expected)

    // The rule is fixed: fresh again, no code.
    upstream.set(healthy)
    await viaRelay.refresh()
    const fixed = viaRelay.getDetails('checkout', 'v1')
    expect(fixed).toMatchObject({ value: 'v2', stale: false, metadata: { team: 'pay' } })
    expect(fixed.errorCode).toBeUndefined()
    expect(fixed.metadata).toEqual({ team: 'pay' })
  })

  it('reaches the official OFREP provider as the kept value (an errorCode on the entry would make it the default)', async () => {
    const upstream = await startUpstream(healthy)
    const server = await relayOn(upstream)
    await browser(server.url)
    upstream.set(ruleBroken)
    const provider = new OFREPWebProvider({ baseUrl: server.url, cacheMode: 'disabled' })
    await OpenFeature.setContext('kept-error', { targetingKey: 'ann' })
    await OpenFeature.setProviderAndWait('kept-error', provider)
    const details = OpenFeature.getClient('kept-error').getStringDetails('checkout', 'v1')
    expect(details.value).toBe('v2')
    expect(details.flagMetadata).toMatchObject({ errorCode: 'GENERAL' })
  })
})

describe('an upstream that writes every optional field empty (errorCode "": Go, Java, no omitempty)', () => {
  it('reaches the official OFREP provider through the relay as values, not as the caller\'s defaults', async () => {
    // The official provider reads `errorCode: ""` as a failure as well: asked directly, such an
    // upstream gives it only defaults. Before, the relay passed the empty code on (and held
    // failures), so its clients got the defaults too.
    const empty = { reason: 'STATIC', variant: '', errorCode: '', errorDetails: '', metadata: null }
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'checkout', value: 'v2', ...empty }, { key: 'limit', value: 10, ...empty }] }) })
    const server = await relayOn(upstream)
    const provider = new OFREPWebProvider({ baseUrl: server.url, cacheMode: 'disabled' })
    await OpenFeature.setContext('empty-fields', { targetingKey: 'ann' })
    await OpenFeature.setProviderAndWait('empty-fields', provider)
    const client = OpenFeature.getClient('empty-fields')
    expect(client.getStringDetails('checkout', 'v1')).toMatchObject({ value: 'v2', reason: 'STATIC' })
    expect(client.getNumberValue('limit', 0)).toBe(10)
    expect((await browser(server.url)).getValue('checkout', 'v1')).toBe('v2')
    await OpenFeature.setContext('direct', { targetingKey: 'ann' })
    await OpenFeature.setProviderAndWait('direct', new OFREPWebProvider({ baseUrl: upstream.url, cacheMode: 'disabled' }))
    expect(OpenFeature.getClient('direct').getStringValue('checkout', 'v1')).toBe('v1')
  })
})
