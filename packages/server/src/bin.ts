#!/usr/bin/env node
// The holdfast-server CLI. Rollup keeps the shebang above as the first line of dist/bin.js.
import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { Counter } from 'prom-client'
import { parseCliArgs, usage } from './cliOptions'
import type { LogOptions } from './logOptions'
import { buildServerOptions } from './serverOptions'
import { createFlagServer, type FlagServer } from './flagServer'
import { redactUrl } from './flags/upstreamFetch'
import { runSnapshotCli, SNAPSHOT_USAGE } from './snapshotCli'
import { EVENTS_USAGE, runEventsCli } from './events/replayCli'
import { commandLine, formatLine, writerLogger } from './logger'
import { createLogWriter } from './logWriter'
import { createRepeatLimiter } from './repeatLimiter'

// Every line the running server writes goes through this writer: bounded (see logWriter.ts),
// flushed before each exit (boundedly: a reader that never reads again cannot hold the exit).
// Lines of one kind are bounded too (see repeatLimiter.ts): what it held back is said at its tick,
// each second once the server is up (a kind's window ended, or no line of it for 2 s), and before
// every exit.
const writer = createLogWriter({
  droppedNotice: (n) => formatLine(logSettings.format, 'warn', `[holdfast-server] ${n} log line(s) dropped: the reader of stdout/stderr was not keeping up`),
  // Not in a subcommand (see subcommandIo): no metric there, and no "from here on" in a one-shot step.
  outGoneNotice: () => (subcommand ? undefined : formatLine(logSettings.format, 'warn', '[holdfast-server] stdout is closed (its reader went away): its lines are dropped from here on, counted in holdfast_log_lines_dropped_total')),
})
let subcommand = false
// Text at info until the command line is read (--log-format, --log-level).
let logSettings: LogOptions = { format: 'text', level: 'info' }
const limiter = createRepeatLimiter(writerLogger(writer, () => logSettings))
const log = limiter.logger
const FLUSH_MS = 2000
const flushLog = () => (limiter.tick(true), writer.flush(FLUSH_MS))
// A line said on the way out ("stopped", a start error): what the limiter held back is said first,
// so this is the last line (a supervisor, or an operator's `tail`, reads the end of the log), and
// it is never held back itself.
const lastWord = (level: 'info' | 'error', message: string) => (limiter.tick(true), log[level](message))

// A crash (a bug: an exception nothing caught, a rejection nothing took) is said as one line of the
// chosen format, after the lines still waiting for the log reader, and the command exits 1. Node's
// own report was a raw stack of many lines (never JSON), and its exit threw away whatever the
// writer still held for a reader that was behind. Not in createFlagServer: a host app that embeds
// it owns its process and its crashes.
let crashed = false
function crash(kind: string, error: unknown): void {
  try {
    if (crashed) return
    crashed = true
    // One line: escaped by the writer in text, by JSON in JSON (see writerLogger).
    lastWord('error', `[holdfast-server] crashed (${kind}): ${thrown(error)}`)
    void exitPastHungCalls(1, 'SIGKILL')
  } catch {
    process.exit(1)
  }
}
// What was thrown, in words, whatever it is. String() throws for an object with no prototype and
// a stack getter can throw: the crash then went unsaid (exit 1, no line, the waiting lines lost).
function thrown(error: unknown): string {
  try {
    if (error instanceof Error) {
      try {
        const stack: unknown = error.stack
        if (typeof stack === 'string' && stack !== '') return stack
      } catch {
        // Its name and message, below.
      }
      return `${String(error.name)}: ${String(error.message)}`
    }
    return `a non-error value thrown: ${typeof error === 'object' && error !== null ? inspect(error) : String(error)}`
  } catch {
    try {
      return `a value that cannot be printed: ${inspect(error)}`
    } catch {
      return 'a value that cannot be printed'
    }
  }
}
process.on('uncaughtException', (error) => crash('uncaught exception', error))
// Node's --unhandled-rejections=warn, none or warn-with-error-code is the operator asking that a
// rejection nothing took not end the process: Node emits 'unhandledRejection' in those modes too,
// and this handler made each an exit 1. Then they are left to Node (its warning, its exit code).
// In `throw` (the default) and `strict` a rejection ends the process: said here, or as the uncaught
// exception strict makes of it.
if (!['warn', 'none', 'warn-with-error-code'].includes(unhandledRejectionsMode() ?? 'throw')) {
  process.on('unhandledRejection', (reason) => crash('unhandled rejection', reason))
}

