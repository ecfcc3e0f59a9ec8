// The server package's modules import one another without a cycle, type imports and re-exports
// counted: a cycle makes load order decide what a module sees at start (an `undefined` constant),
// and says two modules each hold what the other needs. Before, five: body.ts and bodyText.ts,
// contextCache.ts and proxyAnswer.ts, sharedContexts.ts and dropQueue.ts, urlSource.ts and its
// parts, flagHandler.ts/flagServer.ts and unknownOptions.ts. Read with TypeScript's own scanner.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { expect, it } from 'vitest'

const SRC = fileURLToPath(new URL('../../packages/server/src/', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** The package's own modules a file imports or re-exports from (relative specifiers), as paths. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return importedFiles
    .map((f) => f.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => resolve(dirname(file), name))
    .map((base) => [`${base}.ts`, join(base, 'index.ts')].find((path) => existsSync(path)))
    .filter((path): path is string => path !== undefined)
}

/** Each cycle once, as the files around it (depth-first: a back edge closes one). */
function cycles(files: string[]): string[][] {
  const graph = new Map(files.map((file) => [file, importsOf(file)]))
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (file: string) => {
    state.set(file, 'open')
    path.push(file)
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push(path.slice(path.indexOf(next)).map((f) => relative(SRC, f)))
      else if (!state.has(next)) visit(next)
    }
    path.pop()
    state.set(file, 'done')
  }
  for (const file of files) if (!state.has(file)) visit(file)
  return found
}

it('packages/server/src has no import cycle', () => {
  const files = sources(SRC)
  expect(files.length).toBeGreaterThan(100)
  expect(cycles(files)).toEqual([])
})
