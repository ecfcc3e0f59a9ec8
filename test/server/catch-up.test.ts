// The catch-up's slots (ofrep/catchUp.ts) are held by requests; a request whose client left must
// give its slot back at once, not after the whole wait.
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { FlagSource } from '../../packages/server/src/flags/flagSource'
import { createCatchUp } from '../../packages/server/src/ofrep/catchUp'

function fakeSource(): FlagSource {
  return { current: () => ({ version: 'v1' }), subscribe: () => () => {} } as unknown as FlagSource
}

describe('the catch-up', () => {
  it('gives a slot back when the client of the request held in it leaves', async () => {
    // Before: a refetch closed right after its body still held its slot for the whole 2 s, so
    // requests sent and dropped (no socket kept open) filled every slot, and a real tab's refetch
    // was answered at once from the old version, its notice spent.
    const catchUp = createCatchUp(fakeSource(), 60_000)
    const held: Array<Promise<void>> = []
    for (let i = 0; i < 10_000; i++) {
      const client = new EventEmitter()
      const waited = catchUp.wait(`made-up-${i}`, client)
      expect(waited).toBeDefined()
      held.push(waited!)
      client.emit('close')
    }
    // Each left request's wait is over (the route answers nobody).
    await Promise.all(held)
    expect(catchUp.wait('v2', new EventEmitter())).toBeDefined()
    catchUp.close()
  })

  it('a request whose client already left is not held', () => {
    const catchUp = createCatchUp(fakeSource(), 60_000)
    expect(catchUp.wait('v2', Object.assign(new EventEmitter(), { destroyed: true }))).toBeUndefined()
    catchUp.close()
  })
})
