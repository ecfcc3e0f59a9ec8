// The bounded de-duplication window, rotation with a size cap, and a start that streams the tail.
import { readdir, readFile, rename, stat, utimes, writeFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { post, recordingLogger, startServer, tempDir } from './helpers'
import { faultyFileSystem } from './events-faults'

let counter = 0
const event = (id = `win-${process.pid}-${++counter}`) => ({ id, type: 'custom', name: 'clicked', time: 1_700_000_000_000 + counter })
const send = async (url: string, events: unknown[]) => (await post(`${url}/holdfast/v1/events`, { events })).json()

describe('de-duplication window', { timeout: 30_000 }, () => {
  it('refuses a duplicate within the time window and accepts it again past it (at-least-once)', async () => {
    let now = 1_000_000
    const server = await startServer({ eventsDedupe: { windowMs: 60_000, now: () => now } })
    const a = event()
    expect(await send(server.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
    now += 59_000
    expect(await send(server.url, [a])).toEqual({ accepted: 0, duplicates: 1 })
    now += 2_000
    expect(await send(server.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
  })

  it('remembers at most maxIds ids: the oldest are forgotten first', async () => {
    const server = await startServer({ eventsDedupe: { maxIds: 3 } })
    const [a, b, c, d] = [event(), event(), event(), event()]
    await send(server.url, [a, b, c, d])
    expect(await send(server.url, [b, c, d])).toEqual({ accepted: 0, duplicates: 3 })
    expect(await send(server.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
  })

  it('survives a restart: the last maxIds ids are read back from the tail of the file', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const first = await startServer({ eventsFile: file })
    const events = Array.from({ length: 10 }, () => event())
    await send(first.url, events)
    await first.close()
    const second = await startServer({ eventsFile: file, eventsDedupe: { maxIds: 4 } })
    expect(await send(second.url, events.slice(6))).toEqual({ accepted: 0, duplicates: 4 })
    expect(await send(second.url, events.slice(0, 1))).toEqual({ accepted: 1, duplicates: 0 })
  })

  it('after a restart, ids count as accepted when their file was last written: past the window they are forgotten', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const first = await startServer({ eventsFile: file })
    const a = event()
    await send(first.url, [a])
    await first.close()
    const written = (await stat(file)).mtimeMs
    const late = await startServer({ eventsFile: file, eventsDedupe: { windowMs: 60_000, now: () => written + 61_000 } })
    expect(await send(late.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
    await late.close()
    const b = event()
    const soon = await startServer({ eventsFile: file, eventsDedupe: { windowMs: 60_000, now: () => Date.now() } })
    expect(await send(soon.url, [a, b])).toEqual({ accepted: 1, duplicates: 1 })
  })

  it('a wall clock stepped two days forward for a moment (a bad NTP answer) forgets no id: a retry is still a duplicate, stored once', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    // The system clock as Date.now reads it (spied before the server starts, so whatever took
    // Date.now then reads this); the process's monotonic clock (performance.now) does not step.
    const wall = vi.spyOn(Date, 'now')
    const server = await startServer({ eventsFile: file })
    const a = event()
    expect(await send(server.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
    const stepped = Date.now() + 2 * 24 * 60 * 60 * 1000
    wall.mockImplementation(() => stepped)
    try {
      expect(await send(server.url, [event()])).toEqual({ accepted: 1, duplicates: 0 })
    } finally {
      wall.mockRestore()
    }
    // Before: that one batch at the stepped clock found every id older than the 24 h window and
    // forgot them all; the client's retry of `a`, seconds after it was stored, was stored again.
    expect(await send(server.url, [a])).toEqual({ accepted: 0, duplicates: 1 })
    const ids = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line).id)
    expect(ids.filter((id) => id === a.id)).toHaveLength(1)
  })

  it.each([
    ['two days behind', -1],
    ['two days ahead', 1],
  ] as const)('a first run whose clock was %s at its start (corrected since): after a restart its ids are duplicates, then forgotten a window later', async (_, sign) => {
    const file = join(await tempDir(), 'events.jsonl')
    const day = 24 * 60 * 60 * 1000
    // The first process's steady clock kept the wrong time it started with; the file's times are
    // the kernel's (the corrected clock). The dedupe stamps are not written: the restart reads
    // the files' times against its own clock.
    const first = await startServer({ eventsFile: file, eventsDedupe: { now: () => Date.now() + sign * 2 * day } })
    const a = event()
    expect(await send(first.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
    await first.close()
    const restarted = await startServer({ eventsFile: file, eventsDedupe: { now: () => Date.now() } })
    // Not forgotten at once (the clock behind), nor kept beyond the window (the clock ahead).
    expect(await send(restarted.url, [a])).toEqual({ accepted: 0, duplicates: 1 })
    await restarted.close()
    const dayLater = await startServer({ eventsFile: file, eventsDedupe: { now: () => Date.now() + day + 60_000 } })
    expect(await send(dayLater.url, [a])).toEqual({ accepted: 1, duplicates: 0 })
  })
})

describe('rotation', { timeout: 30_000 }, () => {
  it('rotates past --events-max-bytes, keeps N files, and de-duplicates across them after a restart', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const options = { eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2 }
    const server = await startServer(options)
    const sent: Array<ReturnType<typeof event>> = []
    for (let i = 0; i < 30; i++) {
      const batch = [event(), event()]
      sent.push(...batch)
      expect(await send(server.url, batch)).toEqual({ accepted: 2, duplicates: 0 })
    }
    await server.close()
    expect((await readdir(dir)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2'])
    const lines: string[] = []
    for (const name of ['events.jsonl.2', 'events.jsonl.1', 'events.jsonl']) {
      const text = await readFile(join(dir, name), 'utf8')
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2_000)
      lines.push(...text.split('\n').filter(Boolean))
    }
    // What is kept is the newest events, in order, whole lines only.
    const kept = lines.map((line) => JSON.parse(line))
    expect(kept).toEqual(sent.slice(-kept.length))
    const restarted = await startServer(options)
    const oldestKept = kept[0]
    expect(await send(restarted.url, [oldestKept, kept[kept.length - 1]])).toEqual({ accepted: 0, duplicates: 2 })
  })

  it('a rotated file deleted by --events-keep is said: a warning naming it and its bytes, and a metric of the bytes deleted', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const warnings: string[] = []
    const logger = { info: () => {}, warn: (line: string) => void warnings.push(line), error: (line: string) => void warnings.push(line) }
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 1, logger })
    const deletedBytes = async () => Number(/^holdfast_events_file_deleted_bytes_total (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1])
    expect(await deletedBytes()).toBe(0)
    // Fill events.jsonl and rotate it to .1 (nothing deleted yet), then fill it again.
    let rotatedSize = 0
    for (let i = 0; i < 60 && rotatedSize === 0; i++) {
      await send(server.url, [event(), event()])
      rotatedSize = (await stat(join(dir, 'events.jsonl.1')).catch(() => undefined))?.size ?? 0
    }
    expect(rotatedSize).toBeGreaterThan(0)
    expect(warnings).toEqual([])
    // The next rotation deletes that .1: events answered 202, their only copy on this server.
    while ((await stat(join(dir, 'events.jsonl.1'))).size === rotatedSize) await send(server.url, [event(), event()])
    // Before: only an info line "rotated to events.jsonl.1"; nothing said that accepted events were deleted.
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`deleted .*events\\.jsonl\\.1 \\(${rotatedSize} bytes of accepted events.*--events-keep 1`))])
    expect(await deletedBytes()).toBe(rotatedSize)
  })
})

describe('--events-keep lowered at a restart', { timeout: 30_000 }, () => {
  it('rotated files numbered above it are read back once (their ids still duplicates), then deleted, said in one warning naming them and their bytes, and counted', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    // What a server run with --events-keep 5 left: .1 (newest) … .5 (oldest), all within the window.
    const stored = [1, 2, 3, 4, 5].map(() => event())
    const sizes: number[] = []
    const at = Date.now() / 1000
    await writeFile(file, '')
    for (const [i, e] of stored.entries()) {
      const text = JSON.stringify(e) + '\n'
      await writeFile(`${file}.${i + 1}`, text)
      await utimes(`${file}.${i + 1}`, at - 60 * (i + 1), at - 60 * (i + 1))
      sizes.push(Buffer.byteLength(text))
    }
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2, logger })
    // Before: .3 … .5 stayed for ever, unread (a client's retry of their events was stored again)
    // and undeleted, and nothing said so.
    expect((await readdir(dir)).filter((name) => /^events\.jsonl(\.\d+)?$/.test(name)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2'])
    const said = logger.lines.filter((line) => /above --events-keep/.test(line))
    expect(said).toEqual([expect.stringMatching(new RegExp(`deleted .*events\\.jsonl\\.3 \\(${sizes[2]} bytes\\).*events\\.jsonl\\.4 \\(${sizes[3]} bytes\\).*events\\.jsonl\\.5 \\(${sizes[4]} bytes\\).* above --events-keep 2`))])
    expect(Number(/^holdfast_events_file_deleted_bytes_total (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1])).toBe(sizes[2] + sizes[3] + sizes[4])
    // Every event stored there is still a duplicate in this run, as one of a kept file is.
    expect(await send(server.url, stored)).toEqual({ accepted: 0, duplicates: 5 })
    await server.close()
    // Said once: the next start has nothing above it.
    const again = recordingLogger()
    await (await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2, logger: again })).close()
    expect(again.lines.filter((line) => /above --events-keep/.test(line))).toEqual([])
  })
})

