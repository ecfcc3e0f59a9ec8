// `npm run server -- --flags examples/flags.json [holdfast-server options]`: the reference flag
// server, started from a clone of this repository on the first try.
//
// Why a script and not `npx holdfast-server`: npm links a workspace's `bin` into node_modules/.bin
// only when the target file exists at install time, and packages/server/dist/bin.js exists only
// after `npm run build`. On a fresh clone `npx holdfast-server` therefore finds no local command
// and asks the public registry, which answers 404. This script builds the packages when dist/ is
// missing or older than the sources, then runs the built CLI in this process with the same
// arguments (so Ctrl-C and exit codes are the CLI's own).
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildPackages, stopBuilds } from './demo/build.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'packages', 'server', 'dist', 'bin.js')
// What the server's dist is built from: its own sources and @holdfast/core's (a dependency).
const SOURCES = ['packages/server/src', 'packages/core/src', 'packages/server/package.json', 'packages/core/package.json', 'rollup.config.mjs']
const OUTPUTS = ['packages/server/dist/bin.js', 'packages/server/dist/index.js', 'packages/core/dist/index.js']

/** The newest modification time (ms) of a file or of any file below a directory; 0 when absent. */
function newest(path) {
  let info
  try {
    info = statSync(path)
  } catch {
    return 0
  }
  if (!info.isDirectory()) return info.mtimeMs
  let latest = 0
  for (const name of readdirSync(path)) latest = Math.max(latest, newest(join(path, name)))
  return latest
}

/**
 * Why the packages must be built before the CLI can run, or undefined when dist/ is current:
 * an output is missing, or a source changed after the oldest output was written.
 */
function buildReason(root = ROOT) {
  const missing = OUTPUTS.find((file) => !existsSync(join(root, file)))
  if (missing) return `${missing} is missing`
  const built = Math.min(...OUTPUTS.map((file) => newest(join(root, file))))
  const changed = SOURCES.find((source) => newest(join(root, source)) > built)
  return changed ? `${changed} changed since the last build` : undefined
}

async function main() {
  // `npm run` starts scripts at the package root; resolve relative paths (`--flags flags.json`)
  // from the directory the command was typed in, as `holdfast-server` itself would.
  const typedIn = process.env.INIT_CWD
  if (typedIn && typedIn !== process.cwd() && existsSync(typedIn)) process.chdir(typedIn)

  const reason = buildReason()
  if (reason) {
    process.stderr.write(`[holdfast] building the packages first (${reason})…\n`)
    // A signal during the build ends it: before, node died at once and rollup built on, orphaned.
    let stoppedBy
    const onSignal = (signal) => {
      stoppedBy ??= signal
      stopBuilds()
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, onSignal)
    try {
      await buildPackages(ROOT)
    } catch (error) {
      if (stoppedBy) {
        process.stderr.write(`[holdfast] ${stoppedBy}: the build was stopped; the server was not started\n`)
        process.exit(0)
      }
      process.stderr.write(`[holdfast] ${error.message}\n`)
      process.exit(1)
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(signal, onSignal)
    // The build finished just as a signal came: the server is not started either.
    if (stoppedBy) process.exit(0)
  }
  // The built CLI reads process.argv itself and installs its own signal handlers.
  await import(pathToFileURL(BIN).href)

  if (process.env.npm_lifecycle_event === 'server') underNpm()
}

/**
 * `npm run server` runs `sh -c 'exec node scripts/server.mjs …'`: the shell becomes this process,
 * so a SIGINT or SIGTERM sent to npm alone (a supervisor, a test harness) is forwarded to us.
 * Without the `exec`, dash waiting on us kept a forwarded SIGINT until we ended (it takes it that we
 * got the same one from the terminal): the server never stopped. A terminal's Ctrl-C now reaches us
 * twice, from the terminal and forwarded by npm, within milliseconds; the CLI takes a second signal
 * as "exit now, without the drain", so a repeat within 1 s of the first is one press, not two.
 * A command of the CLI (snapshot, events) takes no signal itself and is left to end by it. Should
 * npm itself be killed (SIGKILL forwards nothing), being re-parented is the sign: stop as if
 * signalled.
 */
function underNpm() {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    const handlers = process.listeners(signal)
    // A command of the CLI (snapshot, events replay-dead-letters) installs no handler: the signal's
    // default action ends it. Wrapped, the signal went to no handler and was ignored.
    if (handlers.length === 0) continue
    process.removeAllListeners(signal)
    let first
    process.on(signal, () => {
      const now = Date.now()
      if (first !== undefined && now - first < 1000) return
      first ??= now
      for (const handler of handlers) handler(signal)
    })
  }
  const parent = process.ppid
  const watchdog = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(watchdog)
    process.kill(process.pid, 'SIGTERM')
  }, 1000)
  watchdog.unref()
}

await main()
