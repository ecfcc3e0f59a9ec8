// CONTRACT §4 + §9: a FLAG_NOT_FOUND entry removes that flag, in the relay's merge and in the
// browser's. The relay's answer for a context can hold a bare failure entry (an error for a flag
// it holds no value for): to a browser that answer is partial, and a partial answer keeps every
// flag it does not mention, stale. A flag the upstream removed with FLAG_NOT_FOUND in that same
// answer was then simply absent from the relay's answer, so a browser behind the relay kept it
// (stale, its old value) where a browser talking to the upstream removed it.
import { afterEach, describe, expect, it } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { recordingLogger, startServer } from './helpers'
import { startUpstream } from './relay-fakes'

const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
})

async function browser(url: string): Promise<FlagClient> {
  const client = createClient({ url, context: { targetingKey: 'ann' }, storage: 'memory', refreshOnFocus: false, liveUpdates: false, logger: { warn() {}, error() {} } })
  clients.push(client)
  await client.start()
  return client
}

const before = { ofrep: () => ({ flags: [{ key: 'checkout', value: 'v2', reason: 'STATIC' }, { key: 'legacy-banner', value: true, reason: 'STATIC' }] }) }
// The same answer removes `legacy-banner` and fails on a flag no one held a value for yet.
const after = {
  ofrep: () => ({
    flags: [
      { key: 'checkout', value: 'v2', reason: 'STATIC' },
      { key: 'legacy-banner', errorCode: 'FLAG_NOT_FOUND' },
      { key: 'new-rule', errorCode: 'GENERAL', errorDetails: 'rules engine down' },
    ],
  }),
}

describe('a flag the upstream removes with FLAG_NOT_FOUND beside a bare failure entry', () => {
  it('is removed by a browser behind the relay, as by one talking to the upstream', async () => {
    const upstream = await startUpstream(before)
    const server = await startServer({ flags: undefined, upstream: upstream.url, logger: recordingLogger() })
    const direct = await browser(upstream.url)
    const viaRelay = await browser(server.url)
    // A second browser, not asking again until the upstream has moved on past the removal.
    const sleeper = await browser(server.url)
    expect(viaRelay.getValue('legacy-banner', false)).toBe(true)

    upstream.set(after)
    await direct.refresh()
    await viaRelay.refresh()
    expect(direct.getDetails('legacy-banner', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND', source: 'default' })
    // Before: { value: true, stale: true } through the relay, the removed flag kept.
    expect(viaRelay.getDetails('legacy-banner', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND', source: 'default' })
    expect(viaRelay.getDetails('new-rule', 'x')).toMatchObject({ value: 'x', errorCode: 'GENERAL' })
    expect(viaRelay.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: false })

    // Served again from what the relay holds (no new upstream answer): still removed, for a browser that missed it too.
    const late = await browser(server.url)
    expect(late.getDetails('legacy-banner', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND' })

    // The upstream's next answer is partial again and no longer names the flag it removed: the
    // relay still does, to a browser that slept through the removal.
    upstream.set({ ofrep: () => ({ flags: [{ key: 'checkout', value: 'v3', reason: 'STATIC' }, { key: 'new-rule', errorCode: 'GENERAL' }] }) })
    await sleeper.refresh()
    expect(sleeper.getDetails('checkout', 'v1')).toMatchObject({ value: 'v3', stale: false })
    expect(sleeper.getDetails('legacy-banner', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND' })
  })
})
