// `pending` (status `events.forwarding.pending`, `holdfast_events_spool_pending`) is what the relay
// will still send. A spool segment that is no longer appended to but cut short on disk (by hand, a
// crash of the file system, a restore) holds fewer events than were counted into it; before, the
// reader went through what was left, skipped the torn end as if it were one line, and `pending`
// stayed above zero for ever once the spool had drained: events "waiting" that would never be sent.
// (Internal module, imported by path: segments are 8 MiB by default.)
import { readdir, rm, stat, truncate, appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '@holdfast/server'
import { createSpool, type Spool } from '../../packages/server/src/events/spool'
import { faultyFileSystem } from './events-faults'
import { recordingLogger, tempDir } from './helpers'

const ev = (n: number) => ({ id: `p-${n}`, type: 'custom' as const, name: 'n', time: n })
const segments = async (dir: string) => (await readdir(dir)).filter((f) => f.startsWith('seg-')).sort()

/** Reads and acknowledges everything, as the forwarder does; returns the ids read and the events counted lost or skipped. */
// A spool of 30 events in appends of 3 (segments of 300 bytes), opened and filled.
async function filled(options: Omit<Parameters<typeof createSpool>[0], 'segmentBytes'>) {
  const spool = createSpool({ segmentBytes: 300, ...options })
  await spool.open()
  for (let n = 0; n < 30; n += 3) await spool.append([ev(n), ev(n + 1), ev(n + 2)])
  return spool
}

async function drain(spool: Spool, left?: number) {
  const ids: string[] = []
  let gone = 0
  for (let batch = await spool.read(4, 1_000_000); batch; batch = await spool.read(4, 1_000_000)) {
    ids.push(...batch.events.map((e) => e.id))
    gone += batch.skipped + spool.takeLost()
    await spool.ack(batch.next, batch.events.length + batch.skipped)
    // What is waiting is what is really left to send.
    if (left !== undefined) expect(spool.pending()).toBe(left - ids.length)
  }
  return { ids, gone: gone + spool.takeLost() }
}

describe('spool pending after a segment that is no longer appended to is cut short', { timeout: 30_000 }, () => {
  it('cut mid-line while the relay runs: what is left is sent, the rest counted lost, and pending ends at 0', async () => {
    const dir = join(await tempDir(), 'spool')
    const logger = recordingLogger()
    const spool = await filled({ dir, log: logger })
    expect(spool.pending()).toBe(30)
    const first = (await spool.read(2, 1_000_000))!
    await spool.ack(first.next, 2)
    const [, second] = await segments(dir)
    const size = (await stat(join(dir, second))).size
    // Half of the second segment goes, mid-line.
    await truncate(join(dir, second), Math.floor(size / 2) + 7)
    const { ids, gone } = await drain(spool)
    expect(spool.pending()).toBe(0)
    expect(ids.length).toBeLessThan(28)
    expect(ids.length + gone).toBe(28)
    expect(logger.lines.join('\n')).toMatch(new RegExp(`${second}.*cut short`))
    // Later events are counted and sent as ever.
    await spool.append([ev(100)])
    expect(spool.pending()).toBe(1)
    expect((await drain(spool)).ids).toEqual(['p-100'])
    expect(spool.pending()).toBe(0)
    await spool.close()
  })

  it('a segment cut short right behind a batch being acknowledged: the ack stands, and the batch is not also counted lost', async () => {
    // Before: the ack's read of the next oldest line met the cut (ESHORT) after the cursor had
    // moved and threw; `pending` still counted the delivered batch, and the forwarder's next read
    // recounted: the batch it had just delivered was counted lost as well.
    const dir = join(await tempDir(), 'spool')
    const spool = await filled({ dir, log: silentLogger })
    const first = (await spool.read(2, 1_000_000))!
    const [segment] = await segments(dir)
    expect(first.next.segment).toBe(Number(segment.match(/\d+/)![0]))
    // The rest of the segment goes, mid-line, while the batch is out.
    await truncate(join(dir, segment), first.next.offset + 10)
    // As the forwarder does: an ack that throws is retried by reading again.
    const acked = await spool.ack(first.next, 2).then(() => 'ok', (error: Error) => error.message)
    const { ids, gone } = await drain(spool)
    expect(first.events.length + ids.length + gone).toBe(30)
    expect(spool.pending()).toBe(0)
    expect(acked).toBe('ok')
    await spool.close()
  })

  it('a torn last line in a segment found at start: pending counts only what will be sent, the torn event is counted lost once', async () => {
    const dir = join(await tempDir(), 'spool')
    const spool = await filled({ dir, log: silentLogger })
    await spool.close()
    const [first] = await segments(dir)
    // A write torn by a crash of the disk (a last line without its newline) in a full segment.
    await appendFile(join(dir, first), '{"at":1,"event":{"id":"p-torn","ty')
    const reopened = createSpool({ dir, segmentBytes: 300, log: silentLogger })
    await reopened.open()
    expect(reopened.pending()).toBe(30)
    const { ids, gone } = await drain(reopened, 30)
    expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => `p-${i}`))
    expect(gone).toBe(1)
    expect(reopened.pending()).toBe(0)
    await reopened.append([ev(100)])
    expect(reopened.pending()).toBe(1)
    await reopened.close()
  })

  it('a line of 5 MiB with no event in it (a stray write, a half-restored file) is skipped as one line: one log line, one event counted gone, pending ends at 0', async () => {
    // Before: skipped a 2 MiB window at a time, each logged and counted as a dropped event, while
    // `pending` had counted it once: a stray 1 GB run of bytes logged 512 errors and counted 512
    // events dropped that never were.
    const dir = join(await tempDir(), 'spool')
    const spool = await filled({ dir, log: silentLogger })
    await spool.close()
    const [first] = await segments(dir)
    await appendFile(join(dir, first), `${'x'.repeat(5 * 1024 * 1024)}\n`)
    const logger = recordingLogger()
    const reopened = createSpool({ dir, segmentBytes: 300, log: logger })
    await reopened.open()
    expect(reopened.pending()).toBe(31)
    const { ids, gone } = await drain(reopened)
    expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => `p-${i}`))
    expect(gone).toBe(1)
    expect(reopened.pending()).toBe(0)
    expect(logger.lines.filter((line) => line.includes(first))).toEqual([`events spool: a line of ${5 * 1024 * 1024 + 1} bytes (over ${2 * 1024 * 1024}) in ${first}; skipped`])
    await reopened.close()
  })

  it('a torn end read twice (its batch not acknowledged: the cursor write failed) is counted lost once', async () => {
    const dir = join(await tempDir(), 'spool')
    const spool = createSpool({ dir, segmentBytes: 300, log: silentLogger })
    await spool.open()
    for (let n = 0; n < 12; n += 3) await spool.append([ev(n), ev(n + 1), ev(n + 2)])
    await spool.close()
    const [first] = await segments(dir)
    await appendFile(join(dir, first), '{"at":1,"ev')
    const reopened = createSpool({ dir, segmentBytes: 300, log: silentLogger })
    await reopened.open()
    let lost = 0
    for (let i = 0; i < 2; i++) {
      const batch = (await reopened.read(100, 1_000_000))!
      expect(batch.events).toHaveLength(12)
      lost += reopened.takeLost()
    }
    expect(lost).toBe(1)
    expect(reopened.pending()).toBe(12)
    await reopened.close()
  })

  it('a segment deleted, then a read error in the middle of the recount that follows: the next read counts again, and pending still ends at 0', async () => {
    // Before: the failed count had already marked the segment as accounted for, so no read
    // counted again, and `pending` kept the lost events for ever (3 waiting, nothing to send).
    const dir = join(await tempDir(), 'spool')
    const fs = faultyFileSystem()
    const spool = await filled({ dir, fs, log: recordingLogger() })
    const [first] = await segments(dir)
    await rm(join(dir, first))
    // The reads of the batch (two segments) go through; the recount's first read fails.
    let reads = 0
    fs.beforeRead = () => {
      if (++reads === 3) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
    }
    await expect(spool.read(4, 1_000_000)).rejects.toThrow(/EIO/)
    const { ids, gone } = await drain(spool)
    expect(ids).toHaveLength(27)
    expect(gone).toBe(3)
    expect(spool.pending()).toBe(0)
    await spool.close()
  })
})

