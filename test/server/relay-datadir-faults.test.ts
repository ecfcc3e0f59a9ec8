// A data dir on a disk that fails (CONTRACT §9 persistence; docs/relay.md "A data dir that cannot be read or
// written … never stops the relay"): the disk is injected through the generation-store seam, so a
// write can fail with EIO for a while, or hang like a stuck network mount. The upstream is a real
// fake server on 127.0.0.1.
import { describe, expect, it, vi } from 'vitest'
import type { GenerationStore, RelaySource } from '@holdfast/server'
import { waitFor } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor, type FakeUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000 })

/** A generation store in memory whose writes can be made to fail (EIO) or never finish. */
function faultyDisk() {
  const generations: string[] = []
  let mode: 'ok' | 'fail' | 'hang' = 'ok'
  const store: GenerationStore = {
    dir: '/faulty-disk',
    async loadNewest(accept) {
      for (let i = generations.length - 1; i >= 0; i--) {
        if (!accept || accept(generations[i]!)) return { loaded: { number: i + 1, path: `/faulty-disk/gen-${i + 1}.json`, payload: generations[i]! }, skipped: [] }
      }
      return { skipped: [] }
    },
    save(payload) {
      if (mode === 'hang') return new Promise<number>(() => {})
      if (mode === 'fail') return Promise.reject(Object.assign(new Error('i/o error'), { code: 'EIO' }))
      generations.push(payload)
      return Promise.resolve(generations.length)
    },
    list: async () => generations.map((_, i) => ({ number: i + 1, path: `/faulty-disk/gen-${i + 1}.json` })).reverse(),
  }
  return { store, generations, set: (next: typeof mode) => void (mode = next) }
}

const opened: RelaySource[] = []
function source(upstream: FakeUpstream, store: GenerationStore): RelaySource {
  const s = urlSourceFor(upstream, { pollIntervalMs: 100, store })
  opened.push(s)
  return s
}
const f0 = (s: RelaySource) => (s.current()?.definitions as { flags?: { f0?: { defaultVariant?: string } } } | undefined)?.flags?.f0?.defaultVariant

describe('a data dir whose disk fails', () => {
  it('a write that failed (EIO) is tried again: once the disk is back, a restart during the outage serves what was served, not the generation before', async () => {
    const disk = faultyDisk()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relay = source(upstream, disk.store)
    await relay.open()
    await waitFor(() => disk.generations.length > 0, 5000)
    // The upstream changes while the disk fails: served, not saved, and the status says so.
    disk.set('fail')
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(() => f0(relay) === 'on' && (relay.relayStatus().dataDir?.writeFailures ?? 0) > 0, 5000)
    expect(relay.relayStatus().dataDir).toMatchObject({ lastError: 'EIO' })
    // Then the upstream goes down (no more good polls to save after) and the disk comes back.
    upstream.set({ status: 503, text: 'down' })
    await waitFor(() => relay.relayStatus().upstream.state === 'failing', 5000)
    disk.set('ok')
    await waitFor(() => relay.relayStatus().dataDir?.lastError === undefined, 5000)
    await relay.close()
    const restarted = source(upstream, disk.store)
    await restarted.open()
    expect([f0(restarted), restarted.relayStatus().source]).toEqual(['on', 'data-dir'])
    await restarted.close()
  })

  it('a write that never finishes (a stuck mount) does not hold close() for ever', async () => {
    const disk = faultyDisk()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relay = source(upstream, disk.store)
    await relay.open()
    await waitFor(() => disk.generations.length > 0, 5000)
    disk.set('hang')
    const hungAt = Date.now()
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(() => f0(relay) === 'on', 5000)
    // The status says a write is stuck, and since when: before, it read as healthy (no error, no
    // failure) for as long as the mount hung, while nothing more reached the disk.
    await waitFor(() => relay.relayStatus().dataDir?.writingSince !== undefined, 5000)
    expect(relay.relayStatus().dataDir!.writingSince).toBeGreaterThanOrEqual(hungAt)
    const started = Date.now()
    const closed = await Promise.race([relay.close().then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 15_000))])
    expect(closed).toBe(true)
    expect(Date.now() - started).toBeLessThan(8000)
  })
})
