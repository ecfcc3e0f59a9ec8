// The spool across segment files (internal module, imported by path: segments are 8 MiB by
// default, so the end-to-end tests never cross one).
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeFileSystem, silentLogger } from '@holdfast/server'
import { createSpool } from '../../packages/server/src/events/spool'
import { tempDir } from './helpers'

const ev = (n: number) => ({ id: `s-${n}`, type: 'custom' as const, name: 'n', time: n })

describe('spool segments', { timeout: 30_000 }, () => {
  it('reads across segments, deletes delivered ones, and resumes at the cursor after a reopen', async () => {
    const dir = join(await tempDir(), 'spool')
    let now = 1000
    const open = async () => {
      const spool = createSpool({ dir, segmentBytes: 300, now: () => now, log: silentLogger })
      await spool.open()
      return spool
    }
    let spool = await open()
    for (let n = 0; n < 30; n += 3) {
      now += 10
      await spool.append([ev(n), ev(n + 1), ev(n + 2)])
    }
    expect(spool.pending()).toBe(30)
    expect(spool.oldestAt()).toBe(1010)
    const segmentsBefore = (await readdir(dir)).filter((f) => f.startsWith('seg-'))
    expect(segmentsBefore.length).toBeGreaterThan(3)
    const first = (await spool.read(7, 1_000_000))!
    expect(first.events.map((e) => e.id)).toEqual([0, 1, 2, 3, 4, 5, 6].map((n) => `s-${n}`))
    await spool.ack(first.next, first.events.length)
    expect(spool.pending()).toBe(23)
    expect(spool.oldestAt()).toBe(1030) // s-7 was spooled with s-6 … s-8
    await spool.close()

    spool = await open()
    expect(spool.pending()).toBe(23)
    const rest: string[] = []
    for (let batch = await spool.read(5, 1_000_000); batch; batch = await spool.read(5, 1_000_000)) {
      rest.push(...batch.events.map((e) => e.id))
      await spool.ack(batch.next, batch.events.length)
    }
    expect(rest).toEqual(Array.from({ length: 23 }, (_, i) => `s-${i + 7}`))
    expect(spool.pending()).toBe(0)
    expect(spool.oldestAt()).toBeUndefined()
    // Only the segment still being appended to is left.
    expect((await readdir(dir)).filter((f) => f.startsWith('seg-'))).toHaveLength(1)
    await spool.append([ev(100)])
    expect((await spool.read(10, 1_000_000))!.events.map((e) => e.id)).toEqual(['s-100'])
    await spool.close()
  })

  it('EIO deleting a delivered segment after the cursor moved: the ack stands, pending and the oldest age are right, the segment goes at the next open', async () => {
    const dir = join(await tempDir(), 'spool')
    let failRemove = true
    const fs = {
      ...nodeFileSystem,
      async remove(path: string) {
        if (failRemove && path.includes('seg-')) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
        return nodeFileSystem.remove(path)
      },
    }
    const spool = createSpool({ dir, segmentBytes: 300, fs, log: silentLogger })
    await spool.open()
    for (let n = 0; n < 30; n += 3) await spool.append([ev(n), ev(n + 1), ev(n + 2)])
    const first = (await spool.read(10, 1_000_000))!
    expect(first.next.segment).toBeGreaterThan(1)
    // Before: the ack threw, so the forwarder counted nothing delivered and `pending` stayed at 30
    // for ever (the spool_pending metric said the spool never drained).
    await spool.ack(first.next, first.events.length)
    expect(spool.pending()).toBe(20)
    const rest = (await spool.read(100, 1_000_000))!
    expect(rest.events.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => `s-${i + 10}`))
    await spool.close()
    failRemove = false
    const reopened = createSpool({ dir, segmentBytes: 300, fs, log: silentLogger })
    await reopened.open()
    expect(reopened.pending()).toBe(20)
    expect((await readdir(dir)).filter((f) => f.startsWith('seg-')).map((f) => Number(f.slice(4, 20)))).not.toContain(1)
    await reopened.close()
  })

  it('an unreadable cursor or an unreadable line costs a re-send or a skipped line, never the rest', async () => {
    const dir = join(await tempDir(), 'spool')
    const spool = createSpool({ dir, log: silentLogger })
    await spool.open()
    await spool.append([ev(1), ev(2)])
    const batch = (await spool.read(1, 1_000_000))!
    await spool.ack(batch.next, 1)
    await spool.close()
    await writeFile(join(dir, 'cursor.json'), '{"segm')
    const segment = (await readdir(dir)).find((f) => f.startsWith('seg-'))!
    await writeFile(join(dir, segment), (await readFile(join(dir, segment), 'utf8')).replace('"s-1"', '"s-1'))
    const again = createSpool({ dir, log: silentLogger })
    await again.open()
    const read = (await again.read(10, 1_000_000))!
    expect(read.events.map((e) => e.id)).toEqual(['s-2'])
    expect(read.skipped).toBe(1)
    await again.close()
  })

  it('whatever the batch sizes and reopen points, every event comes out once, in order', async () => {
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 15 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 7 }), fc.boolean()), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 150, max: 2000 }),
        async (appends, reads, segmentBytes) => {
          const dir = join(await tempDir(), `spool-${run++}`)
          const open = async () => {
            const s = createSpool({ dir, segmentBytes, log: silentLogger })
            await s.open()
            return s
          }
          let spool = await open()
          let n = 0
          for (const size of appends) await spool.append(Array.from({ length: size }, () => ev(n++)))
          const out: string[] = []
          for (const [max, reopen] of reads) {
            const batch = await spool.read(max, 1_000_000)
            if (!batch) break
            out.push(...batch.events.map((e) => e.id))
            await spool.ack(batch.next, batch.events.length)
            if (reopen) {
              await spool.close()
              spool = await open()
            }
          }
          for (let batch = await spool.read(100, 1_000_000); batch; batch = await spool.read(100, 1_000_000)) {
            out.push(...batch.events.map((e) => e.id))
            await spool.ack(batch.next, batch.events.length)
          }
          expect(out).toEqual(Array.from({ length: n }, (_, i) => `s-${i}`))
          expect(spool.pending()).toBe(0)
          await spool.close()
        },
      ),
      { numRuns: 40 },
    )
  }, 60_000)
})
