// A data dir on a disk that fills up (CONTRACT §9 persistence): the relay keeps serving what it
// holds, reports the failed writes in its status and its log once (not once per poll and retry),
// never leaves a half-written file that a restart could read back as the current generation, and
// takes writes again when space returns. The disk is injected through the file-system seam, and,
// where this process may mount one (root), is a real 64 KiB tmpfs.
import { execFileSync } from 'node:child_process'
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createGenerationStore, type GenerationStore, type RelaySource } from '@holdfast/server'
import { nodeFileSystem, type EventFileSystem } from '../../packages/server/src/events/fileSystem'
import { decodeGeneration, encodeGeneration } from '../../packages/server/src/flags/generations'
import { recordingLogger, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor } from './relay-fakes'

const opened: RelaySource[] = []
const mounts: string[] = []
/** A real 64 KiB tmpfs (unmounted after each test), or undefined where mount is not permitted. */
async function tinyTmpfs(): Promise<string | undefined> {
  const dir = join(await tempDir(), 'tiny')
  await mkdir(dir)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' })
  } catch {
    return undefined
  }
  mounts.push(dir)
  return dir
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()))
  for (const dir of mounts.splice(0)) execFileSync('umount', [dir])
})

/** The real file system, whose writes stop half way with ENOSPC while `full`. */
function fillingDisk() {
  const disk = { full: false }
  const fs: EventFileSystem = {
    ...nodeFileSystem,
    async open(path, mode, permissions) {
      const file = await nodeFileSystem.open(path, mode, permissions)
      return {
        ...file,
        async write(buffer, offset, length) {
          if (!disk.full) return file.write(buffer, offset, length)
          if (length > 1) return file.write(buffer, offset, Math.floor(length / 2))
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
        },
      }
    },
  }
  return { fs, disk }
}

/** An upstream whose document changes with every poll: every poll is a write to the data dir. */
async function changingUpstream() {
  let n = 0
  return startUpstream(() => {
    n++
    const flags = booleanFlags(3, n % 2 ? 'on' : 'off').flags
    return { document: { flags: { ...flags, counter: { state: 'ENABLED', variants: { v: n }, defaultVariant: 'v' } } }, etag: false }
  })
}

const counter = (s: RelaySource) => (s.current()?.definitions as any)?.flags?.counter?.variants?.v as number | undefined

/** Every generation file in `dir` decodes (no torn one), and no temp file is left. */
async function intact(dir: string): Promise<void> {
  const names = await readdir(dir)
  expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([])
  for (const name of names.filter((n) => n.startsWith('gen-'))) expect(decodeGeneration(await readFile(join(dir, name), 'utf8')).ok, name).toBe(true)
}

describe('a data-dir generation is written crash-safely', () => {
  it('in the order write → fsync(file) → rename → fsync(dir), through the file-system seam', async () => {
    const dir = await tempDir()
    const steps: string[] = []
    const fs: EventFileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        steps.push(`open ${mode}`)
        const file = await nodeFileSystem.open(path, mode, permissions)
        return { ...file, write: (...a) => (steps.push('write'), file.write(...a)), datasync: () => (steps.push('fsync file'), file.datasync()), close: () => (steps.push('close'), file.close()) }
      },
      rename: (from, to) => (steps.push(`rename ${to.slice(dir.length + 1)}`), nodeFileSystem.rename(from, to)),
      syncDir: (d) => (steps.push(`fsync dir ${d === dir}`), nodeFileSystem.syncDir(d)),
    }
    expect(await createGenerationStore({ dir, fs }).save('payload')).toBe(1)
    expect(steps).toEqual(['open w', 'write', 'fsync file', 'close', 'rename gen-000000000001.json', 'fsync dir true'])
    expect((await createGenerationStore({ dir }).loadNewest()).loaded?.payload).toBe('payload')
  })
})

