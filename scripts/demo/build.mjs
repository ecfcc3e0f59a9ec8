// Builds what the demo serves: the packages (the root rollup build, so the app uses the same
// dist files users install) and the React example app (vite build into a directory of our own).
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(import.meta.url)

/** Runs the root build (`rollup -c`, what `npm run build` does) in `rootDir`; rejects on failure. */
export function buildPackages(rootDir) {
  const rollup = require.resolve('rollup/dist/bin/rollup')
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [rollup, '-c', '--silent'], { cwd: rootDir, stdio: ['ignore', 'inherit', 'inherit'] })
    child.once('error', fail)
    child.once('exit', (code, signal) =>
      code === 0 ? done() : fail(new Error(`the package build failed (${signal ?? `exit code ${code}`}); run \`npm run build\` to see why`)),
    )
  })
}

/** Builds examples/react into `outDir` with its own vite.config.ts. */
export async function buildApp(rootDir, outDir) {
  const { build } = await import('vite')
  const appDir = join(rootDir, 'examples', 'react')
  // Vite picks React's development or production build from NODE_ENV; under vitest it is 'test',
  // which would ship the 500 kB development bundle. The demo is always a production build.
  const previous = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  try {
    await build({
      root: appDir,
      configFile: join(appDir, 'vite.config.ts'),
      logLevel: 'warn',
      mode: 'production',
      build: { outDir, emptyOutDir: true },
    })
  } finally {
    if (previous === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = previous
  }
}
