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
import type { EventFileSystem } from '@holdfast/server'
import { faultyFileSystem } from './events-faults'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'

const segmentName = (n: number) => `seg-${String(n).padStart(16, '0')}.jsonl`
const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** A disk that is full (every write fails with ENOSPC) until a file is deleted from it. */
function fullDisk(): EventFileSystem & { full: boolean } {
  const base = faultyFileSystem()
  const disk: EventFileSystem & { full: boolean } = {
    ...base,
    full: true,
    async open(path, mode, permissions) {
      const file = await base.open(path, mode, permissions)
      return {
        ...file,
        async write(buffer, offset, length) {
          if (disk.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
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
  it('drains, deleting what it delivered (which makes room), each event sent once; then takes events again', async () => {
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
    const disk = fullDisk()
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