describe('--events-keep lowered: files older than the de-duplication window', { timeout: 30_000 }, () => {
  // The ids are read back newest first until a file is older than the window; the files past it
  // are not read (their ids would be forgotten at once). They were deleted all the same, the one
  // warning saying "their ids were read back first" of every file it named.
  it('are deleted without being read back, and the warning says so of them; the ones read back are said apart', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const at = Date.now() / 1000
    await writeFile(file, '')
    // .1 … .3 written in the last minutes, .4 and .5 two and three hours ago; a window of one hour.
    const ages = [60, 120, 180, 2 * 3600, 3 * 3600]
    for (const [i, age] of ages.entries()) {
      await writeFile(`${file}.${i + 1}`, JSON.stringify(event()) + '\n')
      await utimes(`${file}.${i + 1}`, at - age, at - age)
    }
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2, eventsDedupe: { windowMs: 3600_000 }, logger })
    await server.close()
    expect((await readdir(dir)).filter((name) => /^events\.jsonl(\.\d+)?$/.test(name)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2'])
    const said = logger.lines.filter((line) => /above --events-keep/.test(line))
    expect(said).toHaveLength(2)
    expect(said[0]).toMatch(/deleted \S*events\.jsonl\.3 \(\d+ bytes\), rotated files .*above --events-keep 2.*their ids were read back first/)
    expect(said[0]).not.toMatch(/jsonl\.[45]/)
    expect(said[1]).toMatch(/deleted \S*events\.jsonl\.4 \(\d+ bytes\), \S*events\.jsonl\.5 \(\d+ bytes\), rotated files .*above --events-keep 2.*older than the de-duplication window.*not read back/)
    expect(said[1]).not.toMatch(/were read back first/)
  })
})

