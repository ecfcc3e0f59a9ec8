// Runs the built holdfast-server as an operator does, its stdout and stderr piped to this test as
// to a log shipper, which can stop reading (stall) and come back (resume). Killed after each test.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(root, 'packages/server/dist/bin.js')
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Starts the relay; resolves with its URL once it printed it, and with what it printed so far. */
export async function relay(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env }
  for (const name of Object.keys(base)) if (name.startsWith('HOLDFAST_')) delete base[name]
  const child = spawn(process.execPath, [BIN, ...args, '--port', '0', '--max-event-loop-delay', '0'], { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  const collect = (chunk: Buffer) => (output += chunk)
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 15 s:\n${output}`)), 15_000)
    const look = () => {
      const match = output.match(/serving .* at (http:\/\/[^\s"]+)/)
      if (match) (clearTimeout(timer), resolve(match[1]))
    }
    child.stdout!.on('data', look)
    child.on('exit', () => (clearTimeout(timer), reject(new Error(`exited early:\n${output}`))))
  })
  let received = 0
  return {
    child,
    url,
    exited,
    output: () => output,
    /** Bytes read since the last resume(). */
    received: () => received,
    /** The log reader stops reading (a hung shipper): nothing more is taken from either pipe. */
    stall() {
      for (const stream of [child.stdout!, child.stderr!]) (stream.removeAllListeners('data'), stream.pause())
    },
    /** The log reader comes back and takes everything again. */
    resume() {
      received = 0
      for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => ((output += chunk), (received += chunk.length))).resume()
    },
  }
}
/** `GET url` within `ms`, or 'timeout'. */
export async function within(url: string, ms: number): Promise<number | 'timeout'> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(ms) })).status
  } catch {
    return 'timeout'
  }
}

