// Runs holdfast-server as a real process (from the sources, through tsx), for the tests that
// kill it with SIGKILL. Every process started here is killed after the test.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const children: ChildProcess[] = []

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

export interface ServerProcess {
  child: ChildProcess
  output(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the URL the server printed once it listens. */
  url(timeoutMs?: number): Promise<string>
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>
}

/** Starts `holdfast-server ARGS` (cwd: the repository root), with `extraEnv` over this process's environment. */
export function serverProcess(args: string[], extraEnv: NodeJS.ProcessEnv = {}): ServerProcess {
  const env = { ...process.env }
  delete env.HOLDFAST_API_KEY
  Object.assign(env, extraEnv)
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/bin.ts', ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return {
    child,
    output: () => output,
    exited,
    async url(timeoutMs = 30_000) {
      const started = Date.now()
      while (Date.now() - started < timeoutMs) {
        const match = output.match(/(?:serving|listening) .*?at (http:\/\/\S+)/)
        if (match) return match[1]
        if (child.exitCode !== null) throw new Error(`exited early:\n${output}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      throw new Error(`no URL printed within ${timeoutMs} ms:\n${output}`)
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

/**
 * Runs `holdfast-server ARGS` expecting it to refuse its options; resolves with its exit code and
 * output. A server that starts instead (an option ignored) would run for ever: it is killed after
 * `timeoutMs`, and reads as code null.
 */
export async function serverExit(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  const run = serverProcess(args, env)
  const timer = setTimeout(() => void run.kill(), timeoutMs)
  const { code } = await run.exited
  clearTimeout(timer)
  return { code, output: run.output() }
}
