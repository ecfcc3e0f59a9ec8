// The client and server the CONTRACT §3/§4 tests (contract-s3.test.ts, contract-s4.test.ts) build:
// one real fault server per test on 127.0.0.1, clients on an injected clock, all closed after it.
import { afterEach } from 'vitest'
import { createClient, type ClientOptions, type FlagClient } from '@holdfast/core'
import { createManualClock, createTestLogger } from './clock'
import { flags, type FaultServer } from './faultServer'

export interface ContractSuite {
  /** The test's server: set it before `make()`; closed after the test. */
  server: FaultServer | undefined
  /** A client of `server` for alice: memory storage, a manual clock, a collecting logger, 300 ms timeout, no live updates. */
  make(options?: Partial<ClientOptions>): { client: FlagClient; clock: ReturnType<typeof createManualClock>; logger: ReturnType<typeof createTestLogger> }
}

/** Registers the teardown and hands the file its suite. */
export function useContractSuite(): ContractSuite {
  const clients: FlagClient[] = []
  const suite: ContractSuite = {
    server: undefined,
    make(options = {}) {
      const clock = createManualClock()
      const logger = createTestLogger()
      const client = createClient({ url: suite.server!.url, context: { targetingKey: 'alice' }, storage: 'memory', clock, logger, requestTimeoutMs: 300, liveUpdates: false, ...options } as ClientOptions)
      clients.push(client)
      return { client, clock, logger }
    },
  }
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await suite.server?.close()
    suite.server = undefined
  })
  return suite
}

/** A server that answers 304 when If-None-Match names `etag`, else 200 with `entries` and `etag`. */
export function etagServer(entries: unknown[], etag: string) {
  return (request: { headers: Record<string, unknown> }) => (request.headers['if-none-match'] === etag ? { status: 304, headers: { ETag: etag } } : flags(entries, etag))
}
