// The data dir must survive anything: a torn or corrupt newest generation falls back to the
// previous good one, writes never leave a half file where a generation is expected, and only the
// last few generations are kept.
import { appendFile, readdir, readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createGenerationStore, decodeGeneration, encodeGeneration } from '../../packages/server/src/flags/generations'
import { createPersistence, loadNewestPayload } from '../../packages/server/src/flags/persistence'
import { recordingLogger, startServer, tempDir } from './helpers'

describe('data-dir generations', () => {
  it('loads the newest generation and keeps only the last few', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir, keep: 3 })
    for (let i = 1; i <= 5; i++) expect(await store.save(`payload ${i}`)).toBe(i)
    expect((await store.list()).map((g) => g.number)).toEqual([5, 4, 3])
    const { loaded } = await store.loadNewest()
    expect(loaded?.payload).toBe('payload 5')
    // A new store over the same dir (a restart) continues the numbering.
    expect(await createGenerationStore({ dir }).save('payload 6')).toBe(6)
  })

  it('skips a torn newest generation for the previous good one', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir })
    await store.save(JSON.stringify({ n: 1 }))
    await store.save(JSON.stringify({ n: 2, padding: 'x'.repeat(1000) }))
    const [newest] = await store.list()
    // A crash that left half the bytes (no rename-then-fsync discipline would do this, but a disk can).
    await truncate(newest.path, 400)
    const { loaded, skipped } = await createGenerationStore({ dir }).loadNewest()
    expect(JSON.parse(loaded!.payload)).toEqual({ n: 1 })
    expect(skipped).toHaveLength(1)
    expect(skipped[0].reason).toMatch(/torn|length/)
  })

  it('a data dir read twice (an intact generation found unusable, then the older ones) counts each skipped generation once in the status', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir, keep: 4 })
    for (const n of [1, 2, 3]) await store.save(JSON.stringify({ n, padding: 'x'.repeat(100) }))
    const [newest] = await store.list()
    await truncate(newest.path, 50)
    const reading = createGenerationStore({ dir, keep: 4 })
    const log = recordingLogger()
    expect(JSON.parse((await loadNewestPayload(reading, () => true, log))!).n).toBe(2)
    expect(JSON.parse((await loadNewestPayload(reading, (text) => JSON.parse(text).n !== 2, log))!).n).toBe(1)
    expect(createPersistence({ store: reading, now: Date.now }).state()).toMatchObject({ loadedGeneration: 1, skipped: [{ generation: 3, reason: 'torn' }, { generation: 2, reason: 'unusable' }], skippedBy: { torn: 1, unusable: 1 } })
  })

  it('a data dir full of stray bad generations names ten in the log and sums up the rest in one line, as the status does', async () => {
    // Before: one warning per skipped generation, so a dir of 500 stray copies wrote 500 lines at start.
    const dir = await tempDir()
    const store = createGenerationStore({ dir, keep: 600 })
    for (let n = 1; n <= 501; n++) await store.save(JSON.stringify({ n }))
    for (const generation of (await store.list()).slice(0, 500)) await writeFile(generation.path, 'not a generation at all')
    const log = recordingLogger()
    const reading = createGenerationStore({ dir, keep: 600 })
    expect(JSON.parse((await loadNewestPayload(reading, () => true, log))!).n).toBe(1)
    const lines = log.lines.filter((line) => line.includes('data-dir generation'))
    expect(lines).toHaveLength(11)
    expect(lines[0]).toMatch(/^skipped data-dir generation \S+501\.json: /)
    expect(lines[10]).toBe('skipped 490 more data-dir generations (torn: 490); GET /holdfast/v1/status counts them by reason')
    expect(createPersistence({ store: reading, now: Date.now }).state()).toMatchObject({ loadedGeneration: 1, skippedBy: { torn: 500 } })
  })

  it('skips a newest generation whose bytes were changed (checksum), and one that is garbage', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir, keep: 4 })
    await store.save('{"n":1}')
    await store.save('{"n":2}')
    await store.save('{"n":3}')
    const [third, second] = await store.list()
    await writeFile(third.path, (await readFile(third.path, 'utf8')).replace('"n":3', '"n":9'))
    await writeFile(second.path, 'not a generation at all')
    const { loaded, skipped } = await createGenerationStore({ dir }).loadNewest()
    expect(loaded?.payload).toBe('{"n":1}')
    expect(skipped.map((s) => s.reason)).toEqual(['checksum mismatch', expect.stringMatching(/header/)])
  })

  it('lets the caller refuse an intact but unusable payload, trying the older one', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir })
    await store.save('{"ok":true}')
    await store.save('{"ok":false}')
    const { loaded } = await store.loadNewest((payload) => JSON.parse(payload).ok === true)
    expect(loaded?.payload).toBe('{"ok":true}')
  })

  it('removes temp files a crash left behind, and an empty or missing dir loads nothing', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, '.gen-7-123-abcd.tmp'), 'half a write')
    const store = createGenerationStore({ dir: join(dir, 'not-yet') })
    expect(await store.loadNewest()).toEqual({ skipped: [] })
    await createGenerationStore({ dir }).loadNewest()
    expect(await readdir(dir)).toEqual([])
  })

  it('a failed write (the directory is a file) rejects and leaves the previous generations loadable', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir })
    await store.save('{"n":1}')
    const blocked = createGenerationStore({ dir: join(dir, 'gen-000000000001.json') })
    await expect(blocked.save('{"n":2}')).rejects.toThrow()
    expect((await createGenerationStore({ dir }).loadNewest()).loaded?.payload).toBe('{"n":1}')
  })

  it('never accepts a truncated, extended or bit-flipped file (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 2 }), (payload, at, how) => {
        const encoded = encodeGeneration(payload)
        let damaged: string
        if (how === 0) damaged = encoded.slice(0, at % encoded.length)
        else if (how === 1) damaged = `${encoded}${String.fromCharCode(32 + (at % 90))}`
        else {
          const i = encoded.indexOf('\n') + 1 + (at % Math.max(1, payload.length))
          if (i >= encoded.length) return true
          const flipped = String.fromCharCode(encoded.charCodeAt(i) ^ 1)
          damaged = encoded.slice(0, i) + flipped + encoded.slice(i + 1)
        }
        const decoded = decodeGeneration(damaged)
        expect(decoded.ok).toBe(false)
        expect(decodeGeneration(encoded)).toEqual({ ok: true, payload })
      }),
    )
  })

  it('appending junk to a generation is detected', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir })
    await store.save('{"n":1}')
    await store.save('{"n":2}')
    await appendFile((await store.list())[0].path, 'x')
    expect((await createGenerationStore({ dir }).loadNewest()).loaded?.payload).toBe('{"n":1}')
  })
})

