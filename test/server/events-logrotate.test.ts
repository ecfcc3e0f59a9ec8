// The events file moved, deleted or emptied under a running server (logrotate, an operator's
// `mv`/`rm`): the next accepted batch must land in the file the server was told to write, never in
// an inode nobody can read any more.
import { mkdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, recordingLogger, startServer, tempDir } from './helpers'
import { faultyFileSystem } from './events-faults'

let counter = 0
const batch = (n: number) => ({
  events: Array.from({ length: n }, () => ({ id: `rot-${process.pid}-${++counter}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000 + counter })),
})
const linesOf = (events: unknown[]) => events.map((e) => JSON.stringify(e) + '\n').join('')

async function setup() {
  const fs = faultyFileSystem()
  const logger = recordingLogger()
  const file = join(await tempDir(), 'events.jsonl')
  const server = await startServer({ eventsFile: file, eventsFileSystem: fs, logger })
  const send = (body: unknown) => post(`${server.url}/holdfast/v1/events`, body)
  return { fs, file, send, logger }
}

describe('events file rotated or removed from outside', { timeout: 30_000 }, () => {
  it('logrotate (create): the file is renamed to .1; later batches go to a new events.jsonl', async () => {
    const { file, send, logger } = await setup()
    const a = batch(2)
    expect((await send(a)).status).toBe(202)
    await rename(file, `${file}.1`)
    const b = batch(2)
    expect((await send(b)).status).toBe(202)
    expect(await readFile(`${file}.1`, 'utf8')).toBe(linesOf(a.events))
    expect(await readFile(file, 'utf8').catch(() => 'missing')).toBe(linesOf(b.events))
    expect(logger.lines.join('\n')).toMatch(/events\.jsonl.*(moved|removed|replaced).*reopen/i)
  })

  it('the file is deleted: the next batch recreates it instead of going into the deleted inode', async () => {
    const { file, send } = await setup()
    expect((await send(batch(1))).status).toBe(202)
    await rm(file)
    const b = batch(3)
    expect((await send(b)).status).toBe(202)
    expect(await readFile(file, 'utf8').catch(() => 'missing')).toBe(linesOf(b.events))
  })

  it('logrotate copytruncate then a disk that fills: the cut-back does not pad the emptied file with NUL bytes', async () => {
    const { fs, file, send } = await setup()
    expect((await send(batch(5))).status).toBe(202)
    await truncate(file, 0)
    fs.failNextWrite(7)
    expect((await send(batch(1))).status).toBe(500)
    const b = batch(2)
    expect((await send(b)).status).toBe(202)
    expect(await readFile(file, 'utf8')).toBe(linesOf(b.events))
  })
})

describe('ids read back at a restart after logrotate', { timeout: 30_000 }, () => {
  it('dateext: the ids in events.jsonl-20261204 are still duplicates after a restart', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const first = await startServer({ eventsFile: file })
    const a = batch(3)
    expect((await post(`${first.url}/holdfast/v1/events`, a)).status).toBe(202)
    await first.close()
    // logrotate with `dateext` (its default dateformat -%Y%m%d) and `create`.
    await rename(file, `${file}-20261204`)
    const second = await startServer({ eventsFile: file })
    // A client that never saw the 202 retries after the restart. Before: stored a second time.
    expect(await (await post(`${second.url}/holdfast/v1/events`, a)).json()).toEqual({ accepted: 0, duplicates: 3 })
    expect(await readFile(file, 'utf8')).toBe('')
    await second.close()
  })

  it('a directory or an unreadable file with a dated name next to the events file does not keep the server from starting', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    await mkdir(`${file}-20261205`)
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: file, logger })
    expect((await post(`${server.url}/holdfast/v1/events`, batch(1))).status).toBe(202)
    expect(logger.lines.join('\n')).toMatch(/events\.jsonl-20261205.*skipped/)
    await server.close()
  })

  it('compress: a compressed rotated file next to the events file is named at start, since its ids are not read back', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const first = await startServer({ eventsFile: file })
    const a = batch(2)
    expect((await post(`${first.url}/holdfast/v1/events`, a)).status).toBe(202)
    await first.close()
    await writeFile(`${file}-20261204.gz`, gzipSync(await readFile(file)))
    await writeFile(`${file}.2.gz`, gzipSync(await readFile(file)))
    await rm(file)
    const logger = recordingLogger()
    const second = await startServer({ eventsFile: file, logger })
    // Before: nothing said; an operator could not know the retries of those events are stored twice.
    expect(logger.lines.join('\n')).toMatch(/events\.jsonl-20261204\.gz.*events\.jsonl\.2\.gz.*compressed.*not read back/)
    await second.close()
  })
})
