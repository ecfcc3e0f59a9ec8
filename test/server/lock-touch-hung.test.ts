// The lock's holder touches it every 10 s (events/lockFile.ts), so a server on another host can
// tell it is alive. On a data dir or spool whose network mount hangs, each touch (utimes) never
// returns and holds one of libuv's threads (4 by default, shared with DNS lookups and every file
// read) for ever: before, a new one started every 10 s, and 40 s into a hang the pool was full, so
// the relay could no longer resolve its upstream's host name nor read its --flags file. A touch
// now waits for the one before.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it, vi } from 'vitest'

const hang = vi.hoisted(() => ({ utimes: 0 }))
vi.mock('node:fs/promises', async (original) => {
  const real = await original<typeof import('node:fs/promises')>()
  return { ...real, utimes: () => (hang.utimes++, new Promise<void>(() => {})) }
})
const { acquireLock } = await import('../../packages/server/src/events/lockFile')

afterEach(() => void vi.useRealTimers())

it('a touch that hangs (a dead mount) is not followed by another every 10 s: at most one holds a thread', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-lock-touch-'))
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
  const release = await acquireLock(join(dir, 'LOCK'), 'the data dir')
  await vi.advanceTimersByTimeAsync(60_000)
  expect(hang.utimes).toBe(1)
  vi.useRealTimers()
  await release()
  await rm(dir, { recursive: true, force: true })
})
