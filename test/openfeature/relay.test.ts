// CONTRACT §9 "staleness reaches the browser" through §11: behind a real relay
// (`createFlagServer({ upstream })`), an upstream outage is answered 200 from the relay's last known
// good, marked `metadata.holdfast.stale`. An OpenFeature app must hear it as PROVIDER_STALE with
// reason STALE (the request itself succeeded: nothing else would tell it), and READY again once
// the upstream is back.
import { ProviderStatus } from '@openfeature/web-sdk'
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagServer, silentLogger, type FlagServer } from '@holdfast/server'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { connect, settle } from './support'

const servers: Array<FlagServer | FaultServer> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

describe('an upstream outage behind the relay', () => {
  it('is PROVIDER_STALE with reason STALE, though every request succeeds; READY again when the upstream is back', async () => {
    const upstream = await createFaultServer(flags([{ key: 'checkout', value: true, variant: 'on', reason: 'TARGETING_MATCH' }]))
    const relay = await createFlagServer({ upstream: upstream.url, port: 0, logger: silentLogger, maxEventLoopDelayMs: 0, liveUpdates: false })
    servers.push(relay, upstream)
    const { client, provider, events } = await connect(relay.url, { targetingKey: 'alice' }, { storage: 'memory' })
    expect(client.getBooleanDetails('checkout', false)).toMatchObject({ value: true, reason: 'TARGETING_MATCH', flagMetadata: { stale: false } })

    upstream.always({ status: 503 })
    const status = await provider.client!.refresh()
    await settle()
    expect(status.error?.code).toBe('UPSTREAM_STALE')
    expect(client.providerStatus).toBe(ProviderStatus.STALE)
    expect(events).toEqual(['PROVIDER_READY', 'PROVIDER_STALE', 'PROVIDER_CONFIGURATION_CHANGED[checkout]'])
    expect(client.getBooleanDetails('checkout', false)).toMatchObject({ value: true, reason: 'STALE', flagMetadata: { stale: true } })

    upstream.always(flags([{ key: 'checkout', value: true, variant: 'on', reason: 'TARGETING_MATCH' }]))
    await provider.client!.refresh()
    await settle()
    expect(client.providerStatus).toBe(ProviderStatus.READY)
    expect(events.slice(3)).toEqual(['PROVIDER_READY', 'PROVIDER_CONFIGURATION_CHANGED[checkout]'])
    expect(client.getBooleanDetails('checkout', false)).toMatchObject({ value: true, reason: 'TARGETING_MATCH', flagMetadata: { stale: false } })
  })
})
