// A copy of the repository as `git clone && npm install` leaves it, for tests that run the
// repository's own scripts (npm run server, npm run demo) without touching its dist/.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

/**
 * A clone as `git clone && npm install` leaves it: sources, configs and scripts copied, no dist/;
 * node_modules links to the real one except @holdfast/*, which point at the copy's packages
 * (as npm's workspace links do), so nothing can pick up the repository's own dist/.
 */
export function makeClone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-clone-'))
  for (const file of ['package.json', 'rollup.config.mjs', 'tsconfig.base.json', 'scripts', 'examples/flags.json']) {
    cpSync(join(root, file), join(dir, file), { recursive: true })
  }
  for (const name of readdirSync(join(root, 'packages'))) {
    cpSync(join(root, 'packages', name), join(dir, 'packages', name), {
      recursive: true,
      filter: (source) => !/[\\/](dist|node_modules)$/.test(source),
    })
  }
  mkdirSync(join(dir, 'node_modules', '@holdfast'), { recursive: true })
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === '@holdfast' || name === '.bin' || name.startsWith('.')) continue
    symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name))
  }
  for (const name of readdirSync(join(dir, 'packages'))) {
    symlinkSync(join(dir, 'packages', name), join(dir, 'node_modules', '@holdfast', name))
  }
  return dir
}
