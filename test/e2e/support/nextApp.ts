// Builds and serves examples/nextjs the way it runs in production: `next build`, then
// `next start -p <port> -H 127.0.0.1`. The build goes to `.next-e2e` (not your `.next`), and a
// lock keeps two suite runs in one checkout from building over each other's server.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HOST, freePort, waitFor } from './servers'

export const NEXT_APP = fileURLToPath(new URL('../../../examples/nextjs', import.meta.url))
const DIST_DIR = '.next-e2e' // listed in examples/nextjs/tsconfig.json, so `next build` leaves it alone
const LOCK = join(NEXT_APP, '.next-e2e.lock')
const NEXT_BIN = createRequire(join(NEXT_APP, 'package.json')).resolve('next/dist/bin/next')

// Next.js phones home with anonymous telemetry unless told not to; the suite must not reach out.
const BASE_ENV = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NEXT_DIST_DIR: DIST_DIR, NODE_ENV: 'production' }

/** Takes the build lock (waiting for another run to finish), stealing it from a dead process. */
export async function lockNextBuild(timeoutMs = 180_000): Promise<() => void> {
  await waitFor(
    () => {
      try {
        mkdirSync(LOCK)
        writeFileSync(join(LOCK, 'pid'), String(process.pid))
        return true
      } catch {
        let owner = NaN
        try {
          owner = Number(readFileSync(join(LOCK, 'pid'), 'utf8'))
        } catch {
          // Just created, pid not written yet: wait.
        }
        if (Number.isInteger(owner) && !isAlive(owner)) rmSync(LOCK, { recursive: true, force: true })
        return false
      }
    },
    `another test run holds ${LOCK}; remove it if no run is going on`,
    timeoutMs,
  )
  return () => {
    rmSync(join(NEXT_APP, DIST_DIR), { recursive: true, force: true })
    rmSync(LOCK, { recursive: true, force: true })
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** `next build` into `.next-e2e`; rejects with the build's output when it fails. */
export async function buildNextApp(): Promise<void> {
  rmSync(join(NEXT_APP, DIST_DIR), { recursive: true, force: true })
  const child = spawn(process.execPath, [NEXT_BIN, 'build'], { cwd: NEXT_APP, env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = collect(child)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  if (code !== 0) throw new Error(`next build failed (exit ${code}):\n${output()}`)
}

export interface NextServer {
  url: string
  /** Everything the server printed, for failure messages. */
  output(): string
  close(): Promise<void>
}

/** `next start` on a free port of 127.0.0.1, talking to the flag server at `flagsUrl`. */
export async function startNextApp(env: { HOLDFAST_URL: string; HOLDFAST_PUBLIC_URL?: string }): Promise<NextServer> {
  const port = await freePort()
  // Its own process group, so close() ends whatever `next start` spawned as well.
  const child = spawn(process.execPath, [NEXT_BIN, 'start', '-p', String(port), '-H', HOST], {
    cwd: NEXT_APP,
    env: { ...BASE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const output = collect(child)
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  const url = `http://${HOST}:${port}`
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {
      return
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    }, 5000)
    await exited
    clearTimeout(timer)
  }
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`next start exited (${child.exitCode}):\n${output()}`)
        // Any answer means it is serving; a 404 path keeps the flag server out of it.
        return fetch(`${url}/__e2e-ready`).then(
          () => true,
          () => false,
        )
      },
      `next start did not answer on ${url}`,
      30_000,
    )
  } catch (error) {
    await close()
    throw error
  }
  return { url, output, close }
}

function collect(child: ChildProcess): () => string {
  let text = ''
  child.stdout?.on('data', (chunk) => (text += chunk))
  child.stderr?.on('data', (chunk) => (text += chunk))
  return () => text
}