describe('data-dir options given in code', () => {
  it('a keepGenerations, dataDir or snapshot that cannot mean what it says refuses to start, naming it', async () => {
    // keepGenerations NaN pruned every older generation on each save (one left: nothing to fall
    // back to when it tears); dataDir '' wrote generations into the working directory.
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify({ flags: { a: { state: 'ENABLED', variants: { on: true }, defaultVariant: 'on' } } }))
    for (const keepGenerations of [Number.NaN, 2.5, 0, -1]) {
      await expect(startServer({ flags: file, dataDir: join(dir, 'data'), keepGenerations })).rejects.toThrow(/invalid options: keepGenerations/)
    }
    await expect(startServer({ flags: file, dataDir: '' })).rejects.toThrow(/invalid options: dataDir/)
    await expect(startServer({ flags: file, snapshot: '' })).rejects.toThrow(/invalid options: snapshot/)
    for (const [name, value] of [['maxContexts', Number.NaN], ['maxContextBytes', -1], ['heldAnswerAfterMs', Number.NaN]] as const) {
      await expect(startServer({ flags: undefined, upstream: 'http://127.0.0.1:1', [name]: value })).rejects.toThrow(new RegExp(`invalid options: ${name}`))
    }
    // What the docs promise still holds: 1 is read as the least, 2.
    await (await startServer({ flags: file, dataDir: join(dir, 'data'), keepGenerations: 1 })).close()
  })
})

describe('a data dir holding something else than files', () => {
  it('a FIFO named like the newest generation is skipped at once, not waited on forever', async () => {
    // Reading it blocked until a writer came: the relay never finished starting.
    const { execFileSync } = await import('node:child_process')
    const { closeSync, constants, openSync } = await import('node:fs')
    const dir = await tempDir()
    const store = createGenerationStore({ dir })
    await store.save('{"n":1}')
    const fifo = join(dir, 'gen-000000000002.json')
    execFileSync('mkfifo', [fifo])
    try {
      const loading = createGenerationStore({ dir }).loadNewest()
      const result = await Promise.race([loading, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 2000))])
      expect(result).not.toBe('pending')
      if (result === 'pending') return
      expect(result.loaded?.payload).toBe('{"n":1}')
      expect(result.skipped[0].reason).toMatch(/not a regular file/)
    } finally {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
      } catch {
        // no reader waiting
      }
    }
  })
})

describe('one server per data dir', () => {
  it('a second live server on the same data dir refuses to start, naming the holder; after a close it may', async () => {
    // "One data dir per relay process" was only written down: a second relay on the same dir (a
    // copy-pasted unit, two sources on one volume) started, deleted the first one's temp file in
    // the middle of a write, and a restart of either served whichever wrote last: another
    // source's flags.
    const { startUpstream, booleanFlags } = await import('./relay-fakes')
    const dir = await tempDir()
    const dataDir = join(dir, 'data')
    const a = await startUpstream({ document: booleanFlags(3) })
    const first = await startServer({ flags: undefined, flagsUrl: `${a.url}/flags.json`, dataDir })
    await expect(startServer({ flags: undefined, flagsUrl: `${a.url}/other.json`, dataDir })).rejects.toThrow(/the data dir .*data is in use by another server \(pid \d+/)
    const file = join(dir, 'flags.json')
    await writeFile(file, JSON.stringify(booleanFlags(3)))
    await expect(startServer({ flags: file, dataDir })).rejects.toThrow(/in use by another server/)
    await first.close()
    await (await startServer({ flags: file, dataDir })).close()
  })
})
