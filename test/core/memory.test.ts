// The memo of missing keys is bounded (issue 11, "one observer per reader"): an app that evaluates
// 100,000 distinct missing keys must not keep them all (unbounded, that was ~20 MB).
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

function retained(count: number): number {
  // A child process: --expose-gc for a real measurement, and no other test's heap in the way.
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(new URL('./fixtures/missingKeys.ts', import.meta.url)), String(count)],
    { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
  )
  return Number(out)
}

test('100,000 distinct missing keys evaluated retain less than 2 MB', { timeout: 90_000 }, () => {
  const bytes = retained(100_000)
  expect(bytes).toBeLessThan(2 * 1024 * 1024)
})
