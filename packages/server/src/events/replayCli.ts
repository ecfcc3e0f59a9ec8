// `holdfast-server events replay-dead-letters --events-spool DIR --events-upstream URL`: sends the
// dead letters of a relay's spool (deadLetter.ts) to the sink again, e.g. once the sink's body cap
// was raised or its schema fixed. Only what the sink took (2xx) leaves the file; the rest stays,
// with the new refusal logged. Safe to re-run, and safe to kill: the file is rewritten crash-safely
// (temporary file, fsync, rename) only at the end, and what was sent before a kill is sent again
// (the sink de-duplicates by id). It takes the spool's lock, so it refuses to run beside the relay
// (whose appends would race the rewrite): stop the relay for the replay, a few seconds.
// Exit codes: 0 all taken (or nothing to send), 1 some kept or a failure, 2 usage error.
import { constants } from 'node:buffer'
import { readFile, realpath, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { negativeValuesJoined, readCliNumber, repeatedOption } from '../cliOptions'
import { httpUrlProblem } from '../flags/upstreamFetch'
import { deadLetterPath } from './deadLetter'
import { nodeFileSystem, writeFileAtomic } from './fileSystem'
import { acquireLock } from './lockFile'

/** The help text of the events command. */
export const EVENTS_USAGE = `Usage:
  holdfast-server events replay-dead-letters --events-spool DIR --events-upstream URL

Sends the events the upstream refused (DIR/dead-letter/dead-letter.ndjson) to URL again; removes
from the file only those it accepts (2xx). Safe to re-run (the sink de-duplicates by id). Run it
while the relay on DIR is stopped (it takes the spool's lock). HOLDFAST_EVENTS_UPSTREAM_KEY, if
set, is sent as "Authorization: Bearer KEY". Exit 0: all taken; 1: some kept (see the log);
2: usage error (an unknown or repeated option, DIR not a directory, a number not in decimal digits).

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
  // A path that names no directory is the operator's typo, not a failed replay: before, it exited
  // 1 with a bare "ENOENT: no such file or directory, realpath …".
  const given = resolve(values['events-spool'])
  const found = await stat(given).catch((error: NodeJS.ErrnoException) => error.code)
  if (found === 'ENOENT' || found === 'ENOTDIR' || (typeof found === 'object' && !found.isDirectory())) {
    return usage(`--events-spool ${values['events-spool']}: ${typeof found === 'object' ? `${given} is not a directory` : `the directory ${given} does not exist`}; expected the spool directory of a relay's --events-upstream (the one holding dead-letter/dead-letter.ndjson)`)
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

async function replay(path: string, url: string, options: { headers: Record<string, string>; batch: number; timeoutMs: number; fetch: typeof fetch }, io: Io): Promise<number> {
  const file = await nodeFileSystem.stat(path)
  if (!file || file.size === 0) {
    io.out(`[holdfast-server] no dead letters in ${path}`)
    return 0
  }
  // Read as one string: a file larger than V8's longest string (~512 MiB; the relay's bound on it is
  // 64 MiB unless raised) cannot be. Before, it was read whole first (a 1 GB file: 650 MB of memory)
  // and the command ended on a bare "Invalid string length".
  if (file.size > constants.MAX_STRING_LENGTH) {
    io.err(`[holdfast-server] events replay-dead-letters: ${path} is ${file.size} bytes, more than this command reads at once (${constants.MAX_STRING_LENGTH}); the dead-letter file is as it was: move it aside, split it by lines, and replay each piece as ${path}`)
    return 1
  }
  const lines = (await readFile(path, 'utf8')).split('\n').filter((line) => line.trim() !== '')
  // Lines kept as they are: those the sink did not take, and any it cannot be sent (a torn last line).
  const kept = new Set<number>()
  const records: Array<{ index: number; event: unknown }> = []
  lines.forEach((line, index) => {
    try {
      const event = (JSON.parse(line) as { event?: unknown }).event
      if (event && typeof event === 'object') return void records.push({ index, event })
    } catch {
      // below
    }
    kept.add(index)
  })
  const unreadable = kept.size
  const send = async (events: unknown[]): Promise<{ ok: boolean; refused?: boolean; why: string }> => {
    try {
      const response = await options.fetch(url, { method: 'POST', headers: options.headers, body: JSON.stringify({ events }), redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs) })
      const text = (await response.text().catch(() => '')).slice(0, 200)
      const ok = response.status >= 200 && response.status < 300 && !/html/i.test(response.headers.get('Content-Type') ?? '')
      return { ok, refused: [400, 413, 422].includes(response.status), why: `HTTP ${response.status} ${text}`.trim() }
    } catch (error) {
      return { ok: false, why: (error as Error).message }
    }
  }
  let taken = 0
  for (let start = 0; start < records.length; start += options.batch) {
    const piece = records.slice(start, start + options.batch)
    const whole = await send(piece.map((r) => r.event))
    if (whole.ok) {
      taken += piece.length
      continue
    }
    // Not a refusal of these events (down, 5xx, a wrong URL or key): the rest is kept for a re-run,
    // rather than one request per dead letter.
    if (!whole.refused) {
      for (const record of records.slice(start)) kept.add(record.index)
      io.err(`[holdfast-server] the sink answered ${whole.why}: stopped; ${records.length - start} dead letter(s) kept for a re-run`)
      break
    }
    // Refused or failed: one by one, so one bad event keeps only itself.
    for (const record of piece.length > 1 ? piece : []) {
      const one = await send([record.event])
      if (one.ok) taken++
      else {
        kept.add(record.index)
        io.err(`[holdfast-server] kept ${(record.event as { id?: unknown }).id}: ${one.why}`)
      }
    }
    if (piece.length === 1) {
      kept.add(piece[0].index)
      io.err(`[holdfast-server] kept ${(piece[0].event as { id?: unknown }).id}: ${whole.why}`)
    }
  }
  if (taken > 0) {
    const rest = lines.filter((_, index) => kept.has(index))
    await writeFileAtomic(nodeFileSystem, path, rest.length ? `${rest.join('\n')}\n` : '')
  }
  io.out(`[holdfast-server] dead letters: ${taken} taken by the sink and removed, ${kept.size - unreadable} refused again and kept${unreadable ? `, ${unreadable} unreadable line(s) kept` : ''} (${path})`)
  return kept.size === 0 ? 0 : 1
}
