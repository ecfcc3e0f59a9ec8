// One fault server per test and the clients made against it, closed after each test: the scaffold
// core tests that drive a client through scripted answers share (a manual clock, a test logger,
// memory storage, no focus refresh, no live updates, jitter fixed).
import { afterEach, beforeEach } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient } from '@holdfast/core'
import { createFaultServer, type FaultServer } from './faultServer'
import { createManualClock, createTestLogger } from './clock'

export interface FaultClients {
  /** This test's server (started before it, closed after it). */
  readonly server: FaultServer
  /** A client of `server` for alice; `extra` overrides any option. Closed after the test. */
  client(extra?: Record<string, unknown>): FlagClient
}

export function useFaultClients(): FaultClients {
  let server: FaultServer | undefined
  const clients: FlagClient[] = []
  beforeEach(async () => {
    server = await createFaultServer()
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await server?.close()
  })
  return {
    get server() {
      return server!
    },
    client(extra = {}) {
      const c = createClient({
        url: server!.url,
        context: { targetingKey: 'alice' },
        storage: createMemoryStorage(),
        logger: createTestLogger(),
        clock: createManualClock(),
        random: () => 0.5,
        refreshOnFocus: false,
        liveUpdates: false,
        requestTimeoutMs: 1000,
        ...extra,
      } as never)
      clients.push(c)
      return c
    },
  }
}
