// One Holdfast client under more than one owner: two HoldfastWebProviders given the same client
// (two domains), or an app that switches the client it passed in. A client holds one user; when
// someone else switches it, an OpenFeature domain whose context still names the previous user must
// get its defaults, never the new user's values, and its track() must not be put on that user.
import { ErrorCode, OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createClient } from '@holdfast/core'
import { createFaultServer, flags, type RecordedRequest } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { settle } from './support'

let domains = 0

// Flags answer with the user they were asked for; the events URL accepts every batch.
async function perUserServer() {
  return createFaultServer((request: RecordedRequest) =>
    request.path.startsWith('/events') ? { status: 202, body: {} } : flags([{ key: 'who', value: String(request.body?.context?.targetingKey) }]),
  )
}

function sharedClient(url: string, targetingKey: string) {
  return createClient({
    url,
    context: { targetingKey },
    storage: 'memory',
    storageName: uniqueStorageName('shared-of'),
    refreshOnFocus: false,
    clock: createManualClock(),
    logger: createTestLogger(),
    events: { url: `${url}/events`, exposures: false },
  })
}

function sentEvents(requests: RecordedRequest[]): Array<{ name: string; targetingKey?: string }> {
  return requests.filter((r) => r.path.startsWith('/events')).flatMap((r) => r.body.events)
}

describe('a client shared by two owners', () => {
  it("two providers over one client: the first domain never gets the second domain's user's values, nor its events", async () => {
    const fault = await perUserServer()
    const shared = sharedClient(fault.url, 'alice')
    try {
      const a = `shared-a-${++domains}`
      const b = `shared-b-${domains}`
      await OpenFeature.setProviderAndWait(a, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }), { targetingKey: 'alice' })
      expect(OpenFeature.getClient(a).getStringValue('who', 'DEFAULT')).toBe('alice')

      // A second domain binds its own provider over the same client, for bob: the client is now bob's.
      await OpenFeature.setProviderAndWait(b, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }), { targetingKey: 'bob' })
      await settle()
      expect(OpenFeature.getClient(b).getStringValue('who', 'DEFAULT')).toBe('bob')
      // Domain a still says alice: bob's value is not hers.
      const details = OpenFeature.getClient(a).getStringDetails('who', 'DEFAULT')
      expect(details).toMatchObject({ value: 'DEFAULT', errorCode: ErrorCode.INVALID_CONTEXT })

      OpenFeature.getClient(a).track('alice-clicked')
      OpenFeature.getClient(b).track('bob-clicked')
      await shared.flush()
      const sent = sentEvents(fault.requests)
      expect(sent.map((e) => `${e.name}:${e.targetingKey}`)).toEqual(['bob-clicked:bob'])
    } finally {
      await shared.close()
      await fault.close()
    }
  })

  it('the app switches the client it passed in: OpenFeature serves defaults until its own context names that user', async () => {
    const fault = await perUserServer()
    const shared = sharedClient(fault.url, 'alice')
    try {
      const domain = `shared-${++domains}`
      await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }), { targetingKey: 'alice' })
      const client = OpenFeature.getClient(domain)

      await shared.setContext({ targetingKey: 'carol' })
      await settle()
      expect(client.getStringDetails('who', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', errorCode: ErrorCode.INVALID_CONTEXT })

      await OpenFeature.setContext(domain, { targetingKey: 'carol' })
      expect(client.getStringDetails('who', 'DEFAULT')).toMatchObject({ value: 'carol' })
      expect(client.getStringDetails('who', 'DEFAULT').errorCode).toBeUndefined()
    } finally {
      await shared.close()
      await fault.close()
    }
  })

  it('a provider over a client passed in with an empty OpenFeature context serves that client’s user', async () => {
    const fault = await perUserServer()
    const shared = sharedClient(fault.url, 'dave')
    try {
      const domain = `shared-${++domains}`
      await OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }))
      expect(OpenFeature.getClient(domain).getStringValue('who', 'DEFAULT')).toBe('dave')
    } finally {
      await shared.close()
      await fault.close()
    }
  })

  it('a client passed in that the app already closed: setProviderAndWait rejects and says why, never READY with nothing fetched', async () => {
    const fault = await perUserServer()
    const shared = sharedClient(fault.url, 'frank')
    try {
      await shared.close()
      const domain = `shared-${++domains}`
      // Before: READY, every flag the caller's default (reason DEFAULT, no error) for good, and no request ever sent.
      await expect(OpenFeature.setProviderAndWait(domain, new HoldfastWebProvider({ client: shared, logger: createTestLogger() }), { targetingKey: 'frank' })).rejects.toThrow(/closed/)
      expect(OpenFeature.getClient(domain).providerStatus).toBe('ERROR')
      expect(OpenFeature.getClient(domain).getStringValue('who', 'DEFAULT')).toBe('DEFAULT')
      expect(fault.requests.length).toBe(0)
    } finally {
      await fault.close()
    }
  })
})