describe('--events-keep lowered: a file whose ids could not be read back', { timeout: 30_000 }, () => {
  it('is left where it is, said, and not counted deleted; the next start tries again', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const stored = [1, 2, 3].map(() => event())
    const at = Date.now() / 1000
    await writeFile(file, '')
    for (const [i, e] of stored.entries()) {
      await writeFile(`${file}.${i + 1}`, JSON.stringify(e) + '\n')
      await utimes(`${file}.${i + 1}`, at - 60 * (i + 1), at - 60 * (i + 1))
    }
    // events.jsonl.3 (above --events-keep 2) answers EIO when read: a bad sector, a dying mount.
    const fs = faultyFileSystem()
    fs.beforeRead = (_length, path) => {
      if (path.endsWith('.jsonl.3')) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
    }
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2, eventsFileSystem: fs, logger })
    expect(logger.lines).toContainEqual(expect.stringMatching(/cannot read ids back from .*events\.jsonl\.3/))
    // Before: deleted all the same, the warning saying "their ids were read back first": the
    // events it held neither read by this server nor left for anyone to.
    expect((await readdir(dir)).filter((name) => /^events\.jsonl(\.\d+)?$/.test(name)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2', 'events.jsonl.3'])
    expect(logger.lines.filter((line) => /deleted .*above --events-keep/.test(line))).toEqual([])
    expect(logger.lines).toContainEqual(expect.stringMatching(/events\.jsonl\.3.*numbered above --events-keep 2.*(could not be read back|not read back).*left/))
    expect(Number(/^holdfast_events_file_deleted_bytes_total (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1])).toBe(0)
    await server.close()
    // The disk answers again: read back, then deleted.
    const again = recordingLogger()
    const next = await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2, logger: again })
    expect(again.lines).toContainEqual(expect.stringMatching(/deleted .*events\.jsonl\.3 .*above --events-keep 2/))
    expect(await send(next.url, [stored[2]])).toEqual({ accepted: 0, duplicates: 1 })
    await next.close()
  })
})