describe('a data dir whose disk fills up', () => {
  it('keeps serving, says so once, leaves no half-written file, and takes writes again when space returns', async () => {
    const dir = await tempDir()
    const { fs, disk } = fillingDisk()
    const log = recordingLogger()
    const upstream = await changingUpstream()
    const relay = urlSourceFor(upstream, { pollIntervalMs: 50, store: createGenerationStore({ dir, fs }), log })
    opened.push(relay)
    await relay.open()
    await waitFor(() => (relay.relayStatus().dataDir?.lastGeneration ?? 0) > 0, 5000)

    disk.full = true
    const servedWhenFull = counter(relay)!
    await waitFor(() => (relay.relayStatus().dataDir?.writeFailures ?? 0) >= 5, 10_000)
    // Serving goes on with what the upstream says; the status says the disk fails.
    expect(counter(relay)!).toBeGreaterThan(servedWhenFull)
    expect(relay.relayStatus().dataDir).toMatchObject({ lastError: 'ENOSPC' })
    const errors = () => log.lines.filter((l) => /cannot write to the data dir/.test(l))
    expect(errors()).toHaveLength(1)
    await intact(dir)
    // A restart now reads the last good generation back, not a torn one.
    const reread = await createGenerationStore({ dir }).loadNewest()
    expect(reread.skipped).toEqual([])
    expect(reread.loaded).toBeDefined()

    disk.full = false
    await waitFor(() => relay.relayStatus().dataDir?.lastError === undefined, 10_000)
    expect(log.lines.filter((l) => /takes writes again/.test(l))).toHaveLength(1)
    expect(errors()).toHaveLength(1)
    await intact(dir)
  }, 30_000)

  it('through the GenerationStore seam: one error line for a run of failures, however many polls and retries', async () => {
    // On main every failed write logged an error: a relay polling every 10 s on a full disk wrote
    // 360 error lines an hour, onto the disk that was full.
    let full = true
    const saved: string[] = []
    const store: GenerationStore = {
      dir: '/full-disk',
      loadNewest: async () => ({ skipped: [] }),
      save: async (payload) => {
        if (full) throw Object.assign(new Error('no space'), { code: 'ENOSPC' })
        saved.push(payload)
        return saved.length
      },
      list: async () => [],
    }
    const log = recordingLogger()
    const relay = urlSourceFor(await changingUpstream(), { pollIntervalMs: 50, store, log })
    opened.push(relay)
    await relay.open()
    await waitFor(() => (relay.relayStatus().dataDir?.writeFailures ?? 0) >= 5, 10_000)
    expect(log.lines.filter((l) => /cannot write to the data dir/.test(l))).toHaveLength(1)
    full = false
    await waitFor(() => saved.length > 0, 10_000)
    expect(log.lines.filter((l) => /takes writes again/.test(l))).toHaveLength(1)
  }, 30_000)

  it('on a real 64 KiB tmpfs filled to the last byte (skipped where mount is not permitted)', async (context) => {
    const dir = await tinyTmpfs()
    if (!dir) return context.skip()
    const log = recordingLogger()
    const upstream = await changingUpstream()
    const relay = urlSourceFor(upstream, { pollIntervalMs: 50, store: createGenerationStore({ dir: join(dir, 'data') }), log })
    opened.push(relay)
    await relay.open()
    await waitFor(() => (relay.relayStatus().dataDir?.lastGeneration ?? 0) > 0, 5000)
    // Fill every byte that is left.
    const filler = await open(join(dir, 'filler'), 'w')
    try {
      for (;;) await filler.write(Buffer.alloc(1024))
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC')
    } finally {
      await filler.close().catch(() => {})
    }
    await waitFor(() => relay.relayStatus().dataDir?.lastError === 'ENOSPC' && relay.relayStatus().dataDir!.writeFailures >= 3, 10_000)
    expect(relay.relayStatus().ready).toBe(true)
    expect(log.lines.filter((l) => /cannot write to the data dir/.test(l))).toHaveLength(1)
    await intact(join(dir, 'data'))
    expect((await createGenerationStore({ dir: join(dir, 'data') }).loadNewest()).skipped).toEqual([])
    await rm(join(dir, 'filler'))
    await waitFor(() => relay.relayStatus().dataDir?.lastError === undefined, 10_000)
    await intact(join(dir, 'data'))
  }, 30_000)

  it('a disk that fits `keep` generations but not one more: the older ones make room, the newest good one stays (real 64 KiB tmpfs)', async (context) => {
    // Before: with 3 generations of ~18 KB on the disk the 4th (its temp file) never fit, and every
    // write failed from then on; a restart in an outage served the 3rd, whatever was served since.
    const dir = await tinyTmpfs()
    if (!dir) return context.skip()
    const store = createGenerationStore({ dir, keep: 3 })
    for (let i = 1; i <= 6; i++) expect(await store.save(String(i % 10).repeat(18_000))).toBe(i)
    const newest = await createGenerationStore({ dir }).loadNewest()
    expect(newest).toMatchObject({ loaded: { number: 6, payload: '6'.repeat(18_000) }, skipped: [] })
    await intact(dir)
  })

  it('the same through the seam: a disk with room for 3 files', async () => {
    const dir = await tempDir()
    const fs: EventFileSystem = {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const file = await nodeFileSystem.open(path, mode, permissions)
        const files = (await readdir(dir)).length
        return { ...file, write: async (...a) => (files > 3 ? Promise.reject(Object.assign(new Error('full'), { code: 'ENOSPC' })) : file.write(...a)) }
      },
    }
    const store = createGenerationStore({ dir, keep: 3, fs })
    for (let i = 1; i <= 5; i++) expect(await store.save(`payload ${i}`)).toBe(i)
    expect((await createGenerationStore({ dir }).loadNewest()).loaded).toMatchObject({ number: 5, payload: 'payload 5' })
    await intact(dir)
  })

  it('making room never deletes the newest good generation: a torn newest file and a disk still full after the room is made', async () => {
    // Before: the room was made by deleting every generation but the newest by number, torn or not.
    // With gen-3 torn (a power cut, a hand edit) the relay served gen-2; a full disk deleted gen-1
    // and gen-2, the retry failed too, and the next start found no generation it could read.
    for (const load of [true, false]) {
      const dir = await tempDir()
      const writer = createGenerationStore({ dir })
      await writer.save('payload 1')
      await writer.save('payload 2')
      await writeFile(join(dir, 'gen-000000000003.json'), encodeGeneration('payload 3').slice(0, -4))
      const fs: EventFileSystem = {
        ...nodeFileSystem,
        async open(path, mode, permissions) {
          const file = await nodeFileSystem.open(path, mode, permissions)
          return { ...file, write: async () => Promise.reject(Object.assign(new Error('full'), { code: 'ENOSPC' })) }
        },
      }
      const store = createGenerationStore({ dir, fs })
      if (load) expect((await store.loadNewest()).loaded).toMatchObject({ number: 2 })
      await expect(store.save('payload 4')).rejects.toMatchObject({ code: 'ENOSPC' })
      expect((await createGenerationStore({ dir }).loadNewest()).loaded, `after a load: ${load}`).toMatchObject({ number: 2, payload: 'payload 2' })
    }
  })
})


