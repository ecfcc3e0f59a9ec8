// The interleaving behind redis-partition's flake, forced: a relay cut off from the store asks the
// upstream (D2), the leader publishes D3 meanwhile and goes away, the relay comes back and leads
// (it takes D3), and only then does the answer it asked for while cut off come back. In the moment
// between that late D2 going into service here and its publish losing to the store's D3, the store
// connection says `connected` again (a subscription reconnecting), which writes back what the relay
// serves. Two relays in one process share a memory store; the cut-off relay's view of it is a
// wrapper that fails every call while cut and can announce `connected` when the test says so.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createFlagServer, createMemoryStore, type FlagServer, type FlagServerOptions, type SharedStore, type StoreNotice } from '@holdfast/server'
import { recordingLogger, waitFor } from './helpers'
import { role, values } from './redis-fleet'
import { booleanFlags, holdingFetch, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000 })

const open: FlagServer[] = []
afterEach(async () => {
  for (const server of open.splice(0)) await server.close()
})

/** `memory` as one relay reaches it over a network the test can cut, with `connected` on demand. */
function cuttable(memory: SharedStore) {
  let cut = false
  const listeners = new Set<(notice: StoreNotice) => void>()
  const failed = Promise.resolve({ ok: false as const, error: 'cut off (test)' })
  const store = new Proxy(memory, {
    get(target, name, receiver) {
      if (name === 'subscribe')
        return (listener: (notice: StoreNotice) => void) => {
          listeners.add(listener)
          // Notices are missed while cut, as over a broken connection.
          const off = target.subscribe((notice) => !cut && listener(notice))
          return () => (listeners.delete(listener), off())
        }
      if (name === 'status') return () => ({ ...target.status(), state: cut ? 'down' : 'up' })
      if (name === 'connected') return () => Promise.resolve(!cut)
      const value = Reflect.get(target, name, receiver)
      if (typeof value !== 'function' || name === 'open' || name === 'close') return value
      return (...args: unknown[]) => (cut ? failed : value.apply(target, args))
    },
  })
  return {
    store,
    cut: () => void (cut = true),
    restore: () => void (cut = false),
    connected: () => listeners.forEach((listener) => listener({ type: 'connected' })),
  }
}

const start = async (options: Partial<FlagServerOptions> & { fetch?: typeof fetch }) => {
  const server = await createFlagServer({ port: 0, pollIntervalSeconds: 0.2, upstreamTimeoutMs: 2000, maxEventLoopDelayMs: 0, ...options } as FlagServerOptions)
  open.push(server)
  return server
}

describe('a write-back while a late answer is losing to the store', () => {
  it('never writes the late answer over the newer copy the relay took from the store', async () => {
    // No ETag: every poll is a 200 with the document, which the test can hold back.
    const upstream = await startUpstream({ document: booleanFlags(3, 'off'), etag: false })
    const memory = createMemoryStore()
    const flagsUrl = `${upstream.url}/flags.json`
    const a = await start({ flagsUrl, sharedStore: { store: memory, leaseTtlMs: 500 }, logger: recordingLogger() })
    await waitFor(async () => (await role(a)) === 'leader', 10_000)

    const link = cuttable(memory)
    const answers = holdingFetch()
    // When the late answer (3 flags, after C took the 4 of D3) goes into service here: `connected`.
    let armed = false
    let fired = 0
    const log = recordingLogger()
    const info = log.info
    log.info = (line: string) => {
      info(line)
      if (armed && /serving definitions .*\(3 flags;/.test(line)) {
        armed = false
        fired++
        link.connected()
      }
    }
    const c = await start({
      flagsUrl,
      sharedStore: { store: link.store, leaseTtlMs: 500 },
      logger: log,
      fetch: answers.fetch,
    })
    await waitFor(async () => (await role(c)) === 'follower', 10_000)

    link.cut()
    await waitFor(async () => (await role(c)) === 'solo', 10_000)
    // C asks the upstream on its own and gets D2; the answer is held.
    upstream.set({ document: booleanFlags(3, 'on'), etag: false })
    answers.hold()
    await waitFor(() => answers.held() > 0, 5000)
    // The leader polls D3, publishes it and goes away; then the upstream goes down.
    upstream.set({ document: booleanFlags(4, 'on'), etag: false })
    const stored = async () => {
      const result = await memory.get('definitions')
      return result.ok ? (result.value?.body ?? '') : ''
    }
    await waitFor(async () => (await stored()).includes('"f3"'), 10_000)
    await a.close()
    upstream.set({ status: 503, text: 'down' })

    // Back: C leads and takes D3; then the answer it asked for while cut off comes back.
    link.restore()
    await waitFor(async () => (await role(c)) === 'leader' && 'f3' in (await values(c)).flags, 10_000)
    const before = await memory.get('definitions')
    const version = before.ok ? before.value?.version : undefined
    expect(version).toBeTypeOf('number')
    armed = true
    answers.release()
    await waitFor(() => fired === 1, 5000)

    // What a user of C sees goes back to D3, and the store never holds anything over it.
    await waitFor(async () => 'f3' in (await values(c)).flags, 5000)
    expect(await stored()).toContain('"f3"')
    const after = await memory.get('definitions')
    expect(after.ok && after.value?.version).toBe(version)
    expect(log.lines.filter((line) => /wrote|writing back/.test(line) && /fail/.test(line))).toEqual([])
  })
})