describe('--events-keep lowered: a file renamed over while the ids were read back', { timeout: 30_000 }, () => {
  it('is not deleted: the file of that name is no longer the one listed', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const at = Date.now() / 1000
    await writeFile(file, '')
    for (const i of [1, 2, 3]) {
      await writeFile(`${file}.${i}`, JSON.stringify(event()) + '\n')
      await utimes(`${file}.${i}`, at - 60 * i, at - 60 * i)
    }
    // A logrotate run (rotate 5) shifts the files while the server reads .3 back: .2 becomes .3.
    const fs = faultyFileSystem()
    let shifted = false
    fs.beforeRead = async (_length, path) => {
      if (!path.endsWith('.jsonl.3') || shifted) return
      shifted = true
      await rename(`${file}.2`, `${file}.3`)
    }
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 2_000, eventsKeep: 2, eventsFileSystem: fs, logger })
    expect(shifted).toBe(true)
    // Before: the file now named .3 (another program's, just renamed there) was deleted.
    expect((await readdir(dir)).filter((name) => /^events\.jsonl(\.\d+)?$/.test(name)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.3'])
    expect(logger.lines).toContainEqual(expect.stringMatching(/events\.jsonl\.3 \(replaced since .*above --events-keep 2.*left/))
    await server.close()
  })
})

describe('start-up reads the tail, streaming', { timeout: 30_000 }, () => {
  it('a 48 MiB events file: start reads only the tail, in chunks of at most 64 KiB, and de-duplicates against it', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const handle = await open(file, 'w')
    const line = (i: number) => JSON.stringify({ id: `big-${i}`, type: 'custom', name: 'clicked', time: i, metadata: { note: 'z'.repeat(60) } }) + '\n'
    let size = 0
    let i = 0
    while (size < 48 * 1024 * 1024) {
      let chunk = ''
      for (let j = 0; j < 5000; j++) chunk += line(i++)
      await handle.write(chunk)
      size += Buffer.byteLength(chunk)
    }
    await handle.close()
    const total = i
    const fs = faultyFileSystem()
    const heapBefore = process.memoryUsage().heapUsed
    const server = await startServer({ eventsFile: file, eventsFileSystem: fs, eventsDedupe: { maxIds: 10_000 } })
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore
    expect(Math.max(...fs.reads)).toBeLessThanOrEqual(64 * 1024)
    const bytesRead = fs.reads.reduce((a, b) => a + b, 0)
    expect(bytesRead).toBeLessThan(4 * 1024 * 1024)
    expect(heapGrowth).toBeLessThan(32 * 1024 * 1024)
    expect(server.events().at(-1)).toMatchObject({ id: `big-${total - 1}` })
    expect(await send(server.url, [event(`big-${total - 1}`), event(`big-${total - 10_000}`), event(`big-${total - 10_001}`)])).toEqual({ accepted: 1, duplicates: 2 })
  }, 60_000)

  it('a file past 512 MiB (sparse: 600 MiB of zeros, then events) starts, with bounded memory', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const handle = await open(file, 'w')
    const hole = 600 * 1024 * 1024
    const events = Array.from({ length: 1000 }, (_, i) => ({ id: `after-hole-${i}`, type: 'custom', name: 'n', time: i }))
    await handle.write('\n' + events.map((e) => JSON.stringify(e) + '\n').join(''), hole)
    await handle.close()
    expect((await stat(file)).size).toBeGreaterThan(hole)
    const fs = faultyFileSystem()
    const heapBefore = process.memoryUsage().heapUsed
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, eventsFileSystem: fs, logger })
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024)
    expect(Math.max(...fs.reads)).toBeLessThanOrEqual(64 * 1024)
    expect(server.events()).toEqual(events)
    expect(await send(server.url, [events[0], events[999]])).toEqual({ accepted: 0, duplicates: 2 })
    // The zeros are one unreadable "line", skipped without being buffered.
    expect(logger.lines.join('\n')).toMatch(/skipped 1 unreadable line/)
  }, 120_000)

  it('an unreadable line in the tail is skipped with a warning, not fatal', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const a = event()
    await writeFile(file, `not json\n${JSON.stringify(a)}\n{"id":"no-type"}\n`)
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, logger })
    expect(server.events()).toEqual([a])
    expect(logger.lines.join('\n')).toMatch(/\[holdfast-server\] events: skipped 2 unreadable line/)
    expect(await send(server.url, [a])).toEqual({ accepted: 0, duplicates: 1 })
  })
})
