// The merge rules of CONTRACT §4 and the precedence of §5 as pure functions: no server, no clock.
import { describe, expect, test } from 'vitest'
import { confirmAll, layerSnapshot, markStale, mergeResponse, type FlagMap } from '../../packages/core/src/flags/merge'

const T0 = 1_000
const T1 = 2_000

function held(): FlagMap {
  return mergeResponse(new Map(), [
    { key: 'a', value: true, variant: 'on' },
    { key: 'b', value: 'blue' },
    { key: 'c', value: 3 },
  ], { now: T0 }).flags
}

describe('mergeResponse', () => {
  test('a success entry sets the flag from the network with updatedAt now', () => {
    const flags = held()
    expect(flags.get('a')).toMatchObject({ value: true, variant: 'on', source: 'network', stale: false, updatedAt: T0 })
  })

  test('an identical re-confirmation keeps the same object and updatedAt', () => {
    const first = held()
    const { flags } = mergeResponse(first, [
      { key: 'a', value: true, variant: 'on' },
      { key: 'b', value: 'blue' },
      { key: 'c', value: 3 },
    ], { now: T1 })
    for (const key of ['a', 'b', 'c']) expect(flags.get(key)).toBe(first.get(key))
  })

  test('changed content moves updatedAt; unchanged flags keep it', () => {
    const { flags } = mergeResponse(held(), [
      { key: 'a', value: true, variant: 'on' },
      { key: 'b', value: 'green' },
      { key: 'c', value: 3 },
    ], { now: T1 })
    expect(flags.get('a')?.updatedAt).toBe(T0)
    expect(flags.get('b')).toMatchObject({ value: 'green', updatedAt: T1 })
  })

  test('FLAG_NOT_FOUND removes the flag', () => {
    const { flags } = mergeResponse(held(), [{ key: 'a', errorCode: 'FLAG_NOT_FOUND' }, { key: 'b', value: 'blue' }, { key: 'c', value: 3 }], { now: T1 })
    expect(flags.has('a')).toBe(false)
  })

  test('another failure entry keeps the last known good value, stale, with the code', () => {
    const { flags, clean } = mergeResponse(held(), [{ key: 'a', errorCode: 'PARSE_ERROR' }, { key: 'b', value: 'blue' }, { key: 'c', value: 3 }], { now: T1 })
    expect(clean).toBe(false)
    expect(flags.get('a')).toMatchObject({ value: true, variant: 'on', stale: true, errorCode: 'PARSE_ERROR', source: 'network', updatedAt: T0 })
  })

  test('a failure entry without a previous value holds only the code', () => {
    const { flags } = mergeResponse(new Map(), [{ key: 'x', errorCode: 'GENERAL', errorDetails: 'db down' }], { now: T1 })
    expect(flags.get('x')).toMatchObject({ errorCode: 'GENERAL', stale: true })
    expect(flags.get('x')?.value).toBeUndefined()
  })

  test('absent flags go only when the response is clean', () => {
    const clean = mergeResponse(held(), [{ key: 'a', value: true, variant: 'on' }], { now: T1 })
    expect([...clean.flags.keys()]).toEqual(['a'])
    const partial = mergeResponse(held(), [{ key: 'a', value: true, variant: 'on' }, { key: 'z', errorCode: 'GENERAL' }], { now: T1 })
    expect(partial.flags.get('b')).toMatchObject({ value: 'blue', stale: true })
    expect(partial.flags.get('c')).toMatchObject({ value: 3, stale: true })
  })

  test('unreadable entries make a response partial', () => {
    const { flags, clean } = mergeResponse(held(), [{ key: 'a', value: true, variant: 'on' }], { now: T1, skipped: 1 })
    expect(clean).toBe(false)
    expect(flags.get('b')).toMatchObject({ value: 'blue', stale: true })
  })

  test('a clean empty response while flags are held is rejected unless accepted', () => {
    const h = held()
    const rejected = mergeResponse(h, [], { now: T1 })
    expect(rejected.rejected).toBe('EMPTY_RESPONSE')
    expect(rejected.flags).toBe(h)
    expect(mergeResponse(h, [], { now: T1, acceptEmpty: true }).flags.size).toBe(0)
    expect(mergeResponse(new Map(), [], { now: T1 }).rejected).toBeUndefined()
  })

  test('fallback values are not kept once a response applies', () => {
    const withFallback = layerSnapshot(new Map(), [{ key: 'f', value: 1 }, { key: 'a', value: false }], 'fallback', undefined)
    const partial = mergeResponse(withFallback, [{ key: 'a', errorCode: 'GENERAL' }], { now: T1 })
    expect(partial.flags.has('f')).toBe(false)
    // The fallback's `a` is not a last known good value from the server.
    expect(partial.flags.get('a')?.value).toBeUndefined()
  })

  test('keys such as __proto__ and constructor are ordinary keys', () => {
    const { flags } = mergeResponse(new Map(), [{ key: '__proto__', value: true }, { key: 'constructor', value: 'x' }], { now: T0 })
    expect(flags.get('__proto__')?.value).toBe(true)
    expect(flags.get('constructor')?.value).toBe('x')
  })
})

