// Appends that never leave a torn or glued line, and a 202 that means "on disk".
import { readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { faultyFileSystem } from './events-faults'

let counter = 0
function event(overrides: Record<string, unknown> = {}) {
  counter++
  return { id: `dur-${process.pid}-${counter}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000 + counter, ...overrides }
}
const batch = (n: number) => ({ events: Array.from({ length: n }, () => event()) })
const linesOf = (events: unknown[]) => events.map((e) => JSON.stringify(e) + '\n').join('')
// Whether `response` settles within `ms`: the server is given every chance to answer early.
const answeredWithin = (response: Promise<unknown>, ms: number) =>
  Promise.race([response.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])

async function setup() {
  const fs = faultyFileSystem()
  const file = join(await tempDir(), 'events.jsonl')
  const server = await startServer({ eventsFile: file, eventsFileSystem: fs })
  const send = (body: unknown) => post(`${server.url}/holdfast/v1/events`, body)
  return { fs, file, server, send }
}

describe('events file durability', { timeout: 30_000 }, () => {
  it('a disk that fills up mid-line: 500, the half line is cut back, and the retry is stored whole', async () => {
    const { fs, file, send } = await setup()
    const a = batch(3)
    expect((await send(a)).status).toBe(202)
    const b = batch(3)
    fs.failNextWrite(17)
    const failed = await send(b)
    expect(failed.status).toBe(500)
    expect(await readFile(file, 'utf8')).toBe(linesOf(a.events))
    // The retry is not called a duplicate: its ids were released with the failed write.
    const retry = await send(b)
    expect(await retry.json()).toEqual({ accepted: 3, duplicates: 0 })
    expect(await readFile(file, 'utf8')).toBe(linesOf([...a.events, ...b.events]))
  })

  it('a failing fsync is a 500 with the batch cut back, never a 202', async () => {
    const { fs, file, send } = await setup()
    const a = batch(2)
    fs.failSyncs(1)
    expect((await send(a)).status).toBe(500)
    expect(await readFile(file, 'utf8')).toBe('')
    expect((await send(a)).status).toBe(202)
    expect(await readFile(file, 'utf8')).toBe(linesOf(a.events))
  })

  it('when even the cut-back fails, the next append cuts first, so nothing is glued', async () => {
    const { fs, file, send } = await setup()
    const a = batch(1)
    fs.failNextWrite(9)
    fs.failTruncates(1)
    expect((await send(a)).status).toBe(500)
    // The half line is still there for now...
    expect((await readFile(file, 'utf8')).length).toBe(9)
    const b = batch(2)
    expect((await send(b)).status).toBe(202)
    // ...and was cut before b went down.
    expect(await readFile(file, 'utf8')).toBe(linesOf(b.events))
  })

  it('a batch near the 1 MiB cap goes down in one write()', async () => {
    const { fs, file, send } = await setup()
    const big = { events: Array.from({ length: 4000 }, () => event({ metadata: { note: 'x'.repeat(150) } })) }
    const body = JSON.stringify(big)
    expect(body.length).toBeGreaterThan(600 * 1024)
    expect(body.length).toBeLessThan(1_048_576)
    fs.writes.length = 0
    expect((await send(big)).status).toBe(202)
    const bytes = Buffer.byteLength(linesOf(big.events))
    expect(fs.writes).toEqual([bytes])
    expect((await readFile(file, 'utf8')).split('\n').filter(Boolean)).toHaveLength(4000)
  })

  it('answers 202 only after the fsync returned', async () => {
    const { fs, send } = await setup()
    const held = fs.holdSyncs()
    let answered = false
    const response = send(batch(2)).then((r) => {
      answered = true
      return r
    })
    await held.waiting
    // Give the server every chance to answer early.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
    expect(answered).toBe(false)
    held.release()
    expect((await response).status).toBe(202)
  })

  it('a retry on another connection while the first write is in flight waits for it: when that write fails, the retry stores the batch', async () => {
    // The client's first POST is on its way to disk when the connection drops (or the client
    // times out) and it retries at once. Timeline before the fix: the retry found the ids claimed
    // and was answered 202 {"accepted": 0, "duplicates": 3} at once; then the first write failed
    // (a 500 to a client that was gone), the ids were released, and nobody sent the batch again:
    // three events acknowledged and lost.
    const { fs, file, send } = await setup()
    const a = batch(3)
    const held = fs.holdSyncs()
    fs.failSyncs(1)
    try {
      const first = send(a)
      await held.waiting
      const retry = send(a)
      expect(await answeredWithin(retry, 300)).toBe(false)
      held.release()
      expect((await first).status).toBe(500)
      const answer = await retry
      expect(answer.status).toBe(202)
      expect(await answer.json()).toEqual({ accepted: 3, duplicates: 0 })
      expect(await readFile(file, 'utf8')).toBe(linesOf(a.events))
      // From now on the batch is a duplicate.
      expect(await (await send(a)).json()).toEqual({ accepted: 0, duplicates: 3 })
    } finally {
      held.release()
    }
  })

  it('a retry while the first write is in flight is answered "duplicates" only once that write is durable', async () => {
    const { fs, file, send } = await setup()
    const a = batch(2)
    const held = fs.holdSyncs()
    try {
      const first = send(a)
      await held.waiting
      const retry = send(a)
      expect(await answeredWithin(retry, 300)).toBe(false)
      held.release()
      expect(await (await first).json()).toEqual({ accepted: 2, duplicates: 0 })
      expect(await (await retry).json()).toEqual({ accepted: 0, duplicates: 2 })
      expect(await readFile(file, 'utf8')).toBe(linesOf(a.events))
    } finally {
      held.release()
    }
  })

  it('concurrent batches share fsyncs (group commit), each line whole', async () => {
    const { fs, file, send } = await setup()
    fs.syncDelayMs = 150
    const batches = Array.from({ length: 30 }, () => batch(5))
    fs.syncs = 0
    const responses = await Promise.all(batches.map((b) => send(b)))
    expect(responses.map((r) => r.status)).toEqual(batches.map(() => 202))
    expect(fs.syncs).toBeLessThan(batches.length / 2)
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean)
    expect(lines).toHaveLength(150)
    expect(new Set(lines.map((line) => JSON.parse(line).id))).toEqual(new Set(batches.flatMap((b) => b.events.map((e) => e.id))))
  })

  it('a restart after a failed write: what was answered 202 is there, readable, and still de-duplicated', async () => {
    const fs = faultyFileSystem()
    const file = join(await tempDir(), 'events.jsonl')
    const first = await startServer({ eventsFile: file, eventsFileSystem: fs })
    const a = batch(4)
    expect((await post(`${first.url}/holdfast/v1/events`, a)).status).toBe(202)
    fs.failNextWrite(30)
    fs.failTruncates(1)
    expect((await post(`${first.url}/holdfast/v1/events`, batch(4))).status).toBe(500)
    await first.close()
    const second = await startServer({ eventsFile: file })
    expect(second.events()).toEqual(a.events)
    expect(await (await post(`${second.url}/holdfast/v1/events`, a)).json()).toEqual({ accepted: 0, duplicates: 4 })
    await waitFor(async () => (await readFile(file, 'utf8')) === linesOf(a.events), 5000)
  })
})

describe('a file that could not be opened again', { timeout: 30_000 }, () => {
  // Opens fail (EMFILE, ENOSPC) while `failing` is set; everything else is the faulty file system.
  const flakyOpens = () => {
    const base = faultyFileSystem()
    let failing = false
    const fs: typeof base & { failing: boolean } = {
      ...base,
      get failing() {
        return failing
      },
      set failing(value: boolean) {
        failing = value
      },
      async open(path: string, mode: 'a' | 'r' | 'w') {
        if (failing && mode === 'a') throw Object.assign(new Error('EMFILE: too many open files, injected'), { code: 'EMFILE' })
        return base.open(path, mode)
      },
    }
    return fs
  }

  it('an open that fails during rotation: 500 while it fails, 202 again (in the new file) once it works, without a restart', async () => {
    const fs = flakyOpens()
    const file = join(await tempDir(), 'events.jsonl')
    const server = await startServer({ eventsFile: file, eventsFileSystem: fs, eventsMaxBytes: 600 })
    const send = (body: unknown) => post(`${server.url}/holdfast/v1/events`, body)
    // Lines are about 80 bytes: a fills most of the file, and b does not fit beside it.
    const a = batch(5)
    expect((await send(a)).status).toBe(202)
    fs.failing = true
    const b = batch(3)
    expect((await send(b)).status).toBe(500)
    fs.failing = false
    expect((await send(b)).status).toBe(202)
    const c = batch(1)
    expect((await send(c)).status).toBe(202)
    expect(await readFile(`${file}.1`, 'utf8')).toBe(linesOf(a.events))
    expect(await readFile(file, 'utf8')).toBe(linesOf([...b.events, ...c.events]))
  })

  it('a rotation whose last rename keeps failing deletes the oldest kept file once, not one more at each retry', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const base = faultyFileSystem()
    let failing = false
    const fs: typeof base = {
      ...base,
      async rename(from: string, to: string) {
        if (failing && from === file) throw Object.assign(new Error('EIO: i/o error, rename (injected)'), { code: 'EIO' })
        return base.rename(from, to)
      },
    }
    const server = await startServer({ eventsFile: file, eventsFileSystem: fs, eventsMaxBytes: 600, eventsKeep: 3 })
    const send = (body: unknown) => post(`${server.url}/holdfast/v1/events`, body)
    // Lines are about 80 bytes: each batch of 5 fills a file, so each next one rotates.
    const kept = [batch(5), batch(5), batch(5), batch(5)]
    for (const b of kept) expect((await send(b)).status).toBe(202)
    expect(await readFile(`${file}.3`, 'utf8')).toBe(linesOf(kept[0].events))
    // The next rotation deletes .3 (kept[0]), then cannot move events.jsonl aside: 500s, retried.
    failing = true
    const next = batch(5)
    for (let i = 0; i < 3; i++) expect((await send(next)).status).toBe(500)
    failing = false
    expect((await send(next)).status).toBe(202)
    // Before: each failed try deleted the oldest file again: kept[1] and kept[2] were gone too.
    expect(await readFile(`${file}.3`, 'utf8')).toBe(linesOf(kept[1].events))
    expect(await readFile(`${file}.2`, 'utf8')).toBe(linesOf(kept[2].events))
    expect(await readFile(`${file}.1`, 'utf8')).toBe(linesOf(kept[3].events))
    expect(await readFile(file, 'utf8')).toBe(linesOf(next.events))
  })
  it('a crash mid-rotation left .1 and .3 (no .2): the next rotation fills the gap and deletes nothing; the one after deletes only the oldest', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const [oldest, older, current] = [batch(5), batch(5), batch(5)]
    await writeFile(`${file}.3`, linesOf(oldest.events))
    await writeFile(`${file}.1`, linesOf(older.events))
    await writeFile(file, linesOf(current.events))
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 600, eventsKeep: 3, logger })
    const send = (body: unknown) => post(`${server.url}/holdfast/v1/events`, body)
    const next = batch(5)
    expect((await send(next)).status).toBe(202)
    expect(await readFile(`${file}.3`, 'utf8')).toBe(linesOf(oldest.events))
    expect(await readFile(`${file}.2`, 'utf8')).toBe(linesOf(older.events))
    expect(await readFile(`${file}.1`, 'utf8')).toBe(linesOf(current.events))
    expect(logger.lines.filter((line) => /deleted/.test(line))).toEqual([])
    const last = batch(5)
    expect((await send(last)).status).toBe(202)
    // Only now, with .1 … .3 taken, the oldest goes, said once.
    expect(await readFile(`${file}.3`, 'utf8')).toBe(linesOf(older.events))
    expect(await readFile(`${file}.2`, 'utf8')).toBe(linesOf(current.events))
    expect(await readFile(`${file}.1`, 'utf8')).toBe(linesOf(next.events))
    expect(await readFile(file, 'utf8')).toBe(linesOf(last.events))
    expect(logger.lines.filter((line) => /deleted .*events\.jsonl\.3/.test(line))).toHaveLength(1)
    expect((await readdir(dir)).filter((name) => /^events\.jsonl(\.\d+)?$/.test(name)).sort()).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2', 'events.jsonl.3'])
  })

  it('logrotate renaming the files as the server runs (events.jsonl → .1, .1 → .2): the next rotation keeps --events-keep files, the newest ones, and never more', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const server = await startServer({ eventsFile: file, eventsMaxBytes: 600, eventsKeep: 3 })
    const send = (body: unknown) => post(`${server.url}/holdfast/v1/events`, body)
    const sent = [batch(5), batch(5)]
    for (const b of sent) expect((await send(b)).status).toBe(202)
    // The server rotated once: .1 = sent[0], events.jsonl = sent[1]. logrotate (numbered, create) moves them on.
    await rename(`${file}.1`, `${file}.2`)
    await rename(file, `${file}.1`)
    for (let i = 0; i < 4; i++) {
      const b = batch(5)
      sent.push(b)
      expect((await send(b)).status).toBe(202)
      const names = (await readdir(dir)).filter((name) => /^events\.jsonl(\.\d+)?$/.test(name))
      expect(names.length).toBeLessThanOrEqual(1 + 3)
    }
    // Newest first, whole batches, in order: nothing kept out of order, nothing newer deleted.
    const kept = [`${file}.3`, `${file}.2`, `${file}.1`, file]
    const texts = await Promise.all(kept.map((path) => readFile(path, 'utf8')))
    expect(texts.join('')).toBe(sent.slice(-4).map((b) => linesOf(b.events)).join(''))
  })
})
