// @testing-library/react's CommonJS entry (what Node resolves) loads react-dom with Node's own
// `require`, which vitest's aliases cannot reach: under the react18 project it would pair React
// 18 elements with the root's React 19 renderer. Its ESM build is transformed by vitest (the
// config inlines the package), so its `react` and `react-dom` imports follow the alias. Every
// React test imports the testing library from here.
import { configure } from '@testing-library/react/dist/@testing-library/react.esm.js'

export * from '@testing-library/react/dist/@testing-library/react.esm.js'

// `waitFor` and `findBy*` wait for what a user would see, which comes after a real request to a
// real server and an IndexedDB read (the client reads its cache before it asks the network). The
// library's default bound, 1 s, is a wall-clock guess: on a loaded 2-core machine the first
// client of a file took 1.0-1.6 s from render to its request (strictmode.test.tsx failed 2 runs
// in 10 with `expected 'DEFAULT' to be 'hello'`). The bound only decides how long a test that is
// going to fail waits; a passing one goes on as soon as the condition holds. The React projects'
// testTimeout in vitest.config.ts is above it, so a timeout still fails with the waitFor's message.
configure({ asyncUtilTimeout: 10_000 })
