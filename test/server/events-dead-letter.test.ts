// Events the upstream sink refuses for good, after the relay answered 202 for them: a lone event
// answered 413 (too large even alone), a lone event answered 422 (or 400). Before, the relay
// dropped them (counted, logged, gone): an operator who fixed the sink's body cap or schema had
// nothing to send again. Now each is appended (fsynced) to <spool>/dead-letter/dead-letter.ndjson
// with the sink's status, the time and its answer, before the spool's cursor moves past it;
// `holdfast-server events replay-dead-letters` sends them again and removes what the sink took.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { deadLetterPath, runEventsCli, type DeadLetterRecord } from '@holdfast/server'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
import { faultyFileSystem } from './events-faults'
import { serverProcess } from './events-process'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'

const event = (id: string, name = 'clicked', metadata?: Record<string, string>) => ({ id, type: 'custom', name, time: 1_700_000_000_000, ...(metadata ? { metadata } : {}) })

/** The dead letters of `spool`, by event id (only whole lines: a torn last one is not a letter). */
async function deadLetters(spool: string): Promise<DeadLetterRecord[]> {
  const text = await readFile(deadLetterPath(spool), 'utf8').catch(() => '')
  return text
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as DeadLetterRecord)
}

/** A real sink that answers 413 to events named `huge` (even alone) and 422 to those named `bad`. */
const sink = (): Promise<EventsReceiver> => startEventsReceiver({ tooLargeName: 'huge', poisonName: 'bad', poisonStatus: 422 })

const metric = async (url: string, name: string) => (await (await fetch(`${url}/metrics`)).text()).split('\n').find((line) => line.startsWith(name))

