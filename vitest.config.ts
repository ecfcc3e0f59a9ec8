import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

// Tests import the public entry points by package name, as users do; the aliases point them at
// the sources so `vitest` needs no build. The built artifacts are tested by `npm run check:packages`.
// The `/testing` entries come first: an alias also matches `<name>/<subpath>`, first match wins.
const packages = {
  '@holdfast/core/testing': here('./packages/core/src/testing.ts'),
  '@holdfast/react/testing': here('./packages/react/src/testing.ts'),
  '@holdfast/core': here('./packages/core/src/index.ts'),
  '@holdfast/react': here('./packages/react/src/index.ts'),
  '@holdfast/server': here('./packages/server/src/index.ts'),
  '@holdfast/openfeature': here('./packages/openfeature/src/index.ts'),
}

// The React suite runs twice: against the root's React 19 and against React 18, which lives in
// the private workspace test/react18-env (npm cannot hoist two majors of one package).
const react18 = {
  react: here('./test/react18-env/node_modules/react'),
  'react-dom': here('./test/react18-env/node_modules/react-dom'),
}

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias: packages },
        // testTimeout well above the bounds the tests wait with (waitForRequests 10 s, waitFor 5–10 s):
        // at vitest's default 5 s, a wait that passed in 4.9 s on a loaded CI machine still failed
        // as "Test timed out", and a real failure hid its own message behind that one.
        test: { name: 'core', include: ['test/core/**/*.test.ts'], environment: 'node', setupFiles: ['test/support/setup.ts'], testTimeout: 20_000 },
      },
      {
        resolve: { alias: packages },
        test: { name: 'server', include: ['test/server/**/*.test.ts'], environment: 'node', testTimeout: 20_000 },
      },
      {
        resolve: { alias: packages },
        // testTimeout above the 10 s bound test/react/rtl.ts gives waitFor/findBy (see there).
        test: { name: 'react19', include: ['test/react/**/*.test.{ts,tsx}'], environment: 'jsdom', setupFiles: ['test/support/setup.ts'], testTimeout: 20_000 },
      },
      {
        resolve: { alias: { ...packages, ...react18 }, dedupe: ['react', 'react-dom'] },
        test: {
          name: 'react18',
          include: ['test/react/**/*.test.{ts,tsx}'],
          environment: 'jsdom',
          setupFiles: ['test/support/setup.ts'],
          testTimeout: 20_000,
          server: { deps: { inline: ['@testing-library/react'] } },
        },
      },
      {
        // @holdfast/openfeature with the official @openfeature/web-sdk and react-sdk (jsdom for the React tests).
        resolve: { alias: packages },
        test: {
          name: 'openfeature',
          include: ['test/openfeature/**/*.test.{ts,tsx}'],
          exclude: ['test/openfeature/e2e/**'],
          environment: 'jsdom',
          setupFiles: ['test/support/setup.ts'],
          testTimeout: 20_000,
        },
      },
      {
        // HoldfastWebProvider in headless Chromium (the page bundles the built packages).
        resolve: { alias: packages },
        test: {
          name: 'openfeature-e2e',
          include: ['test/openfeature/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The README's code: its blocks compiled as printed, and its example test run as a user's would.
        resolve: { alias: packages },
        test: { name: 'readme', include: ['test/readme/**/*.test.{ts,tsx}'], environment: 'jsdom' },
      },
      {
        resolve: { alias: packages },
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
