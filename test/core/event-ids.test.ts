// Event ids on pages without `crypto.randomUUID` (plain-http origins have only getRandomValues;
// some runtimes have neither): still UUID v4, and unique, since receivers de-duplicate by id.
import { afterEach, expect, test, vi } from 'vitest'
import { uuid } from '../../packages/core/src/platform/uuid'

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const real = globalThis.crypto

afterEach(() => void vi.unstubAllGlobals())

test.each([
  ['getRandomValues only (a plain-http page)', { getRandomValues: (b: Uint8Array) => real.getRandomValues(b) }],
  ['no crypto at all', undefined],
])('%s: v4 ids, all distinct, every hex digit random', (_, crypto) => {
  vi.stubGlobal('crypto', crypto)
  const ids = Array.from({ length: 3000 }, () => uuid())
  for (const id of ids) expect(id).toMatch(V4)
  expect(new Set(ids).size).toBe(ids.length)
  // Every position other than the version digit varies (a template digit left unfilled would not).
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23 || i === 14) continue
    expect(new Set(ids.map((id) => id[i])).size, `position ${i}`).toBeGreaterThan(i === 19 ? 3 : 15)
  }
})
