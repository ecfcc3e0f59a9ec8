// Builds what the demo serves: the packages (the root rollup build, so the app uses the same
// dist files users install) and the React example app (vite build into a directory of our own).
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(import.meta.url)

// The build steps running now (rollup, the snapshot CLI): a demo stopped while it starts ends them
// (stopBuilds), so none outlives it holding a core for another 15 s.
const running = new Set()

function track(child) {
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

/** Ends the build steps in flight (SIGTERM); each one's promise then rejects. */
export function stopBuilds() {
  for (const child of running) child.kill('SIGTERM')
}

/** Runs the root build (`rollup -c`, what `npm run build` does) in `rootDir`; rejects on failure. */
export function buildPackages(rootDir) {
  const rollup = require.resolve('rollup/dist/bin/rollup')
  return new Promise((done, fail) => {
    const child = track(spawn(process.execPath, [rollup, '-c', '--silent'], { cwd: rootDir, stdio: ['ignore', 'inherit', 'inherit'] }))
    child.once('error', fail)
    child.once('exit', (code, signal) =>
      code === 0 ? done() : fail(new Error(`the package build failed (${signal ?? `exit code ${code}`}); run \`npm run build\` to see why`)),
    )
  })
}

/**
 * `holdfast-server snapshot --upstream URL --context JSON --out FILE` with the built CLI: the
 * values an OFREP server gives `context`, as a `Bootstrap` for the client's `fallback`. The CLI
 * refuses to write an empty, invalid or shrunken result (exit code 1); this rejects with its output.
 */
export function snapshotValues(rootDir, { upstream, context, out }) {
  const bin = join(rootDir, 'packages', 'server', 'dist', 'bin.js')
  const args = [bin, 'snapshot', '--upstream', upstream, '--context', JSON.stringify(context), '--out', out]
  return new Promise((done, fail) => {
    const child = track(spawn(process.execPath, args, { cwd: rootDir, stdio: ['ignore', 'pipe', 'pipe'] }))
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    child.once('error', fail)
    child.once('exit', (code, signal) =>
      code === 0 ? done() : fail(new Error(`holdfast-server snapshot failed (${signal ?? `exit code ${code}`}):\n${output.trim()}`)),
    )
  })
}

/**
 * Builds examples/react into `outDir` with its own vite.config.ts. `fallback` (a `Bootstrap`, e.g.
 * from `snapshotValues`) is built into the app as its first-visit fallback; without it the app has none.
 */
export async function buildApp(rootDir, outDir, { fallback } = {}) {
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
      define: { __HOLDFAST_DEMO_FALLBACK__: JSON.stringify(fallback ?? null) },
    })
  } finally {
    if (previous === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = previous
  }
}
