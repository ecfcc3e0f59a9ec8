// Properties of the events file on generated inputs: whatever sequence of batches and disk
// failures, the file holds exactly the batches answered 202, in order, as whole lines; and the
// backwards tail reader (internal, imported by path) gives back every line whatever their lengths
// and however they straddle its chunks.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeFileSystem } from '@holdfast/server'
import { readLinesBackward } from '../../packages/server/src/events/tailReader'
import { post, startServer, tempDir } from './helpers'
import { faultyFileSystem } from './events-faults'

describe('events file properties', { timeout: 30_000 }, () => {
  it('after any sequence of batches, disk-full writes, failed fsyncs and failed cut-backs, the file is exactly the batches answered 202', async () => {
    let run = 0
    const step = fc.record({
      size: fc.integer({ min: 1, max: 6 }),
      fault: fc.constantFrom('none', 'none', 'none', 'disk-full', 'fsync', 'disk-full-and-cut'),
      partial: fc.integer({ min: 0, max: 400 }),
      retry: fc.boolean(),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        run++
        const fs = faultyFileSystem()
        const file = join(await tempDir(), 'events.jsonl')
        const server = await startServer({ eventsFile: file, eventsFileSystem: fs })
        const stored: unknown[] = []
        let n = 0
        for (const s of steps) {
          const events = Array.from({ length: s.size }, () => ({ id: `p${run}-${n++}`, type: 'custom', name: 'n', time: n, metadata: { pad: 'x'.repeat(n % 50) } }))
          if (s.fault === 'disk-full' || s.fault === 'disk-full-and-cut') fs.failNextWrite(s.partial)
          if (s.fault === 'disk-full-and-cut') fs.failTruncates(1)
          if (s.fault === 'fsync') fs.failSyncs(1)
          const first = await post(`${server.url}/holdfast/v1/events`, { events })
          if (first.status === 202) stored.push(...events)
          else if (s.retry) {
            // A client retries until it gets a 202 (an injected fault may still be pending).
            let again = await post(`${server.url}/holdfast/v1/events`, { events })
            for (let attempt = 0; again.status !== 202 && attempt < 3; attempt++) again = await post(`${server.url}/holdfast/v1/events`, { events })
            expect(again.status).toBe(202)
            expect(await again.json()).toEqual({ accepted: s.size, duplicates: 0 })
            stored.push(...events)
          }
        }
        await server.close()
        // What a reader finds after the process is gone (a later start would also cut any tail).
        const text = await readFile(file, 'utf8')
        const whole = text.slice(0, text.lastIndexOf('\n') + 1)
        expect(whole).toBe(stored.map((e) => JSON.stringify(e) + '\n').join(''))
      }),
      { numRuns: 40 },
    )
  }, 120_000)

  it('the tail reader yields every line, newest first, across chunk boundaries', async () => {
    const dir = await tempDir()
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 300 }).map((s) => s.replace(/\n/g, ' ')), { maxLength: 40 }),
        fc.integer({ min: 1, max: 97 }),
        fc.boolean(),
        async (lines, chunkBytes, trailingNewline) => {
          const file = join(dir, `tail-${run++}.txt`)
          const text = lines.join('\n') + (trailingNewline && lines.length > 0 ? '\n' : '')
          await writeFile(file, text)
          const got: string[] = []
          for await (const line of readLinesBackward(nodeFileSystem, file, { chunkBytes, maxLineBytes: 10_000 })) got.push(line!.toString('utf8'))
          expect(got).toEqual(lines.filter((l) => l !== '').reverse())
        },
      ),
      { numRuns: 300 },
    )
  })

  it('the tail reader skips a line longer than its cap (yields undefined) and goes on', async () => {
    const file = join(await tempDir(), 'long.txt')
    await writeFile(file, `first\n${'x'.repeat(5000)}\nlast\n`)
    const got: Array<string | undefined> = []
    for await (const line of readLinesBackward(nodeFileSystem, file, { chunkBytes: 64, maxLineBytes: 1000 })) got.push(line?.toString('utf8'))
    expect(got).toEqual(['last', undefined, 'first'])
  })
})
