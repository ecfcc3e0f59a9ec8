// Proxy mode with --redis and --on-upstream-unauthorized clear-after=SECONDS, on a real
// redis-server: relay A's request for a user is refused (401) and the key stays revoked; A restarts
// with its data dir's refused entry carrying a `place` this store never handed out (another Redis's,
// or a hand edit). The drop due after the restart must still reach every relay: B, which never
// asked, answers the user 503 in the outage, never his values.
import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { askSource, clearAfterRelay, PRO, victimRefusedOnA } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

/** Rewrites every refused entry's place in the data dir's records; returns how many it found. */
async function setPlace(dir: string, place: number): Promise<number> {
  let found = 0
  for (const name of await readdir(dir, { recursive: true })) {
    const path = join(dir, name)
    const text = await readFile(path, 'utf8').catch(() => undefined)
    if (!text?.includes('"refused"')) continue
    const newline = text.indexOf('\n')
    const header = JSON.parse(text.slice(0, newline))
    const record = JSON.parse(text.slice(newline + 1))
    for (const entry of record.refused ?? []) {
      entry.place = place
      found++
    }
    // Framed as the generation store writes it (header: the payload's sha256 and length).
    const payload = JSON.stringify(record)
    const framed = { ...header, sha256: createHash('sha256').update(payload).digest('hex'), bytes: Buffer.byteLength(payload) }
    await writeFile(path, `${JSON.stringify(framed)}\n${payload}`)
  }
  return found
}

describe('proxy mode, clear-after, --redis: a refused entry whose place this store never handed out', () => {
  for (const [what, place] of [['far ahead of the store clock', 9_000_000_000_000_000]] as const) {
    it(`a place ${what}: after SECONDS the relay that never asked drops the revoked user too (503 in the outage)`, async () => {
      const redis = await redisServer()
      const upstream = await startUpstream(PRO)
      const dir = await tempDir()
      const ns = `bogus-${place}`
      const a = clearAfterRelay(cleanups, redis.url, upstream.url, ns, { dir })
      const b = clearAfterRelay(cleanups, redis.url, upstream.url, ns)
      await victimRefusedOnA(a, b, upstream)
      await a.close()
      expect(await setPlace(dir, place)).toBe(1)
      upstream.set({ status: 503, text: 'down' })
      const again = clearAfterRelay(cleanups, redis.url, upstream.url, ns, { dir })
      await again.open()
      await waitFor(() => again.relayStatus().redis?.state === 'up', 10_000)
      // The run was due 1 s after the 401: B takes the drop (0 contexts). Before, a place ahead of
      // the store's clock was written as it was, and read as nothing on every relay: B kept the
      // revoked user's values (1 context) and served them (200) in the outage.
      await waitFor(() => b.relayStatus().contexts === 0 && again.relayStatus().contexts === 0, 5000).catch(() => undefined)
      expect({ a: again.relayStatus().contexts, b: b.relayStatus().contexts }).toEqual({ a: 0, b: 0 })
      for (const s of [b, again]) expect((await askSource(s, 'victim')).status).toBe(503)
    })
  }
})
