// @vitest-environment node
// Every value a package exports (packages/*/src/index.ts) is named in that package's README, with
// what it is for: CONTRACT pins the exports, so none can go, and one that no README named
// (`createMemoryStorage`, `parseRetryAfter`, the server's building blocks) was public API a user
// found only by reading the source. Types are described by the doc comments of the `.d.ts`; the
// functions and constants are what a reader looks for by name.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

/** The value names `export { … } from` lists in `source` (type-only exports and `export *` aside). */
function valueExports(source: string): string[] {
  const names: string[] = []
  for (const [, typeOnly, list] of source.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
    if (typeOnly) continue
    for (const item of list!.split(',')) {
      const name = item.trim().split(/\s+as\s+/).pop()!
      if (name !== '' && !name.startsWith('type ')) names.push(name)
    }
  }
  return names
}

describe('every exported value is named in its package README', () => {
  for (const pkg of ['core', 'react', 'openfeature', 'server']) {
    it(`@holdfast/${pkg}`, () => {
      const readme = read(`packages/${pkg}/README.md`)
      const names = valueExports(read(`packages/${pkg}/src/index.ts`))
      expect(names.length).toBeGreaterThan(0)
      expect(names.filter((name) => !new RegExp(`\\b${name}\\b`).test(readme))).toEqual([])
    })
  }
})