// The --unhandled-rejections Node runs with: the last given, NODE_OPTIONS read before its command
// line (which process.execArgv holds, NODE_OPTIONS not) as Node reads them.
function unhandledRejectionsMode(): string | undefined {
  const words = [...nodeOptionsWords(process.env.NODE_OPTIONS ?? ''), ...process.execArgv]
  let mode: string | undefined
  for (let i = 0; i < words.length; i++) {
    // Node takes `_` for `-` in an option's name, and its value after `=` or as the next word.
    const [name, value] = words[i]!.split(/=(.*)/s, 2) as [string, string | undefined]
    if (name.replace(/_/g, '-') === '--unhandled-rejections') mode = value ?? words[++i]
  }
  return mode
}

// NODE_OPTIONS as Node splits it: on spaces, a double-quoted part kept whole (`\` escaping in it).
function nodeOptionsWords(text: string): string[] {
  const words: string[] = []
  for (const match of text.matchAll(/(?:[^\s"]+|"(?:\\.|[^"\\])*")+/g)) words.push(match[0].replace(/"((?:\\.|[^"\\])*)"/g, (_, inner: string) => inner.replace(/\\(.)/g, '$1')))
  return words
}

// A usage error: with the usage in text; in JSON, one line alone.
function fail(message: string, format: LogOptions['format'] = 'text'): never {
  if (format === 'json') process.stderr.write(`${formatLine('json', 'error', `[holdfast-server] ${message}`)}\n`)
  else process.stderr.write(`[holdfast-server] ${message}\n\n${usage()}`)
  process.exit(2)
}

// The format HOLDFAST_LOG_FORMAT asks for, where the command line has none to say (or cannot be read).
const envFormat = (): LogOptions['format'] => (process.env.HOLDFAST_LOG_FORMAT === 'json' ? 'json' : 'text')

// The subcommands' lines (`snapshot`, `events`: options of their own, no --log-format) in the
// format HOLDFAST_LOG_FORMAT asks for; a value the server would refuse is text here (a CI step is
// not failed over the relay's log setting). Their `[holdfast-server] …` lines become JSON ones, a
// usage error without the usage text after it; text they write on request (--help) stays as it is.
//
// Their stdout's reader gone (`holdfast-server snapshot … | head -c1`, a log collector stopped): the
// EPIPE that follows is Node's 'error' event on process.stdout, which the writer hears (see
// logWriter.ts; unheard, it was an uncaught exception: a crash, exit 1, the snapshot written all
// the same). The step's exit code stays its own, and its stderr says nothing of it: the relay's
// notice names a metric a subcommand has not, and whether it came at all depended on whether the
// step still had work to do after its last line (it did for `events`, never for `snapshot`).
function subcommandIo(usageText: string) {
  const format = envFormat()
  subcommand = true
  // A crash of the subcommand is said in it too (see crash()).
  logSettings = { format, level: 'info' }
  // Each such line is one line, as the server's are: in text, control characters escaped (a dead
  // letter's event id is text a client sent: a line break in it wrote a line of its own); the
  // usage after a usage error stays as it is, and in JSON is left out.
  const write = (stream: NodeJS.WriteStream, level: 'info' | 'error') => (line: string) => {
    if (line.startsWith('[holdfast-server] ')) {
      const withUsage = line.endsWith(`\n\n${usageText}`)
      const said = withUsage ? line.slice(0, -usageText.length - 2) : line
      line = `${commandLine(format, level, said)}${withUsage && format === 'text' ? `\n\n${usageText}` : ''}`
    }
    stream.write(`${line}\n`)
  }
  return { out: write(process.stdout, 'info'), err: write(process.stderr, 'error') }
}

function readOptions() {
  const parsed = parseCliArgs(process.argv.slice(2))
  // Found before the log options are read (an unknown option, one given twice): the command line
  // cannot say the format, HOLDFAST_LOG_FORMAT alone does. It was text and the usage whatever it
  // said, each line an unreadable record to a log shipper reading JSON.
  if (!parsed.ok) fail(parsed.error, envFormat())
  const values = parsed.values
  if (values.help) {
    process.stdout.write(usage())
    process.exit(0)
  }
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`)
    process.exit(0)
  }
  const built = buildServerOptions(values, process.env)
  if (!built.ok) fail(built.error, built.log?.format)
  logSettings = built.log
  return { ...built.options, logger: built.options.logger ?? log }
}

// The package's own package.json, beside `dist/` (or `src/` when run from the workspace): the
// version an operator reports in a bug is the one installed, not one copied in at build time.
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch (error) {
    fail(`cannot read the version: ${(error as Error).message}`)
  }
}

async function main(): Promise<void> {
  // `holdfast-server snapshot …` is the CI step (see snapshotCli.ts), not a server.
  if (process.argv[2] === 'snapshot') {
    const code = await runSnapshotCli(process.argv.slice(3), subcommandIo(SNAPSHOT_USAGE))
    process.exit(code)
  }
  // `holdfast-server events replay-dead-letters …` (see events/replayCli.ts), not a server.
  if (process.argv[2] === 'events') {
    const code = await runEventsCli(process.argv.slice(3), subcommandIo(EVENTS_USAGE))
    process.exit(code)
  }
  const options = readOptions()
  // Signals are taken from the start: one that comes while the server is still starting (its first
  // upstream answer, boundedly) stops it as cleanly as one that comes later, not as a bare kill.
  // SIGHUP (the terminal that started it closed) drains like SIGTERM.
  let server: FlagServer | undefined
  let stopping = false
  let stoppedBy = 'SIGTERM'
  const drain = (running: FlagServer, signal: string) =>
    running.close().then(
      async () => {
        lastWord('info', '[holdfast-server] stopped')
        await exitPastHungCalls(0, signal)
      },
      (error: unknown) => {
        lastWord('error', `[holdfast-server] the drain failed: ${(error as Error).message}`)
        return exitFlushed(1)
      },
    )
  const stop = (signal: string) => {
    // A second signal means "now": do not wait for slow connections or writes.
    if (stopping) {
      lastWord('error', `[holdfast-server] ${signal} again: exiting without finishing the drain`)
      // Not process.exit while a call hangs: it would wait for it (see exitPastHungCalls).
      if (hungCalls() > 0) return void flushLog().then(() => endBy(signal))
      return void exitFlushed(130)
    }
    stopping = true
    stoppedBy = signal
    log.info(`[holdfast-server] ${signal}: draining (finishing requests in flight, refusing new ones)`)
    if (server) void drain(server, signal)
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal))
  try {
    server = await createFlagServer(options)
  } catch (error) {
    const message = listenProblem(error as NodeJS.ErrnoException, options.host ?? '127.0.0.1', options.port ?? 8787) ?? (error as Error).message
    lastWord('error', `${message.startsWith('[holdfast-server]') ? '' : '[holdfast-server] '}${message}`)
    // A start refused because a file system call hung (an events spool on a dead mount) leaves
    // that call pending: exit 1 would wait for it for ever. Ended then by SIGKILL, not SIGTERM:
    // systemd's Restart=on-failure takes SIGTERM, SIGINT and SIGHUP for a clean stop and would not
    // start it again; a signal the operator sent meanwhile is the one it ends by.
    return exitPastHungCalls(1, stopping ? stoppedBy : 'SIGKILL')
  }
  countDropped(server)
  setInterval(() => limiter.tick(), 1000).unref()
  if (stopping) return void drain(server, stoppedBy)
  // Announced once the signals drain: a supervisor that sends SIGTERM as soon as it reads this line
  // gets a drain and exit 0, not the default kill.
  // A signed bucket URL's token stays out of the log, as in every other line naming the source.
  const source = options.flagsUrl ?? options.upstream
  // Written at every --log-level (as an info line): with --port 0 it is the only place the port is
  // said, and a supervisor may wait for it. At warn it was left out, and the port was unknowable.
  // One line as the logger's are: a --flags file name holding a line break wrote two, and a
  // supervisor matching the line never found the URL.
  writer.write('out', commandLine(logSettings.format, 'info', `[holdfast-server] serving ${typeof options.flags === 'string' ? options.flags : source !== undefined ? redactUrl(source) : 'flags'} at ${server.url}`))
}

// holdfast_log_lines_dropped_total: the writer's count, read at each scrape (the writer starts
// before the server and its registry). Lines dropped before this are in it too.
function countDropped(server: FlagServer): void {
  new Counter({
    name: 'holdfast_log_lines_dropped_total',
    help: 'Log lines not written because the reader of stdout/stderr was not keeping up (more than 1 MiB waiting).',
    registers: [server.metrics.registry],
    collect() {
      this.reset()
      this.inc(writer.dropped())
    },
  })
}

// A file system call that never returns (a data dir or spool on a network mount whose server is
// gone) holds a libuv thread, and a normal exit waits for every such thread: the relay printed
// "stopped" and then never ended, and a supervisor had to kill it. Calls still pending 1 s after
// the drain are taken as hung: the process then ends by the signal it was sent (its default action,
// which waits for nothing), as a process without a handler would, and says why. Else exits `code`.
async function exitPastHungCalls(code: number, signal: string): Promise<never> {
  for (let waited = 0; hungCalls() > 0 && waited < 1000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  const hung = hungCalls()
  if (hung === 0) return exitFlushed(code)
  lastWord('error', `[holdfast-server] ${hung} file system call(s) never returned (a hung mount?); a normal exit would wait for them for ever: ending by ${signal}`)
  await flushLog()
  return endBy(signal)
}

const hungCalls = () => process.getActiveResourcesInfo().filter((name) => name.startsWith('FSReq')).length

// Exits `code` once the lines waiting for the log reader are taken (process.exit throws away what
// a pipe's reader has not taken yet: "stopped", or a start error, went first), or after FLUSH_MS
// when the reader is not reading.
// A crash meanwhile (after 'stopped', while the last lines wait for the reader) makes it 1: the
// drain's exit and the crash's wait for the same reader, and the drain's, started first, often
// ended the process first, exit 0 under a log whose last line was the crash.
// A clean exit (0) keeps the code Node was asked to set: --unhandled-rejections=warn-with-error-code
// sets process.exitCode 1 at a rejection nothing took, and an exit(0) here made it 0.
async function exitFlushed(code: number): Promise<never> {
  await flushLog()
  process.exit(crashed ? 1 : code === 0 ? (process.exitCode ?? 0) : code)
}

// By `signal`'s default action (no handler left to take it), which waits for no thread.
async function endBy(signal: string): Promise<never> {
  process.removeAllListeners(signal)
  process.kill(process.pid, signal)
  return new Promise<never>(() => {})
}

// Node's own words ("listen EADDRINUSE: address already in use") name neither option to change.
function listenProblem(error: NodeJS.ErrnoException, host: string, port: number): string | undefined {
  if (error.syscall !== 'listen' && !(error.syscall === 'getaddrinfo' && (error as { hostname?: string }).hostname === host)) return undefined
  const why: Record<string, string> = {
    EADDRINUSE: 'the port is in use (another server, or an earlier one still running)',
    EADDRNOTAVAIL: 'no interface of this machine has that address',
    EACCES: 'not allowed (a port under 1024 needs privileges)',
    ENOTFOUND: 'no such host',
  }
  return `cannot listen on ${host}:${port} (--host, --port): ${error.code ?? ''}${error.code && why[error.code] ? `, ${why[error.code]}` : ''}`
}

void main()
