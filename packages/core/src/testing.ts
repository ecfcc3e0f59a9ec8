// The public surface of `@holdfast/core/testing`: helpers for an app's own tests. A separate entry
// (and a separate build), so nothing here reaches the bundle of an app that imports `@holdfast/core`.
export { createTestClient } from './testing/testClient'
export type { LoggedEvent, LoggedExposure, TestClient, TestClientOptions, TestFlagDetails } from './testing/testClient'
