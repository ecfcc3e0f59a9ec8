// @vitest-environment node
// The README's code, compiled as printed. Each block that follows a `<!-- test/readme/FILE -->`
// marker in README.md must equal that file here, and the files must compile under `strict`
// TypeScript (`tsc --noEmit -p test/readme/tsconfig.json`). Checkout.test.tsx, the README's
// "Testing your components" example, also runs as a test of its own in this project.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')

/** Every README block that is compiled, by file. */
const EXPECTED = [
  'test/readme/quickstart.ts',
  'test/readme/App.tsx',
  'test/readme/app/page.tsx',
  'test/readme/app/Flags.tsx',
  'test/readme/Checkout.test.tsx',
  'test/readme/fallback.ts',
]

function markedBlocks(): Map<string, string> {
  const blocks = new Map<string, string>()
  for (const match of readme.matchAll(/<!-- (test\/readme\/\S+) -->\n```\w+\n([\s\S]*?)```/g)) blocks.set(match[1], match[2])
  return blocks
}

const normalise = (text: string) => text.replace(/[ \t]+$/gm, '').trim()

describe('README code blocks', () => {
  const blocks = markedBlocks()

  it('marks every quickstart, the Next.js files, the testing example and the CI fallback', () => {
    expect([...blocks.keys()].sort()).toEqual([...EXPECTED].sort())
  })

  it.each(EXPECTED)('%s is printed in the README exactly as compiled', (file) => {
    expect(normalise(blocks.get(file) ?? '(no block)')).toBe(normalise(readFileSync(join(root, file), 'utf8')))
  })

  it('compiles under strict TypeScript (tsc --noEmit)', { timeout: 120_000 }, () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const result = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '-p', 'test/readme/tsconfig.json'], { cwd: root, encoding: 'utf8' })
    expect(`${result.stdout}${result.stderr}`).toBe('')
    expect(result.status).toBe(0)
  })
})
