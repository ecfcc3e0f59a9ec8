// The shipped declarations speak to users: no reference to documents they cannot read (the
// project's contract file), and a doc comment on every method of FlagClient.
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const types = fileURLToPath(new URL('../../packages/core/src/types.ts', import.meta.url))
// Every declaration file the packages ship (the server's and the provider's too, and the testing entries).
const built = [
  ['core', 'index'],
  ['core', 'testing'],
  ['react', 'index'],
  ['react', 'testing'],
  ['server', 'index'],
  ['openfeature', 'index'],
].map(([p, entry]) => fileURLToPath(new URL(`../../packages/${p}/dist/${entry}.d.ts`, import.meta.url)))

test('the public types cite no "CONTRACT §" (sources, and the built .d.ts when built)', () => {
  for (const file of [types, ...built.filter(existsSync)]) expect(readFileSync(file, 'utf8'), file).not.toMatch(/CONTRACT §/)
})

test('every FlagClient method has a doc comment', () => {
  const text = readFileSync(types, 'utf8')
  const body = text.slice(text.indexOf('export interface FlagClient {'))
  const end = body.indexOf('\n}\n')
  const lines = body.slice(0, end).split('\n').slice(1)
  const undocumented = lines
    .map((line, i) => ({ line, previous: lines[i - 1]?.trim() ?? '' }))
    .filter(({ line }) => /^  [a-zA-Z]+[<(]/.test(line))
    .filter(({ previous }) => !previous.endsWith('*/'))
    .map(({ line }) => line.trim())
  expect(undocumented).toEqual([])
})
