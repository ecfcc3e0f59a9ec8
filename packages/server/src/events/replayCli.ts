// `holdfast-server events replay-dead-letters --events-spool DIR --events-upstream URL`: sends the
// dead letters of a relay's spool (deadLetter.ts) to the sink again, e.g. once the sink's body cap
// was raised or its schema fixed. Only what the sink took (2xx) leaves the file; the rest stays,
// with the new refusal logged. Safe to re-run, and safe to kill: the file is rewritten crash-safely
// (temporary file, fsync, rename) only at the end, and what was sent before a kill is sent again
// (the sink de-duplicates by id). It reads the file a batch at a time, in bounded memory, whatever
// its size. It takes the spool's lock, so it refuses to run beside the relay (whose appends would
// race the rewrite): stop the relay for the replay, a few seconds.
// Exit codes: 0 all taken (or nothing to send), 1 some kept or a failure, 2 usage error, 3 no spool directory.
import { open, realpath, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { negativeValuesJoined, readCliNumber, repeatedOption } from '../cliArgs'
import { httpUrlProblem } from '../flags/upstreamFetch'
import { deadLetterPath } from './deadLetter'
import { nodeFileSystem, writeAll, writeAllAt, writeFileAtomicWith, type EventFile } from './fileSystem'
import { readLines } from './lineReader'
import { readResponseStart } from './responseStart'
import { acquireLock } from './lockFile'

/** The help text of the events command. */
export const EVENTS_USAGE = `Usage:
  holdfast-server events replay-dead-letters --events-spool DIR --events-upstream URL

Sends the events the upstream refused (DIR/dead-letter/dead-letter.ndjson) to URL again; removes
from the file only those it accepts (2xx). Safe to re-run (the sink de-duplicates by id). Run it
while the relay on DIR is stopped (it takes the spool's lock). HOLDFAST_EVENTS_UPSTREAM_KEY, if
set, is sent as "Authorization: Bearer KEY". Exit 0: all taken; 1: some kept (see the log);
2: usage error (an unknown or repeated option, a number not in decimal digits); 3: DIR does not
exist or is not a directory (nothing sent).

Options:
  --batch N          events per request, default 100 (a refused batch is retried one by one)
  --timeout SECONDS  per request, default 10
`

type Io = { out(line: string): void; err(line: string): void }

/** Runs `holdfast-server events …` with `argv` (after the word `events`); resolves with the exit code. */
export async function runEventsCli(argv: string[], io: Io, fetchImpl: typeof fetch = fetch): Promise<number> {
  const options = { 'events-spool': { type: 'string' }, 'events-upstream': { type: 'string' }, batch: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const
  const usage = (message: string) => {
    io.err(`[holdfast-server] events: ${message}\n\n${EVENTS_USAGE}`)
    return 2
  }
  let values
  try {
    const parsed = parseArgs({ args: negativeValuesJoined(argv, options), options, strict: true, allowPositionals: true, tokens: true })
    // As for the server and `snapshot`: parseArgs keeps the last of a repeated option, so a second
    // --events-upstream or --events-spool would be used without a word.
    const repeated = repeatedOption(parsed.tokens, options)
    if (repeated) return usage(repeated)
    if (parsed.values.help) {
      io.out(EVENTS_USAGE)
      return 0
    }
    if (parsed.positionals.join(' ') !== 'replay-dead-letters') return usage('the command is `events replay-dead-letters`')
    values = parsed.values
  } catch (error) {
    return usage((error as Error).message)
  }
  if (!values['events-spool']) return usage('--events-spool DIR is required')
  const url = values['events-upstream']
  if (!url) return usage('--events-upstream URL is required')
  const problem = httpUrlProblem(url, '--events-upstream')
  if (problem) return usage(problem)
  // Read as the server's options are: Number() took `0x10` as 16, `1e3` as 1000 and ` 5` as 5.
  const batch = readCliNumber(values.batch ?? '100', true)
  if (!(batch >= 1 && batch <= 2000)) return usage(`--batch must be a whole number from 1 to 2000, got ${JSON.stringify(values.batch)}`)
  const timeoutMs = readCliNumber(values.timeout ?? '10', false) * 1000
  if (!(timeoutMs > 0 && timeoutMs <= 600_000)) return usage(`--timeout must be a number of seconds from 0 to 600, got ${JSON.stringify(values.timeout)}`)
  const key = process.env.HOLDFAST_EVENTS_UPSTREAM_KEY
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) }

  let spoolDir: string
  let release: () => Promise<void>
  // A path that names no directory: the command line is well-formed, and the same one replays once
  // the directory is there (a step that restores the spool was skipped), so it is the step's own
  // disk, exit 3, as `snapshot --out DIR/FILE` with DIR missing; not a usage error (2, with the help
  // text, as it was), nor a failed replay (1 with a bare "ENOENT … realpath", before that). Looked
  // at once the command line is read, so a wrong one is told first. The sink is not asked.
  const given = resolve(values['events-spool'])
  const found = await stat(given).catch((error: NodeJS.ErrnoException) => error.code)
  if (found === 'ENOENT' || found === 'ENOTDIR' || (typeof found === 'object' && !found.isDirectory())) {
    io.err(`[holdfast-server] events replay-dead-letters: nothing replayed: --events-spool ${values['events-spool']}: ${typeof found === 'object' ? `${given} is not a directory` : `the directory ${given} does not exist`}; expected the spool directory of a relay's --events-upstream (the one holding dead-letter/dead-letter.ndjson)`)
    return 3
  }
  try {
    spoolDir = await realpath(given)
    release = await acquireLock(join(spoolDir, 'LOCK'), `the events spool ${spoolDir}`, 'Stop the relay on this spool for the replay: its appends to the dead-letter file would race the replay.')
  } catch (error) {
    // The lock's message is written for the server's log and already carries the prefix.
    io.err(`[holdfast-server] events replay-dead-letters: ${(error as Error).message.replace(/^\[holdfast-server\] /, '')}`)
    return 1
  }
  try {
    return await replay(deadLetterPath(spoolDir), url, { headers, batch, timeoutMs, fetch: fetchImpl }, io)
  } catch (error) {
    io.err(`[holdfast-server] events replay-dead-letters: ${(error as Error).message}; the dead-letter file is as it was`)
    return 1
  } finally {
    await release().catch(() => undefined)
  }
}

