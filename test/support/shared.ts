// The project's shared reference material (the OFREP spec, OpenFeature's Gherkin scenarios and
// the flagd-testbed flag files) lives outside this repository, in `shared/` beside the checkout
// (CI clones the repo with it there). These files are not copied in: the testbed carries no
// licence. Tests that read them find the folder here; without it they are skipped locally with a
// message, and fail under CI, where it must be present.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join, resolve } from 'node:path'

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)))

const candidates = [process.env.HOLDFAST_SHARED, join(repoRoot, '..', 'shared'), '/work/shared'].filter(
  (dir): dir is string => typeof dir === 'string' && dir !== '',
)

/** The shared folder, or undefined when it is not beside this checkout. */
export const sharedDir: string | undefined = candidates.find((dir) => existsSync(join(dir, 'ofrep', 'gherkin')))

/** The flagd-testbed folder (flag files and their Gherkin features). */
export const testbedDir: string | undefined = sharedDir && join(sharedDir, 'ofrep', 'gherkin', 'flagd-testbed')

if (!sharedDir) {
  const message = `[holdfast tests] shared/ (OFREP spec and Gherkin) not found beside the checkout; looked in: ${candidates.join(', ')}. Set HOLDFAST_SHARED to its path.`
  if (process.env.CI) throw new Error(message)
  console.warn(`${message} Tests that need it are skipped.`)
}
