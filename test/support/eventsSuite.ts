// The setup the core event suites share: a real events receiver on 127.0.0.1 per test, and a
// `make` that builds a client on it (its own IndexedDB database, a test logger, a fast backoff)
// and closes it after the test.
import { afterEach, beforeEach } from 'vitest'
import { createClient, type ClientOptions, type EventOptions, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, type EventsReceiver } from './eventsReceiver'
import { createTestLogger, uniqueStorageName } from './clock'

export interface EventsSuiteDefaults {
  /** Prefix of each client's IndexedDB database name. */
  storage: string
  requestTimeoutMs: number
  backoff: { baseMs: number; maxMs: number }
}

export interface EventsSuite {
  /** This test's receiver (a new one per test). */
  readonly receiver: EventsReceiver
  /** A client on this test's receiver as `alice`, closed after the test. */
  make(events?: Partial<EventOptions>, options?: Partial<ClientOptions>): FlagClient
  /** Leaves `client` unclosed after the test (a page that crashed). */
  forget(client: FlagClient): void
  /** Starts a new receiver, for a test that closed its own (the clean-up closes the new one). */
  restartReceiver(): Promise<void>
}

/** Registers the per-test receiver and client clean-up; call at the top of a test file. */
export function useEventsSuite(defaults: EventsSuiteDefaults): EventsSuite {
  let receiver: EventsReceiver | undefined
  const clients: FlagClient[] = []
  beforeEach(async () => {
    receiver = await startEventsReceiver()
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await receiver?.close()
  })
  return {
    get receiver() {
      if (!receiver) throw new Error('the events receiver starts in beforeEach')
      return receiver
    },
    make(events = {}, options = {}) {
      const client = createClient({
        url: this.receiver.flagsUrl,
        context: { targetingKey: 'alice' },
        storageName: uniqueStorageName(defaults.storage),
        logger: createTestLogger(),
        requestTimeoutMs: defaults.requestTimeoutMs,
        ...options,
        events: { url: this.receiver.url, backoff: defaults.backoff, ...events },
      })
      clients.push(client)
      return client
    },
    forget(client) {
      clients.splice(clients.indexOf(client), 1)
    },
    async restartReceiver() {
      receiver = await startEventsReceiver()
    },
  }
}
