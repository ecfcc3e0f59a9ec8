// A relay's spool on a disk that fills while the upstream is away: appends fail (500, the clients
// keep their events), and once the upstream is back the forwarder must drain the spool, which is
// also what frees the disk. Before, a delivered batch whose cursor write met ENOSPC was sent again
// and again, and no delivered segment was ever deleted (that waited for the cursor write): the
// relay stayed wedged, re-sending one batch, until an operator freed space by hand.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeFileSystem, silentLogger, type EventFileSystem } from '@holdfast/server'
import { createSpool } from '../../packages/server/src/events/spool'
import { faultyFileSystem } from './events-faults'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'

const segmentName = (n: number) => `seg-${String(n).padStart(16, '0')}.jsonl`
const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/**
 * A disk that is full (every write fails with `code`: ENOSPC, or EDQUOT for a volume with quotas,
 * as NFS and XFS answer once the user's quota is used up) until a file is deleted from it.
 */
function fullDisk(code: string): EventFileSystem & { full: boolean } {
  const base = faultyFileSystem()
  const disk: EventFileSystem & { full: boolean } = {
    ...base,
    full: true,
    async open(path, mode, permissions) {
      const file = await base.open(path, mode, permissions)
      return {
        ...file,
        async write(buffer, offset, length) {
          if (disk.full) throw Object.assign(new Error(`${code}: no space left, write`), { code })
          return file.write(buffer, offset, length)
        },
      }
    },
    async remove(path) {
      const existed = (await base.stat(path)) !== undefined
      await base.remove(path)
      if (existed && path.includes('seg-')) disk.full = false
    },
  }
  return disk
}

describe('a spool on a full disk', { timeout: 60_000 }, () => {
  // EDQUOT: before, only ENOSPC was taken for a full disk, and a relay over its quota stayed wedged.
  it.each(['ENOSPC', 'EDQUOT'])('(%s) drains, deleting what it delivered (which makes room), each event sent once; then takes events again', async (code) => {
    const spoolDir = join(await tempDir(), 'spool')
    await mkdir(spoolDir, { recursive: true })
    // What a long outage left: two segments of 200 events (about 2 MiB each).
    const ids: string[] = []
    for (const segment of [1, 2]) {
      const lines = Array.from({ length: 200 }, (_, i) => {
        ids.push(`s${segment}-${i}`)
        return JSON.stringify({ at: 1, event: { id: `s${segment}-${i}`, type: 'custom', name: 'n', time: 1, value: 'x'.repeat(10_000) } }) + '\n'
      })
      await writeFile(join(spoolDir, segmentName(segment)), lines.join(''))
    }
    const received: string[] = []
    const sink = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = ''
      req.on('data', (chunk) => (body += chunk))
      req.on('end', () => {
        received.push(...(JSON.parse(body).events as Array<{ id: string }>).map((e) => e.id))
        res.writeHead(202, { 'Content-Type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
    closers.push(() => sink.close())
    const disk = fullDisk(code)
    const logger = recordingLogger()
    const relay = await startServer({
      eventsUpstream: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/e`,
      eventsSpoolDir: spoolDir,
      eventsFileSystem: disk,
      eventsForwarding: { backoffBaseMs: 20, backoffMaxMs: 50 },
      logger,
    })
    // New events are refused while the disk is full (the client keeps them).
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'new-1', type: 'custom', name: 'n', time: 1 }] })).status).toBe(500)

    await waitFor(() => relay.eventsForwarding!().pending === 0, 10_000).catch(() => undefined)
    expect(relay.eventsForwarding!()).toMatchObject({ pending: 0, delivered: 400, dropped: 0 })
    // Each event once: nothing delivered was sent again.
    expect(received).toEqual(ids)
    expect(disk.full).toBe(false)
    expect((await readdir(spoolDir)).filter((name) => name.startsWith('seg-'))).not.toContain(segmentName(1))
    expect(logger.lines.join('\n')).toMatch(/disk is full/)
    // The room made takes events again.
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'new-1', type: 'custom', name: 'n', time: 1 }] })).status).toBe(202)
    await waitFor(() => received.includes('new-1'), 10_000)
  })
})

describe('a spool that went on while its cursor could not be saved', () => {
  it('a crash then loses nothing: the restart sends again from the cursor last saved, or from the oldest segment left', async () => {
    const dir = join(await tempDir(), 'spool')
    const ev = (n: number) => ({ id: `c-${n}`, type: 'custom' as const, name: 'n', time: n })
    // The cursor cannot be written (the disk is full); appends went in before it filled.
    let full = false
    const fs: EventFileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const file = await nodeFileSystem.open(path, mode, permissions)
        const cursor = path.endsWith('cursor.json.tmp')
        return { ...file, write: (b, o, l) => (full && cursor ? Promise.reject(Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' })) : file.write(b, o, l)) }
      },
    }
    const spool = createSpool({ dir, segmentBytes: 300, fs, log: silentLogger })
    await spool.open()
    for (let n = 0; n < 30; n += 3) await spool.append([ev(n), ev(n + 1), ev(n + 2)])
    // The first batch's cursor is saved; then the disk is full for the next ones.
    const delivered: string[] = []
    const first = (await spool.read(4, 1_000_000))!
    await spool.ack(first.next, 4)
    delivered.push(...first.events.map((e) => e.id))
    full = true
    for (let i = 0; i < 3; i++) {
      const batch = (await spool.read(4, 1_000_000))!
      await spool.ack(batch.next, batch.events.length)
      delivered.push(...batch.events.map((e) => e.id))
    }
    expect(delivered).toHaveLength(16)
    expect(spool.pending()).toBe(14)
    // Delivered segments were deleted to make room, the saved cursor naming one of them.
    const left = (await readdir(dir)).filter((name) => name.startsWith('seg-'))
    expect(left).not.toContain(segmentName(1))
    // kill -9: nothing more is written. The restart delivers every event not yet delivered
    // (and may send some delivered ones again: the sink de-duplicates).
    const again = createSpool({ dir, segmentBytes: 300, log: silentLogger })
    await again.open()
    const after: string[] = []
    for (let batch = await again.read(4, 1_000_000); batch; batch = await again.read(4, 1_000_000)) {
      after.push(...batch.events.map((e) => e.id))
      await again.ack(batch.next, batch.events.length)
    }
    const all = Array.from({ length: 30 }, (_, n) => `c-${n}`)
    expect(after).toEqual(expect.arrayContaining(all.filter((id) => !delivered.includes(id))))
    expect(new Set([...delivered, ...after])).toEqual(new Set(all))
    await spool.close().catch(() => undefined)
    await again.close()
  })
})