describe('events the sink refuses are kept in a dead-letter file', { timeout: 60_000 }, () => {
  it('a relay killed (SIGKILL) right after the refusals and restarted: the refused events are in the dead-letter file, the others delivered', async () => {
    const receiver = await sink()
    const spool = join(await tempDir(), 'spool')
    const args = ['--flags', 'examples/flags.json', '--port', '0', '--events-upstream', receiver.url, '--events-spool', spool]
    const first = serverProcess(args)
    const url = await first.url()
    expect((await post(`${url}/holdfast/v1/events`, { events: [event('ok-1'), event('big-1', 'huge'), event('ok-2')] })).status).toBe(202)
    expect((await post(`${url}/holdfast/v1/events`, { events: [event('bad-1', 'bad'), event('ok-3')] })).status).toBe(202)
    // Killed the moment the sink has refused the lone 422 event: before or after the relay wrote it down.
    await waitFor(() => receiver.requests.some((r) => r.outcome === 422 && r.ids.length === 1), 30_000, 2)
    await first.kill()

    const second = serverProcess(args)
    const again = await second.url()
    await waitFor(async () => (await deadLetters(spool)).length >= 2 && ['ok-1', 'ok-2', 'ok-3'].every((id) => receiver.acceptedTimes().has(id)), 30_000, 20)
    const letters = await deadLetters(spool)
    // Each at least once (a kill before the cursor moved sends it again: it may be there twice; the sink de-duplicates a replay).
    expect(new Set(letters.map((l) => l.event.id))).toEqual(new Set(['big-1', 'bad-1']))
    expect(letters.find((l) => l.event.id === 'big-1')).toMatchObject({ status: 413, event: { name: 'huge' } })
    expect(letters.find((l) => l.event.id === 'bad-1')).toMatchObject({ status: 422, error: '{"error":"poison"}', event: { name: 'bad' } })
    expect(letters.every((l) => typeof l.deadLetteredAt === 'number' && l.deadLetteredAt > 0)).toBe(true)
    type Status = { events: { forwarding: Record<string, unknown> & { deadLetter: { bytes: number; path: string } } } }
    const statusOf = async () => (await (await fetch(`${again}/holdfast/v1/status`)).json()) as Status
    // The sink took ok-3 a moment before the relay's cursor moved past it.
    await waitFor(async () => (await statusOf()).events.forwarding.pending === 0, 10_000)
    const status = await statusOf()
    expect(status.events.forwarding).toMatchObject({ pending: 0, dropped: 0, deadLetter: { path: deadLetterPath(spool) } })
    expect(status.events.forwarding.deadLetter.bytes).toBeGreaterThan(0)
    expect(receiver.acceptedTimes().has('big-1') || receiver.acceptedTimes().has('bad-1')).toBe(false)
    await second.kill()
    await receiver.close()
  })

  it('counts them as dead-lettered, not dropped, in the status and the metrics', async () => {
    const receiver = await sink()
    const spool = join(await tempDir(), 'spool')
    const relay = await startServer({ eventsUpstream: receiver.url, eventsSpoolDir: spool, eventsForwarding: { backoffBaseMs: 10 } })
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [event('m-big', 'huge'), event('m-ok'), event('m-bad', 'bad')] })).status).toBe(202)
    await waitFor(() => relay.eventsForwarding!().pending === 0, 20_000)
    expect(relay.eventsForwarding!()).toMatchObject({ delivered: 1, deadLettered: 2, dropped: 0 })
    expect(await metric(relay.url, 'holdfast_events_forwarded_total{outcome="dead_lettered"}')).toMatch(/ 2$/)
    expect(await metric(relay.url, 'holdfast_events_dead_letter_full')).toMatch(/ 0$/)
    await receiver.close()
  })

  it('a full dead-letter file: the oldest letters are kept, the new refusal is dropped and said loudly (status, metric, log)', async () => {
    const receiver = await sink()
    const spool = join(await tempDir(), 'spool')
    const logger = recordingLogger()
    const relay = await startServer({ eventsUpstream: receiver.url, eventsSpoolDir: spool, eventsDeadLetterMaxBytes: 1024, logger, eventsForwarding: { backoffBaseMs: 10 } })
    await post(`${relay.url}/holdfast/v1/events`, { events: [event('f-1', 'huge')] })
    await waitFor(() => relay.eventsForwarding!().deadLettered === 1, 20_000)
    const before = await readFile(deadLetterPath(spool), 'utf8')
    // Too big for what is left of the 1 KiB.
    await post(`${relay.url}/holdfast/v1/events`, { events: [event('f-2', 'huge', { pad: 'x'.repeat(1500) })] })
    await waitFor(() => relay.eventsForwarding!().dropped === 1, 20_000)
    expect(await readFile(deadLetterPath(spool), 'utf8')).toBe(before)
    expect(relay.eventsForwarding!()).toMatchObject({ deadLettered: 1, dropped: 1, deadLetter: { maxBytes: 1024, full: { dropped: 1 } } })
    expect(await metric(relay.url, 'holdfast_events_dead_letter_full')).toMatch(/ 1$/)
    expect(await metric(relay.url, 'holdfast_events_forwarded_total{outcome="dropped"}')).toMatch(/ 1$/)
    expect(logger.lines.some((l) => /DROPPED, the dead-letter file .* is full/.test(l) && l.includes('f-2'))).toBe(true)
    await receiver.close()
  })

  it('a disk that fails the dead-letter write: the refused event stays in the spool (not dropped) and is written once the disk is back', async () => {
    const receiver = await sink()
    const spool = join(await tempDir(), 'spool')
    const fs = faultyFileSystem()
    const opened = fs.open
    let diskFull = true
    fs.open = async (path, mode, permissions) => {
      if (diskFull && path.includes('dead-letter') && mode === 'a') throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
      return opened(path, mode, permissions)
    }
    const relay = await startServer({ eventsUpstream: receiver.url, eventsSpoolDir: spool, eventsFileSystem: fs, eventsForwarding: { backoffBaseMs: 10, backoffMaxMs: 50 } })
    await post(`${relay.url}/holdfast/v1/events`, { events: [event('d-1', 'bad')] })
    await waitFor(() => receiver.requests.filter((r) => r.outcome === 422).length >= 2 && /dead-letter/.test(relay.eventsForwarding!().lastError?.message ?? ''), 20_000)
    expect(relay.eventsForwarding!()).toMatchObject({ pending: 1, dropped: 0, deadLettered: 0, state: 'failing', lastError: { message: expect.stringMatching(/^cannot write the dead-letter file /) } })
    // While the event is sent again (the sink slow to refuse it again), the disk is still full:
    // the status stays `failing` (before, each retry's request read `ok`, the cause still there).
    receiver.set({ tooLargeName: 'huge', poisonName: 'bad', poisonStatus: 422, delayMs: 500 })
    const sent = receiver.requests.length
    await waitFor(() => receiver.requests.length > sent, 20_000)
    expect(relay.eventsForwarding!()).toMatchObject({ pending: 1, state: 'failing', lastError: { message: expect.stringMatching(/^cannot write the dead-letter file /) } })
    diskFull = false
    await waitFor(() => relay.eventsForwarding!().deadLettered === 1, 20_000)
    // The disk back and the event written: the failure is over.
    expect(relay.eventsForwarding!()).toMatchObject({ pending: 0, dropped: 0, state: 'ok' })
    expect((await deadLetters(spool)).map((l) => l.event.id)).toEqual(['d-1'])
    await receiver.close()
  })

  it('replay-dead-letters sends them to a real sink again, removes only what it took, and is safe to re-run', async () => {
    const receiver = await sink()
    const spool = join(await tempDir(), 'spool')
    const relay = await startServer({ eventsUpstream: receiver.url, eventsSpoolDir: spool, eventsForwarding: { backoffBaseMs: 10 } })
    await post(`${relay.url}/holdfast/v1/events`, { events: [event('r-big', 'huge'), event('r-bad', 'bad'), event('r-big2', 'huge')] })
    await waitFor(() => relay.eventsForwarding!().deadLettered === 3, 20_000)
    const io = () => {
      const lines: string[] = []
      return { lines, out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) }
    }
    const replay = (out = io()) => runEventsCli(['replay-dead-letters', '--events-spool', spool, '--events-upstream', receiver.url], out)
    // Beside the running relay: refused (its appends would race the rewrite), the file untouched.
    const beside = io()
    expect(await replay(beside)).toBe(1)
    expect(beside.lines.join('\n')).toMatch(/spool/)
    // One prefix, as every line of the server's (before: '[holdfast-server] events replay-dead-letters: [holdfast-server] the events spool …').
    expect(beside.lines.join('\n')).not.toMatch(/\[holdfast-server\].*\[holdfast-server\]/)
    expect((await deadLetters(spool)).length).toBe(3)
    await relay.close()

    // The sink's body cap was raised: the 413s go through, the 422 is still refused and kept.
    receiver.set({ poisonName: 'bad', poisonStatus: 422 })
    const first = io()
    expect(await replay(first)).toBe(1)
    expect(receiver.acceptedTimes().get('r-big')).toBe(1)
    expect(receiver.acceptedTimes().get('r-big2')).toBe(1)
    expect((await deadLetters(spool)).map((l) => l.event.id)).toEqual(['r-bad'])
    expect(first.lines.join('\n')).toMatch(/2 taken .* 1 refused again/)
    // The sink down: nothing removed, one request, not one per letter.
    receiver.set({ down: true })
    const down = receiver.requests.length
    expect(await replay()).toBe(1)
    expect(receiver.requests.length).toBe(down + 1)
    receiver.set({ poisonName: 'bad', poisonStatus: 422 })
    // Re-run: only what is left is sent.
    const sentBefore = receiver.requests.length
    expect(await replay()).toBe(1)
    expect(receiver.requests.slice(sentBefore).flatMap((r) => r.ids)).toEqual(['r-bad'])
    // The schema was fixed: the last one goes, through the real command line.
    receiver.set({})
    const cli = serverProcess(['events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', receiver.url])
    expect((await cli.exited).code).toBe(0)
    expect(await deadLetters(spool)).toEqual([])
    expect([...receiver.acceptedTimes().values()].every((n) => n === 1)).toBe(true)
    expect(await replay()).toBe(0)
    await receiver.close()
  })
})