// A data dir may hold generations written for another source or other credentials (a relay re-pointed
// at another upstream, or sending another key: see relay-datadir-source.test.ts). This relay never
// serves them, so they are stale to it: on a full disk they make room as its own old ones do (its
// newest good one still never goes), and its pruning keeps its own good ones before them.
/** A dir where this source ('production') wrote gen-1, then another ('staging') gen-2 and gen-3. */
async function productionThenStaging(dir: string): Promise<void> {
  await createGenerationStore({ dir, source: 'production' }).save('production 1')
  const other = createGenerationStore({ dir, source: 'staging' })
  await other.loadNewest()
  await other.save('staging 2')
  await other.save('staging 3')
}

describe('a data dir holding another source’s generations', () => {
  /** The real file system, with room for `room` generation files: a write with that many present fails with ENOSPC. */
  function roomFor(dir: string, room: number): EventFileSystem {
    return {
      ...nodeFileSystem,
      async open(path, mode, permissions) {
        const file = await nodeFileSystem.open(path, mode, permissions)
        const present = (await readdir(dir)).filter((n) => n.startsWith('gen-')).length
        return { ...file, write: async (...a) => (mode === 'w' && present >= room ? Promise.reject(Object.assign(new Error('full'), { code: 'ENOSPC' })) : file.write(...a)) }
      },
    }
  }
  const generations = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('gen-')).sort()
  const sourceOf = async (dir: string, name: string) => JSON.parse((await readFile(join(dir, name), 'utf8')).split('\n')[0]!).source as string | undefined

  it('on a full disk holding only the other source’s, they make room and the write succeeds', async () => {
    // Before: the room was made only by deleting this source's older generations; with none of its
    // own the write failed, and every write after it, for as long as the relay ran (and after a restart).
    const dir = await tempDir()
    const old = createGenerationStore({ dir, source: 'staging' })
    for (let i = 1; i <= 3; i++) await old.save(`staging ${i}`)
    const store = createGenerationStore({ dir, source: 'production', fs: roomFor(dir, 3) })
    expect((await store.loadNewest()).skipped.map((s) => s.kind)).toEqual(['other-source', 'other-source', 'other-source'])
    expect(await store.save('production 1')).toBe(4)
    expect(await store.save('production 2')).toBe(5)
    expect((await createGenerationStore({ dir, source: 'production' }).loadNewest()).loaded).toMatchObject({ number: 5, payload: 'production 2' })
    await intact(dir)
  })

  it('on a full disk where they are newer than this source’s good one, they make room and that one stays', async () => {
    // Before: this source's gen-1 was the newest good one and the oldest file, so nothing was deleted.
    const dir = await tempDir()
    await productionThenStaging(dir)
    const store = createGenerationStore({ dir, source: 'production', fs: roomFor(dir, 3) })
    expect((await store.loadNewest()).loaded).toMatchObject({ number: 1 })
    expect(await store.save('production 4')).toBe(4)
    expect(await generations(dir)).toEqual(['gen-000000000001.json', 'gen-000000000004.json'])
    expect((await createGenerationStore({ dir, source: 'production' }).loadNewest()).loaded).toMatchObject({ number: 4, payload: 'production 4' })
  })

  it('a full disk never deletes this source’s newest good one for them, nor theirs when nothing would make room', async () => {
    const dir = await tempDir()
    await createGenerationStore({ dir, source: 'production' }).save('production 1')
    const store = createGenerationStore({ dir, source: 'production', fs: roomFor(dir, 1) })
    await expect(store.save('production 2')).rejects.toMatchObject({ code: 'ENOSPC' })
    expect((await createGenerationStore({ dir, source: 'production' }).loadNewest()).loaded).toMatchObject({ number: 1, payload: 'production 1' })
  })

  it('pruning after a save keeps this source’s good generations first; theirs go as its own fill `keep`', async () => {
    // Before: kept by number alone. A relay back on its own source after a spell on another found
    // [staging 3, staging 2, production 1]; its first save deleted production 1 and kept staging's two,
    // so it had no older generation of its own to fall back to.
    const dir = await tempDir()
    await productionThenStaging(dir)
    const store = createGenerationStore({ dir, source: 'production', keep: 3 })
    await store.loadNewest()
    await store.save('production 4')
    const after = await generations(dir)
    expect(after).toContain('gen-000000000001.json')
    expect(after).toHaveLength(3)
    // They do not live for ever: gone once this source has `keep` of its own.
    await store.save('production 5')
    await store.save('production 6')
    const names = await generations(dir)
    expect(names).toEqual(['gen-000000000004.json', 'gen-000000000005.json', 'gen-000000000006.json'])
    for (const name of names) expect(await sourceOf(dir, name)).toBe('production')
  })
})
