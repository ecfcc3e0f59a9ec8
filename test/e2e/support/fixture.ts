// Builds test/e2e/fixture with Vite into a temp dir and serves it. The page imports
// @holdfast/react by package name, so it is bundled from packages/*/dist as an app would get it.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { build } from 'vite'
import { serveStatic, type Closable } from './servers'

const FIXTURE = fileURLToPath(new URL('../fixture', import.meta.url))

/** Builds the fixture page and serves it on 127.0.0.1; `close()` stops serving and deletes the build. */
export async function startFixture(): Promise<Closable> {
  const outDir = await mkdtemp(join(tmpdir(), 'holdfast-e2e-fixture-'))
  // Vitest sets NODE_ENV=test, and Vite decides from NODE_ENV whether this is a production build
  // (React's production bundle, the production JSX runtime). Build what users ship: production,
  // for the length of the build only.
  const nodeEnv = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  try {
    await build({
      root: FIXTURE,
      configFile: false,
      logLevel: 'warn',
      plugins: [react()],
      build: { outDir, emptyOutDir: true, minify: false, sourcemap: false },
    })
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = nodeEnv
  }
  const server = await serveStatic(outDir)
  return {
    url: server.url,
    async close() {
      await server.close()
      await rm(outDir, { recursive: true, force: true })
    },
  }
}
