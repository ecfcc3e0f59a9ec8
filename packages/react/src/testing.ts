// The public surface of `@holdfast/react/testing`: `@holdfast/core/testing` again, so a React app
// that depends on `@holdfast/react` alone (strict installs such as pnpm's) can import it.
export { createTestClient } from '@holdfast/core/testing'
export type { LoggedEvent, LoggedExposure, TestClient, TestClientOptions, TestFlagDetails } from '@holdfast/core/testing'
