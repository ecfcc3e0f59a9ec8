// @vitest-environment node
// Every other TypeScript block of the READMEs (the root README's blocks that readme.test.ts does not
// hold as files, each package's README, the OpenFeature example's, and the docs/ pages that hold
// code), compiled as printed against the built packages (their `exports` maps and `.d.ts`, as a
// user's project resolves them) under `strict`. A block may use names it does not define (the user,
// an Express `app`): the stand-ins below declare them, in front of the block, with the types the
// real thing has.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const README_FILES = [
  'README.md',
  'packages/core/README.md',
  'packages/react/README.md',
  'packages/openfeature/README.md',
  'packages/server/README.md',
  'examples/openfeature-react/README.md',
  'docs/server.md',
]

const nodeHost = (req: string) =>
  `declare const app: { use(path: string, handler: (${req}, res: import('node:http').ServerResponse, next?: () => void) => void): void }\n`
const http = "import('node:http').IncomingMessage"

/** Stand-ins for the names a block uses without defining, by `file#n` (the n-th TS block of the file, from 1). */
const STAND_INS: Record<string, string> = {
  'README.md#1': '', // quickstart.ts (readme.test.ts)
  'README.md#2': '', // App.tsx
  'README.md#3': '', // app/page.tsx
  'README.md#4': '', // app/Flags.tsx
  'README.md#5': '', // Checkout.test.tsx
  'README.md#6': 'declare const user: { id: string; plan: string }\ndeclare const other: { id: string }\n',
  'README.md#7': '',
  'README.md#8': '',
  'README.md#9': '', // fallback.ts
  'packages/core/README.md#1': 'declare const user: { id: string }\n',
  'packages/react/README.md#1':
    "import type { Bootstrap } from '@holdfast/react'\ndeclare const user: { id: string }\ndeclare const bootstrap: Bootstrap\ndeclare function App(): null\n",
  'packages/openfeature/README.md#1': 'declare const user: { id: string }\n',
  'packages/server/README.md#1': '',
  'packages/server/README.md#2': nodeHost(`req: ${http}`),
  'packages/server/README.md#3': '',
  'examples/openfeature-react/README.md#1': '',
  'docs/server.md#1': // mounting the handler (moved from the root README)
    nodeHost(`req: ${http}`) +
    `declare const fastify: { all(path: string, handler: (request: { raw: ${http}; body: unknown }, reply: { hijack(): void; raw: import('node:http').ServerResponse }) => void): void }\n`,
}

interface Block {
  key: string
  file: string
  line: number
  lang: string
  code: string
  /** Held as a file and compiled by readme.test.ts (a `<!-- test/readme/FILE -->` marker above it). */
  marked: boolean
}

function blocks(): Block[] {
  const found: Block[] = []
  for (const file of README_FILES) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n')
    let n = 0
    for (let i = 0; i < lines.length; i++) {
      const open = /^```(ts|tsx|js|jsx)\s*$/.exec(lines[i])
      if (!open) continue
      const end = lines.findIndex((line, j) => j > i && line.startsWith('```'))
      n++
      found.push({
        key: `${file}#${n}`,
        file,
        line: i + 1,
        lang: open[1],
        code: lines.slice(i + 1, end).join('\n'),
        marked: /<!-- test\/readme\//.test(lines[i - 1] ?? ''),
      })
      i = end
    }
  }
  return found
}

describe('README code samples', () => {
  const all = blocks()

  it('every TypeScript block of the READMEs is listed here (a new one needs its stand-ins)', () => {
    expect(all.map((block) => block.key).sort()).toEqual(Object.keys(STAND_INS).sort())
  })

  it('compile under strict TypeScript against the built packages', { timeout: 120_000 }, () => {
    // Inside the repository, so that node_modules resolves the packages (and next, the OpenFeature SDKs) as in an app.
    const dir = join(root, 'node_modules/.cache/holdfast-readme-samples')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const names = new Map<string, Block>()
    for (const block of all.filter((b) => !b.marked)) {
      const tsx = block.lang === 'tsx' || block.lang === 'jsx' || /<[A-Z]\w*[\s/>]/.test(block.code)
      const name = `${block.key.replace(/[^\w]+/g, '_')}.${tsx ? 'tsx' : 'ts'}`
      names.set(name, block)
      let code = block.code
      // The example's README imports its App.tsx as the file beside it would.
      if (block.file.startsWith('examples/')) code = code.replace(/from '\.\/(\w+)'/g, (_, m: string) => `from '${relative(dir, join(root, block.file, '..', m))}'`)
      writeFileSync(join(dir, name), `${STAND_INS[block.key] ?? ''}${code}\nexport {}\n`)
    }
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: relative(dir, join(root, 'tsconfig.base.json')),
        // No `paths`: the packages resolve through node_modules to their built `exports`, as a user's do.
        compilerOptions: { strict: true, noEmit: true, types: ['node'], paths: {} },
        include: ['./*.ts', './*.tsx'],
      }),
    )
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const result = spawnSync(process.execPath, [tsc, '--noEmit', '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8' })
    // Name the README line of each error, not the scratch file.
    const output = `${result.stdout}${result.stderr}`.replace(/^(\S+\.tsx?)\((\d+),\d+\)/gm, (all, file: string, line: string) => {
      const block = names.get(file)
      if (!block) return all
      const offset = (STAND_INS[block.key] ?? '').split('\n').length - 1
      return `${block.file}:${block.line + Number(line) - offset}`
    })
    rmSync(dir, { recursive: true, force: true })
    expect(output).toBe('')
    expect(result.status).toBe(0)
  })
})
