// @testing-library/react's CommonJS entry (what Node resolves) loads react-dom with Node's own
// `require`, which vitest's aliases cannot reach: under the react18 project it would pair React
// 18 elements with the root's React 19 renderer. Its ESM build is transformed by vitest (the
// config inlines the package), so its `react` and `react-dom` imports follow the alias. Every
// React test imports the testing library from here.
export * from '@testing-library/react/dist/@testing-library/react.esm.js'