describe('replay-dead-letters reads the file a batch at a time', { timeout: 120_000 }, () => {
  it('whatever the mix of letters taken, refused, unreadable and blank lines, a torn last line, CRLF line ends and the batch size: only what the sink took leaves, the rest stays in order, byte for byte (property)', async () => {
    const receiver = await sink()
    const quiet = { out: () => {}, err: () => {} }
    let run = 0
    try {
      const line = fc.constantFrom('taken', 'refused', 'junk', 'blank')
      await fc.assert(
        fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.boolean(), fc.integer({ min: 1, max: 4 }), fc.constantFrom('\n', '\r\n'), async (kinds, torn, batch, eol) => {
          run++
          const spool = join(await tempDir(), 'spool')
          const letters = deadLetterPath(spool)
          await mkdir(dirname(letters), { recursive: true })
          const text = kinds.map((kind, i) => {
            if (kind === 'blank') return ''
            if (kind === 'junk') return `{"not a letter ${i}`
            return JSON.stringify({ deadLetteredAt: 1, status: 422, event: event(`p${run}-${i}`, kind === 'refused' ? 'bad' : 'clicked') })
          })
          const tornLine = '{"deadLetteredAt":1,"status":422,"event":{"id":"torn"'
          // A file edited on Windows ends its lines with CRLF: a letter still reads (JSON allows the \r),
          // a line of only \r is blank, and a kept line keeps its \r.
          await writeFile(letters, text.map((t) => `${t}${eol}`).join('') + (torn ? tornLine : ''))
          const code = await runEventsCli(['replay-dead-letters', '--events-spool', spool, '--events-upstream', receiver.url, '--batch', String(batch)], quiet)
          const stays = [...text.filter((t, i) => kinds[i] === 'refused' || kinds[i] === 'junk'), ...(torn ? [tornLine] : [])]
          const taken = kinds.filter((kind) => kind === 'taken').length
          expect(code).toBe(stays.length === 0 ? 0 : 1)
          // Untouched when nothing was taken (blank lines and all); else rewritten with what stays.
          const expected = taken === 0 ? text.map((t) => `${t}${eol}`).join('') + (torn ? tornLine : '') : stays.map((t) => (t === tornLine ? `${t}\n` : `${t}${eol}`)).join('')
          expect(await readFile(letters, 'utf8')).toBe(expected)
          const accepted = [...receiver.acceptedTimes().keys()].filter((id) => id.startsWith(`p${run}-`))
          expect(accepted).toEqual(kinds.flatMap((kind, i) => (kind === 'taken' ? [`p${run}-${i}`] : [])))
        }),
        { numRuns: 40 },
      )
    } finally {
      await receiver.close()
    }
  })

  it('a dead-letter file saved by an editor with a byte order mark: its first letter is sent too', async () => {
    const receiver = await sink()
    try {
      const spool = join(await tempDir(), 'spool')
      const letters = deadLetterPath(spool)
      await mkdir(dirname(letters), { recursive: true })
      const letter = (id: string) => JSON.stringify({ deadLetteredAt: 1, status: 413, event: event(id) })
      await writeFile(letters, `\uFEFF${letter('bom-1')}\r\n${letter('bom-2')}\r\n`)
      const lines: string[] = []
      const code = await runEventsCli(['replay-dead-letters', '--events-spool', spool, '--events-upstream', receiver.url], { out: (l) => lines.push(l), err: (l) => lines.push(l) })
      // Before: exit 1, "1 taken …, 1 unreadable line(s) kept": the first letter, behind U+FEFF,
      // did not parse as JSON and was kept unsent at every re-run.
      expect(lines.join('\n')).toMatch(/2 taken by the sink/)
      expect(code).toBe(0)
      expect([...receiver.acceptedTimes().keys()].sort()).toEqual(['bom-1', 'bom-2'])
      expect(await readFile(letters, 'utf8')).toBe('')
    } finally {
      await receiver.close()
    }
  })

  // The replay needs of an answer its status and, of a refusal, the start it prints. It read the
  // whole answer: a sink or a proxy answering 1 GB held it in memory, and one whose answer never
  // ends ran into --timeout, read as the sink failing: everything kept, nothing sent one by one.
  it('a sink whose answers never end (202 for good events, 400 for a bad one): its status is read, the good ones leave, the bad one is kept with the start of the refusal', async () => {
    const answered: string[] = []
    const endless = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const ids = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Array<{ id: string }> }).events.map((e) => e.id)
        const refused = ids.includes('endless-bad')
        answered.push(`${refused ? 400 : 202} ${ids.join(',')}`)
        res.writeHead(refused ? 400 : 202, { 'Content-Type': 'application/json' })
        res.write(refused ? '{"error":"event endless-bad: name too long"' : '{"accepted":')
        const pad = Buffer.alloc(64 * 1024, 0x20)
        const more = setInterval(() => res.write(pad), 1)
        res.on('close', () => clearInterval(more))
      })
    })
    endless.listen(0, '127.0.0.1')
    await once(endless, 'listening')
    try {
      const spool = join(await tempDir(), 'spool')
      const letters = deadLetterPath(spool)
      await mkdir(dirname(letters), { recursive: true })
      const letter = (id: string) => JSON.stringify({ deadLetteredAt: 1, status: 422, event: event(id) })
      await writeFile(letters, `${letter('endless-1')}\n${letter('endless-bad')}\n${letter('endless-2')}\n`)
      const lines: string[] = []
      const started = performance.now()
      const code = await runEventsCli(['replay-dead-letters', '--events-spool', spool, '--events-upstream', `http://127.0.0.1:${(endless.address() as AddressInfo).port}/events`, '--timeout', '5'], { out: (l) => lines.push(l), err: (l) => lines.push(l) })
      expect(lines).toContainEqual(expect.stringMatching(/^\[holdfast-server\] kept endless-bad: HTTP 400 \{"error":"event endless-bad: name too long" *$/))
      expect(lines.join('\n')).toContain('2 taken by the sink and removed, 1 refused again and kept')
      expect(code).toBe(1)
      // Before: the whole batch's answer read until --timeout (5 s), then "the sink answered This
      // operation was aborted: stopped", all three kept.
      expect(performance.now() - started).toBeLessThan(4000)
      expect(answered).toEqual(['400 endless-1,endless-bad,endless-2', '202 endless-1', '400 endless-bad', '202 endless-2'])
      expect((await deadLetters(spool)).map((l) => l.event.id)).toEqual(['endless-bad'])
    } finally {
      endless.closeAllConnections()
      await new Promise((done) => endless.close(done))
    }
  })
})