/**
 * The longest line read as a dead letter: 4 MiB, four times the body cap of one events request (a
 * letter is one event and the start of the sink's answer). A longer one (stray bytes, a sparse
 * file's zeros) is no letter: kept as it is, unread, as any unreadable line.
 */
const MAX_LETTER_BYTES = 4 * 1024 * 1024

/**
 * The most lines a batch being gathered holds, events or not: unreadable lines wait in it (to be
 * kept in order) until it holds `--batch` events, and in a file of junk those never came (5,000,000
 * short unreadable lines took ~900 MB). Past this many it is settled with the events it has.
 */
const MAX_PIECE_LINES = 10_000

/** A line of the dead-letter file: its byte range, and its event when it holds one (else it is unreadable). */
type Letter = { start: number; end: number; event?: unknown }

async function replay(path: string, url: string, options: { headers: Record<string, string>; batch: number; timeoutMs: number; fetch: typeof fetch }, io: Io): Promise<number> {
  const file = await nodeFileSystem.stat(path)
  if (!file || file.size === 0) {
    io.out(`[holdfast-server] no dead letters in ${path}`)
    return 0
  }
  const send = async (events: unknown[]): Promise<{ ok: boolean; refused?: boolean; why: string }> => {
    try {
      const response = await options.fetch(url, { method: 'POST', headers: options.headers, body: JSON.stringify({ events }), redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs) })
      const ok = response.status >= 200 && response.status < 300 && !/html/i.test(response.headers.get('Content-Type') ?? '')
      // The status says what became of the events; of a refusal only the start is printed. Read
      // whole, a sink or proxy answering 1 GB held it all in memory (and an endless answer ran
      // into --timeout, read as the sink failing): only what is printed is read.
      const text = ok ? (await response.body?.cancel().catch(() => undefined), '') : await startOf(response, SHOWN_ANSWER_CHARS)
      return { ok, refused: [400, 413, 422].includes(response.status), why: `HTTP ${response.status} ${text}`.trim() }
    } catch (error) {
      return { ok: false, why: (error as Error).message }
    }
  }
  // Read a batch at a time, in bounded memory (the batch and one chunk; before, the whole file as
  // one string, then every line and every parsed letter: 1.2 GB for a 214 MB file). What stays is
  // kept as byte ranges of the file, in order, adjacent lines as one range, and copied from it at
  // the end: lines kept as they are, those the sink did not take, and any that cannot be sent (a
  // torn last line). The spool's lock keeps the relay from appending meanwhile.
  const kept: Array<[number, number]> = []
  const keep = (letter: Letter) => {
    const last = kept.at(-1)
    if (last && last[1] + 1 === letter.start) last[1] = letter.end
    else kept.push([letter.start, letter.end])
  }
  let taken = 0
  let refusedAgain = 0
  let unreadable = 0
  // Set once the sink answered something that is no refusal of these events (down, 5xx, a wrong
  // URL or key): the rest is kept for a re-run, rather than one request per dead letter.
  let stopped: { why: string; kept: number } | undefined
  const settle = async (piece: Letter[]) => {
    const events = piece.filter((letter) => letter.event !== undefined)
    const whole = events.length > 0 && !stopped ? await send(events.map((letter) => letter.event)) : undefined
    if (whole && !whole.ok && !whole.refused) stopped = { why: whole.why, kept: 0 }
    for (const letter of piece) {
      if (letter.event === undefined) keep(letter)
      else if (whole?.ok) taken++
      else if (stopped) {
        stopped.kept++
        refusedAgain++
        keep(letter)
      } else {
        // Refused or failed: one by one, so one bad event keeps only itself.
        const one = events.length > 1 ? await send([letter.event]) : whole!
        if (one.ok) taken++
        else {
          refusedAgain++
          keep(letter)
          io.err(`[holdfast-server] kept ${(letter.event as { id?: unknown }).id}: ${one.why}`)
        }
      }
    }
  }
  let piece: Letter[] = []
  let inPiece = 0
  for await (const line of readLines(path, MAX_LETTER_BYTES)) {
    if (line.text !== undefined && line.text.trim() === '') continue
    let event: unknown
    try {
      // A file saved by an editor may begin with a byte order mark, which JSON.parse refuses:
      // before, the first letter was kept unsent as "unreadable" at every re-run. (Kept lines are
      // copied from the file byte for byte, the mark with them.)
      const text = line.start === 0 ? line.text?.replace(/^\uFEFF/, '') : line.text
      if (text !== undefined) event = (JSON.parse(text) as { event?: unknown }).event
    } catch {
      // unreadable: below
    }
    if (event && typeof event === 'object') {
      piece.push({ start: line.start, end: line.end, event })
      inPiece++
    } else {
      piece.push({ start: line.start, end: line.end })
      unreadable++
    }
    if (inPiece === options.batch || piece.length === MAX_PIECE_LINES) {
      await settle(piece)
      piece = []
      inPiece = 0
    }
  }
  await settle(piece)
  if (stopped) io.err(`[holdfast-server] the sink answered ${stopped.why}: stopped; ${stopped.kept} dead letter(s) kept for a re-run`)
  if (taken > 0) await writeFileAtomicWith(nodeFileSystem, path, (out) => copyRanges(path, kept, out))
  io.out(`[holdfast-server] dead letters: ${taken} taken by the sink and removed, ${refusedAgain} refused again and kept${unreadable ? `, ${unreadable} unreadable line(s) kept` : ''} (${path})`)
  return refusedAgain + unreadable === 0 ? 0 : 1
}

