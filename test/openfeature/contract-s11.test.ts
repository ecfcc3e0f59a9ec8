// CONTRACT §11 through the official web SDK: every evaluation's `flagMetadata` carries Holdfast's
// `source`, `updatedAt` and `stale`, including when the caller's default is all there is (nothing
// held after a failed first attempt, or after a switch whose first attempt failed), which is when
// an app most needs to tell "the server said so" from "nothing known".
import { OpenFeature } from '@openfeature/web-sdk'
import { describe, expect, it } from 'vitest'
import { createFaultServer, flags } from '../support/faultServer'
import { connect, settle } from './support'

describe('flagMetadata says where a value came from, also when nothing is held (§11)', () => {
  it('a first visit while the server is down: the default, with source default and stale', async () => {
    const fault = await createFaultServer({ status: 503 })
    try {
      const { client } = await connect(fault.url, { targetingKey: 'u' }, { storage: 'memory' })
      await settle()
      const details = client.getBooleanDetails('checkout', true)
      expect(details.value).toBe(true)
      expect(details.flagMetadata).toMatchObject({ source: 'default' })
      expect(typeof details.flagMetadata.stale).toBe('boolean')
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
      expect(details.flagMetadata).toMatchObject({ source: 'default' })
    } finally {
      await fault.close()
    }
  })
})
