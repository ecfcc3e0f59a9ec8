// Heap growth per iteration of a workload, measured in a child process started with --expose-gc
// (no other test's heap in the way, a real collector). The child calls `reportGrowth`; the test
// calls `growthInChild` and asserts on what it printed.
//
// HOLDFAST_INJECT_LEAK=BYTES makes every measured iteration keep a string of that many bytes: run a
// test once with it to see its threshold catch a real leak (1024 = 1 KB an iteration).
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface Growth {
  /** Heap growth over the measured iterations, in bytes (negative when it shrank). */
  bytes: number
  /** `bytes` divided by the iterations. */
  perIteration: number
  iterations: number
  heapBefore: number
  heapAfter: number
}

const gcOf = () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with --expose-gc')
  return gc
}

/** Collects until the heap settles (the HTTP client and streams free through FinalizationRegistry a task later). */
export async function settledHeap(): Promise<number> {
  const gc = gcOf()
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * In the child: runs `step` `warmUp` times (default `iterations`) to warm up (JIT, caches and bounded
 * memos fill), then `iterations` times measured, and prints the growth as one JSON line.
 */
export async function reportGrowth(step: (i: number) => unknown, iterations: number, options: { batch?: number; warmUp?: number } = {}): Promise<void> {
  const batch = options.batch ?? 1
  const warmUp = options.warmUp ?? iterations
  const run = async (from: number, count: number) => {
    for (let i = from; i < from + count; i += batch) {
      const pending: unknown[] = []
      for (let j = i; j < Math.min(i + batch, from + count); j++) pending.push(step(j))
      await Promise.all(pending)
    }
  }
  await run(0, warmUp)
  const heapBefore = await settledHeap()
  const inject = Number(process.env.HOLDFAST_INJECT_LEAK ?? 0)
  const kept: string[] = []
  if (inject > 0) {
    const inner = step
    step = (i) => {
      // A flat string of `inject` bytes (padEnd or repeat would make a rope sharing its filler).
      kept.push(String.fromCharCode(...Array.from({ length: inject }, (_, j) => 97 + ((i + j) % 26))))
      return inner(i)
    }
  }
  await run(warmUp, iterations)
  const heapAfter = await settledHeap()
  const bytes = heapAfter - heapBefore
  process.stdout.write(`\n${JSON.stringify({ bytes, perIteration: bytes / iterations, iterations, heapBefore, heapAfter, kept: kept.length })}\n`)
}

/** In the test, run from the repository's root: runs `fixture` (a .ts file, its file URL or path) with `args` (and `env`, e.g. WARM_UP where the fixture reads it) in a child process and reads its growth. */
export function growthInChild(fixture: URL | string, args: string[] = [], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Growth> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', String(fixture).startsWith('file:') ? fileURLToPath(String(fixture)) : String(fixture), ...args],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const line = stdout.trim().split('\n').at(-1) ?? ''
        if (error || !line.startsWith('{')) return reject(new Error(`${String(fixture)} ${args.join(' ')}: ${error?.message ?? 'no result'}\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`))
        resolve(JSON.parse(line) as Growth)
      },
    )
  })
}
