// CONTRACT §10 through §11: an app on OpenFeature against a server that advertises a stream (the
// default, `liveUpdates` true in Node too) hears of a flag edit as PROVIDER_CONFIGURATION_CHANGED
// naming that flag, within 2 s and with no refresh or polling of its own; replacing the provider
// closes the stream its client held (a Node app that swaps providers must not pile up connections).
import { OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { DEMO_FLAGS, startServer } from '../server/helpers'
import { connect, until } from './support'

describe('live updates through the provider', () => {
  it('a flag edit reaches the OpenFeature client within 2 s as CONFIGURATION_CHANGED naming it; onClose closes the stream', async () => {
    const server = await startServer()
    // The real clock: in a page (jsdom here) the first stream opens a second after the first answer.
    const { client, events } = await connect(server.url, { targetingKey: 'user-1' }, { storage: 'memory', clock: undefined })
    expect(client.getStringValue('greeting', 'default')).toBe('Hi')
    await until(() => server.handler.stream!.connections() === 1, 'the stream opened by default')
    const before = events.length

    const editedAt = Date.now()
    server.setFlags({ ...DEMO_FLAGS, flags: { ...DEMO_FLAGS.flags, greeting: { ...DEMO_FLAGS.flags.greeting, defaultVariant: 'hello' } } })
    await until(() => events.length > before, 'an event after the edit')
    expect(Date.now() - editedAt).toBeLessThan(2000)
    expect(events.slice(before)).toEqual(['PROVIDER_CONFIGURATION_CHANGED[greeting]'])
    expect(client.getStringDetails('greeting', 'default')).toMatchObject({ value: 'Hello', reason: 'STATIC', flagMetadata: { source: 'network', stale: false } })

    await OpenFeature.clearProviders()
    await until(() => server.handler.stream!.connections() === 0, 'the stream closed with the provider')
  })
})
