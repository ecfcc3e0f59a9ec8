// `holdfast-server snapshot …`, the CI step (see flags/snapshotCommand.ts). Exit codes: 0 written,
// 1 the source refused (the old file untouched), 2 usage error, 3 the file could not be written.
import { realpath, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { negativeValuesJoined, readCliNumber, repeatedOption } from './cliArgs'
import { HEADER_NAME } from './options'
import { snapshotOutcome, type SnapshotRequest } from './flags/snapshotCommand'
import { httpUrlProblem } from './flags/upstreamFetch'
import { CONDITIONAL_HEADERS, unforwardableReason } from './flags/headerNames'

/** The help text of the snapshot command. */
export const SNAPSHOT_USAGE = `Usage:
  holdfast-server snapshot --flags-url URL --out FILE     definitions, for --snapshot FILE
  holdfast-server snapshot --flags FILE --out FILE        definitions, for --snapshot FILE
  holdfast-server snapshot --upstream URL --context JSON --out FILE
                                                          one user's values (a Bootstrap), for
                                                          the client's \`fallback\`

Refuses (exit 1, FILE untouched) an unreachable source, a redirect to another host, an invalid or
empty document, or one that drops more than --max-shrink percent of the flags FILE holds now.

Exit codes: 0 written; 1 refused (the source: down, invalid, shrunk); 2 usage error; 3 not written
(FILE could not be written or its directory synced: disk full, permissions, its directory missing,
which is found before the source is asked).

With --upstream, an answer with a per-flag error (GENERAL, PARSE_ERROR…) or an entry that cannot
be read is refused too (exit 1), naming each flag: it has no value, and the snapshot would ship
without it (a kill switch?).

Options:
  --max-shrink PERCENT   default 50
  --allow-partial        with --upstream: write the flags that have values, each flag left out
                         named on stderr (exit 0)
  --header "Name: value" sent with the request (repeatable, each name once), e.g. an Authorization header
  --timeout SECONDS      per request, default 10
`

/** Runs the command with `argv` (after the word `snapshot`); resolves with the exit code. */
export async function runSnapshotCli(argv: string[], io: { out(line: string): void; err(line: string): void }): Promise<number> {
  const options = {
    'flags-url': { type: 'string' },
    flags: { type: 'string' },
    upstream: { type: 'string' },
    context: { type: 'string' },
    out: { type: 'string' },
    'max-shrink': { type: 'string' },
    header: { type: 'string', multiple: true },
    timeout: { type: 'string' },
    'allow-partial': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const
  // Every usage error names the command, as `events`' do: the option parser's own (an unknown
  // option, one given twice) were said bare, `[holdfast-server] Unknown option '--bogus'`.
  const usage = (message: string) => {
    io.err(`[holdfast-server] snapshot: ${message}\n\n${SNAPSHOT_USAGE}`)
    return 2
  }
  let values
  try {
    const parsed = parseArgs({ args: negativeValuesJoined(argv, options), options, strict: true, tokens: true })
    const repeated = repeatedOption(parsed.tokens, options)
    if (repeated) return usage(repeated)
    values = parsed.values
  } catch (error) {
    return usage((error as Error).message)
  }
  if (values.help) {
    io.out(SNAPSHOT_USAGE)
    return 0
  }
  const sources = [values['flags-url'], values.flags, values.upstream].filter((s) => s !== undefined)
  if (sources.length !== 1) return usage('give exactly one of --flags-url, --flags, --upstream')
  if (!values.out) return usage('--out FILE is required')
  // Read as the server's options are: Number() takes '' as 0 and '0x10' as 16.
  const number = (text: string | undefined) => (text === undefined ? undefined : readCliNumber(text, false))
  const maxShrink = number(values['max-shrink'])
  if (maxShrink !== undefined && !(maxShrink >= 0 && maxShrink <= 100)) return usage('--max-shrink must be a number from 0 to 100')
  const timeout = number(values.timeout)
  if (timeout !== undefined && !(timeout > 0 && timeout <= 600)) return usage('--timeout must be a number of seconds from 0 to 600')
  // Checked here, as the server checks its own options: fetch would refuse them only at the
  // request, and the CI log would read "snapshot refused" (exit 1) as though the service had failed.
  for (const [name, url] of [['--flags-url', values['flags-url']], ['--upstream', values.upstream]] as const) {
    const problem = url === undefined ? undefined : httpUrlProblem(url, name)
    if (problem) return usage(problem)
  }
  const headers: Record<string, string> = {}
  for (const header of values.header ?? []) {
    const colon = header.indexOf(':')
    if (colon <= 0) return usage(`--header must look like "Name: value", got "${header}"`)
    const name = header.slice(0, colon).trim()
    const value = header.slice(colon + 1).trim()
    if (!HEADER_NAME.test(name)) return usage(`--header "${header}": "${name}" is not a header name`)
    if (unforwardableReason(name) !== undefined) {
      const why = CONDITIONAL_HEADERS.includes(name.toLowerCase()) ? 'it makes the request conditional or partial: the answer would be a 304, 206 or 412, not a snapshot' : 'the command writes it itself for its own request'
      return usage(`--header ${name}: cannot be set (${why})`)
    }
    if (!/^[\t\x20-\x7e]*$/.test(value)) return usage(`--header ${name}: the value has characters a header cannot carry (printable ASCII only)`)
    // Header names are case-insensitive: given twice (in any spelling), both went out and the file
    // recorded the name twice, which its published schema refuses and no relay serves; the same
    // spelling twice kept the last value without a word.
    if (Object.keys(headers).some((seen) => seen.toLowerCase() === name.toLowerCase())) return usage(`--header ${name.toLowerCase()} is given twice (header names are case-insensitive): give it once`)
    headers[name] = value
  }
  const common = { out: resolve(values.out), maxShrinkPercent: maxShrink, headers, timeoutMs: timeout === undefined ? undefined : timeout * 1000 }
  let request: SnapshotRequest
  if (values.upstream !== undefined) {
    if (values.context === undefined) return usage('--upstream needs --context JSON (e.g. \'{"targetingKey":"anonymous"}\')')
    let context: unknown
    try {
      context = JSON.parse(values.context)
    } catch {
      return usage('--context is not valid JSON')
    }
    const key = (context as { targetingKey?: unknown } | null)?.targetingKey
    if (typeof context !== 'object' || context === null || Array.isArray(context) || typeof key !== 'string' || key === '') {
      return usage('--context must be a JSON object with a non-empty string targetingKey')
    }
    request = { ...common, upstream: values.upstream, context: context as { targetingKey: string }, allowPartial: values['allow-partial'] }
  } else if (values['flags-url'] !== undefined) request = { ...common, flagsUrl: values['flags-url'] }
  else {
    request = { ...common, flagsFile: resolve(values.flags!) }
    // The snapshot is not a flagd document: written over the flags file it would break every
    // server reading that file.
    const real = (path: string) => realpath(path).catch(() => path)
    if ((await real(request.flagsFile)) === (await real(common.out))) return usage('--out is the --flags file; write the snapshot elsewhere')
  }
  if (values.context !== undefined && values.upstream === undefined) return usage('--context only goes with --upstream')
  if (values['allow-partial'] && values.upstream === undefined) return usage('--allow-partial only goes with --upstream')
  // A missing directory is the step's own disk, found before the source is asked: written last, it
  // came back exit 1 "snapshot refused: cannot write …: ENOENT", read in a CI log as the flag
  // service failing. Not a usage error (2) either: the same command line writes once the directory
  // exists (a step that makes it was skipped), so it is "not written" (3), as a full disk is.
  // Looked at once the command line is read: before, a wrong one (--upstream without --context)
  // with the directory missing came back 3, its own mistake told only once the directory existed.
  const directory = dirname(common.out)
  const found = await stat(directory).catch(() => undefined)
  if (!found?.isDirectory()) {
    io.err(`[holdfast-server] snapshot not written: --out ${values.out}: ${found ? `${directory} is not a directory` : `the directory ${directory} does not exist`} (the source was not asked)`)
    return 3
  }

  const result = await snapshotOutcome(request)
  if (!result.ok) {
    // Told apart so a CI log says whose problem it is: the flag service's, or the step's own disk.
    const written = result.failed === 'write'
    io.err(`[holdfast-server] snapshot ${written ? 'not written' : 'refused'}: ${result.message}`)
    return written ? 3 : 1
  }
  if (result.warning) io.err(`[holdfast-server] snapshot warning: ${result.warning}`)
  io.out(`[holdfast-server] ${result.summary}`)
  return 0
}