describe('confirmAll and markStale', () => {
  test('a 304 confirms every flag as network and fresh, and drops fallback', () => {
    const cached = layerSnapshot(layerSnapshot(new Map(), [{ key: 'f', value: 1 }], 'fallback', undefined), [{ key: 'a', value: true }], 'cache', T0)
    const flags = confirmAll(markStale(cached))
    expect(flags.get('a')).toMatchObject({ source: 'network', stale: false, value: true })
    expect(flags.has('f')).toBe(false)
  })

  test('markStale changes no value and returns the same map when already stale', () => {
    const stale = markStale(held())
    expect(stale.get('b')).toMatchObject({ value: 'blue', stale: true })
    expect(markStale(stale)).toBe(stale)
  })
})

describe('layerSnapshot precedence', () => {
  test('network > newer of bootstrap and cache > fallback', () => {
    let flags: FlagMap = layerSnapshot(new Map(), [{ key: 'x', value: 'fallback' }, { key: 'y', value: 'fallback' }, { key: 'z', value: 'fallback' }], 'fallback', undefined)
    flags = layerSnapshot(flags, [{ key: 'x', value: 'bootstrap' }, { key: 'y', value: 'bootstrap' }], 'bootstrap', T1)
    // An older cache loses to the newer bootstrap; it still beats fallback where bootstrap is silent.
    flags = layerSnapshot(flags, [{ key: 'x', value: 'old cache' }, { key: 'z', value: 'old cache' }], 'cache', T0)
    expect(flags.get('x')).toMatchObject({ value: 'bootstrap', source: 'bootstrap' })
    expect(flags.get('y')).toMatchObject({ value: 'bootstrap', source: 'bootstrap' })
    expect(flags.get('z')).toMatchObject({ value: 'old cache', source: 'cache' })
    // A newer cache beats the bootstrap.
    flags = layerSnapshot(flags, [{ key: 'y', value: 'new cache' }], 'cache', T1 + 1)
    expect(flags.get('y')).toMatchObject({ value: 'new cache', source: 'cache' })
    // Nothing beats the network.
    flags = mergeResponse(flags, [{ key: 'x', value: 'net' }, { key: 'y', value: 'net' }, { key: 'z', value: 'net' }], { now: T1 + 2 }).flags
    flags = layerSnapshot(flags, [{ key: 'x', value: 'late cache' }], 'cache', T1 + 100)
    expect(flags.get('x')).toMatchObject({ value: 'net', source: 'network' })
  })

  // CONTRACT §3: `updatedAt` is when this content was first received; a re-confirmation does not
  // move it. A page served from a CDN with yesterday's bootstrap (banner "sale", rendered at T0)
  // hydrates showing updatedAt T0; the cache this browser wrote this morning (first received "sale"
  // at T1) is newer and wins. Before, the flag's updatedAt then jumped forward to T1 for the same value.
  test('the same content from a snapshot that wins keeps the earlier updatedAt of the one it beats', () => {
    const boot = layerSnapshot(new Map(), [{ key: 'banner', value: 'sale' }, { key: 'limit', value: 5 }], 'bootstrap', T0)
    const flags = layerSnapshot(boot, [{ key: 'banner', value: 'sale', updatedAt: T1 }, { key: 'limit', value: 6, updatedAt: T1 }], 'cache', T1 + 10)
    expect(flags.get('banner')).toMatchObject({ value: 'sale', source: 'cache', updatedAt: T0 })
    // Other content: the winner's own time.
    expect(flags.get('limit')).toMatchObject({ value: 6, source: 'cache', updatedAt: T1 })
  })
})