/** How much of a sink's refusal is printed (and so read): its first 200 characters. */
const SHOWN_ANSWER_CHARS = 200

/** The start of `response`'s body, at most `chars` characters; the rest is not read (the body is cancelled). */
async function startOf(response: Response, chars: number): Promise<string> {
  // A UTF-8 character is at most 4 bytes.
  return (await readResponseStart(response, chars * 4)).toString('utf8').slice(0, chars)
}

const COPY_BYTES = 1 << 20
const ZEROS = Buffer.alloc(COPY_BYTES)

/**
 * Writes the byte ranges of `path` into `out`, each followed by a newline, a megabyte at a time. A
 * megabyte read that is all zeros (a sparse file's hole: the junk line a disk fault or a `truncate`
 * left) stays a hole in the copy: it is skipped, not written, so the line reads back the same
 * without taking the disk it never took (a 1 GB hole was written out as 1 GB of zeros, on the
 * disk the relay's spool shares). Needs `out.writeAt`; without it every byte is written.
 */
async function copyRanges(path: string, ranges: Array<[number, number]>, out: EventFile): Promise<void> {
  const source = await open(path, 'r')
  try {
    const chunk = Buffer.alloc(COPY_BYTES)
    const buffer = Buffer.alloc(COPY_BYTES)
    let filled = 0
    // Where the next byte goes in `out` (with writeAt).
    let position = 0
    const flush = async () => {
      if (out.writeAt) await writeAllAt(out, buffer.subarray(0, filled), position)
      else await writeAll(out, buffer.subarray(0, filled))
      position += filled
      filled = 0
    }
    for (const [start, end] of ranges) {
      for (let at = start; at < end; ) {
        const { bytesRead } = await source.read(chunk, 0, Math.min(COPY_BYTES, end - at), at)
        if (bytesRead === 0) throw new Error(`${path} changed during the replay (shorter than read)`)
        at += bytesRead
        if (out.writeAt && bytesRead === COPY_BYTES && chunk.equals(ZEROS)) {
          await flush()
          position += bytesRead
          continue
        }
        for (let from = 0; from < bytesRead; ) {
          if (filled === COPY_BYTES) await flush()
          const copied = chunk.copy(buffer, filled, from, bytesRead)
          filled += copied
          from += copied
        }
      }
      if (filled === COPY_BYTES) await flush()
      // Every range ends with this newline, written: the copy's length is its last byte's, holes included.
      buffer[filled++] = 0x0a
    }
    await flush()
  } finally {
    await source.close()
  }
}
