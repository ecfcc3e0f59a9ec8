// The server's interval options are a boundary like its timeouts (attacks.test.ts "timer options"):
// a heartbeat of 0, NaN, a negative or a number of seconds given as milliseconds once made the
// live-update hub ping every open stream every millisecond (or silently fall back to the default),
// and a shared store's lease of 0 renewed it in a tight loop against the store.
import { describe, expect, it } from 'vitest'
import { createFlagHandler, createMemoryStore, createStreamHub } from '@holdfast/server'
import { DEMO_FLAGS, startServer } from './helpers'

describe('interval options', () => {
  it('a heartbeat that is not a sane number of milliseconds refuses to start, naming it', async () => {
    for (const heartbeatMs of [0, Number.NaN, -5, 20, 3e9, Infinity]) {
      await expect(startServer({ liveUpdates: { heartbeatMs } })).rejects.toThrow(/invalid options: liveUpdates\.heartbeatMs: /)
    }
    await (await startServer({ liveUpdates: { heartbeatMs: 20_000 } })).close()
  })

  it('a heartbeat a client would take for a dead stream (a minute or more apart) refuses to start, saying why', async () => {
    // Holdfast clients drop a stream that sent no byte for heartbeatTimeoutMs (60 s by default), as
    // nginx drops an upstream silent for proxy_read_timeout (60 s). Before, heartbeatMs 60,000 or
    // 90,000 started: every quiet stream was dropped each minute, and every tab reconnected and
    // refetched (a 304) once a minute for as long as it was open.
    for (const heartbeatMs of [30_001, 60_000, 90_000]) {
      await expect(startServer({ liveUpdates: { heartbeatMs } })).rejects.toThrow(/liveUpdates\.heartbeatMs: .*30000.*60 s/)
    }
    expect(() => createStreamHub({ heartbeatMs: 60_000 })).toThrow(/heartbeatMs: .*30000/)
    await (await startServer({ liveUpdates: { heartbeatMs: 30_000 } })).close()
  })

  it('the other stream intervals are checked the same way', async () => {
    const bad = [
      { retryMs: -1 },
      { retryMs: Number.NaN },
      { recoveryWindowMs: -1 },
      { recoveryWindowMs: Number.NaN },
      { inactivityDelaySec: 0 },
      { inactivityDelaySec: Number.NaN },
      { maxConnections: 0 },
      { maxConnections: Number.NaN },
    ]
    for (const liveUpdates of bad) {
      const name = Object.keys(liveUpdates)[0]
      await expect(startServer({ liveUpdates }), name).rejects.toThrow(new RegExp(`invalid options: liveUpdates\\.${name}: `))
    }
    // What the README documents and the tests use still starts.
    await (await startServer({ liveUpdates: { retryMs: 500, recoveryWindowMs: 0, inactivityDelaySec: 1, maxConnections: 5 } })).close()
  })

  it('createStreamHub called directly (a host mounting the stream itself) checks the same intervals', async () => {
    // Before, only createFlagHandler's options were checked: a host's own hub took heartbeatMs 0
    // and pinged every open stream every millisecond; 20 (meant as seconds) every 20 ms.
    for (const options of [{ heartbeatMs: 0 }, { heartbeatMs: 20 }, { heartbeatMs: Number.NaN }, { retryMs: -1 }, { recoveryWindowMs: Number.NaN }, { inactivityDelaySec: 0 }, { maxConnections: 0 }]) {
      const name = Object.keys(options)[0]
      expect(() => createStreamHub(options), name).toThrow(new RegExp(`invalid options: ${name}: `))
    }
    createStreamHub().close()
    // `liveUpdates: true`, as the client's option reads, still means the defaults.
    await (await createFlagHandler({ flags: DEMO_FLAGS, liveUpdates: true as never, logger: { info() {}, warn() {}, error() {} } })).close()
    createStreamHub({ heartbeatMs: 1_000, retryMs: 500, recoveryWindowMs: 0, inactivityDelaySec: 1, maxConnections: 5 }).close()
  })

  it('a shared store lease that is not a sane number of milliseconds refuses to start, naming it', async () => {
    const upstream = 'http://127.0.0.1:9/flags.json'
    for (const leaseTtlMs of [0, Number.NaN, -1, 15]) {
      await expect(startServer({ flags: undefined, flagsUrl: upstream, sharedStore: { store: createMemoryStore(), leaseTtlMs } })).rejects.toThrow(/invalid options: sharedStore\.leaseTtlMs: /)
    }
  })
})
