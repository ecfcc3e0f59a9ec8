// Types for the ESM build imported by ./rtl.ts: the same API as the package entry.
declare module '@testing-library/react/dist/@testing-library/react.esm.js' {
  export * from '@testing-library/react'
}
