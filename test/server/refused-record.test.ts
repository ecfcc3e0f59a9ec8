// Proxy mode, --on-upstream-unauthorized clear-after=S: the data dir's contexts record carries
// `refused` (575dfaf), the contexts refused (401/403) in a run not yet S seconds long, with the run's
// start, so that a restart carries the run on. Read back as a file on disk an accident or an
// operator controls: a relay restarted with a stricter policy, and a list one entry of which cannot
// be read (a hand edit, another version), must still drop the refused users' values.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createGenerationStore, createUpstreamSource, type UpstreamSourceOptions } from '@holdfast/server'
import type { UnauthorizedPolicy } from '../../packages/server/src/flags/upstreamHealth'
import { encodeGeneration } from '../../packages/server/src/flags/generations'
import { recordingLogger, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const PRO = { ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) }
const CLEAR_AFTER_60: UnauthorizedPolicy = { mode: 'clear-after', seconds: 60 }

/** A proxy-mode source on the data dir `dir` and the injected clock, opened. */
async function open(url: string, dir: string, clock: { at: number }, options: Partial<UpstreamSourceOptions> = {}) {
  const log = recordingLogger()
  const source = createUpstreamSource({ url, maxShrinkPercent: 50, onUnauthorized: CLEAR_AFTER_60, timeoutMs: 2000, log, now: () => clock.at, store: createGenerationStore({ dir }), ...options })
  await source.open()
  const ask = async (targetingKey: string) => (await source.evaluate!({ context: { targetingKey }, headers: { authorization: 'Bearer k1' } })).status
  return { source, ask, log }
}

/** A relay that served `victim`, then had its key refused once (a run of 401s begins), and closed. */
async function refusedOnce() {
  const upstream = await startUpstream(PRO)
  const dir = await tempDir()
  const clock = { at: 1_800_000_000_000 }
  const first = await open(upstream.url, dir, clock)
  expect(await first.ask('victim')).toBe(200)
  upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
  expect(await first.ask('victim')).toBe(200)
  await first.source.close()
  upstream.set({ status: 503, text: 'down' })
  return { upstream, dir, clock }
}

describe('the refused list read back at a restart', () => {
  it('under --on-upstream-unauthorized clear (the operator tightened clear-after=60): the context refused before the restart is dropped at once', async () => {
    const { upstream, dir, clock } = await refusedOnce()
    const second = await open(upstream.url, dir, clock, { onUnauthorized: { mode: 'clear' } })
    try {
      // Before: only clear-after read the list back, so under clear (a 401 drops at once) the
      // refused user's values were held and served (200, stale) through the outage.
      await waitFor(() => second.source.relayStatus!().contexts === 0, 2000)
      expect(await second.ask('victim')).toBe(503)
    } finally {
      await second.source.close()
    }
  })

  it('under keep: nothing is dropped, and the log says the refused context is kept', async () => {
    const { upstream, dir, clock } = await refusedOnce()
    clock.at += 3_600_000
    const second = await open(upstream.url, dir, clock, { onUnauthorized: { mode: 'keep' } })
    try {
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(second.source.relayStatus!().contexts).toBe(1)
      expect(await second.ask('victim')).toBe(200)
      // Said, once: the revoked user's values are kept on purpose, and the run ends here. Before, the
      // list was dropped in silence, and an operator who switched back found no run going on.
      expect(second.log.lines.filter((line) => /refused \(401\/403\) in a clear-after run/.test(line))).toEqual([
        'the data dir lists a context the upstream refused (401/403) in a clear-after run before the restart: kept with its values, and its run ends here (--on-upstream-unauthorized keep)',
      ])
    } finally {
      await second.source.close()
    }
  })
})

/** Writes the newest generation of `dir` again as a newer one, its `refused` list passed through `edit`. */
async function editRefused(dir: string, edit: (refused: unknown[]) => unknown) {
  const names = (await readdir(dir)).filter((name) => /^gen-\d+\.json$/.test(name)).sort()
  const text = await readFile(join(dir, names.at(-1)!), 'utf8')
  const newline = text.indexOf('\n')
  const header = JSON.parse(text.slice(0, newline)) as { source?: string }
  const record = JSON.parse(text.slice(newline + 1)) as { refused: unknown[] }
  expect(record.refused).toHaveLength(1)
  const next = Number(/\d+/.exec(names.at(-1)!)![0]) + 1
  await writeFile(join(dir, `gen-${String(next).padStart(12, '0')}.json`), encodeGeneration(JSON.stringify({ ...record, refused: edit(record.refused) }), header.source))
}

describe('a refused list with an entry that cannot be read (a hand edit, another version)', () => {
  it.each([
    ['a start written as text', { key: 'ghost', credentials: 'c', since: 'yesterday' }],
    ['a key past 256 characters', { key: 'k'.repeat(257), credentials: 'c', since: 1 }],
    ['no credentials', { key: 'ghost', since: 1 }],
    ['null', null],
  ])('%s beside a good one: the good one is read back, the context dropped when due, and the log says one was left out', async (_, bad) => {
    const { upstream, dir, clock } = await refusedOnce()
    await editRefused(dir, (refused) => [bad, ...refused])
    // Restarted after the run was due (61 s of 60).
    clock.at += 61_000
    const second = await open(upstream.url, dir, clock)
    try {
      // Before: one entry that did not read dropped the whole list, in silence: the run was
      // forgotten and the revoked user's values held (and served, 200) until its next 401.
      await waitFor(() => second.source.relayStatus!().contexts === 0, 2000)
      expect(await second.ask('victim')).toBe(503)
      expect(second.log.lines.filter((line) => /refused.*cannot be read/.test(line))).toHaveLength(1)
    } finally {
      await second.source.close()
    }
  })

  it('a list that is no list: the answers are read, and the log says the list was left out', async () => {
    const { upstream, dir, clock } = await refusedOnce()
    await editRefused(dir, () => 'x')
    const second = await open(upstream.url, dir, clock)
    try {
      expect(second.source.relayStatus!().contexts).toBe(1)
      expect(second.log.lines.filter((line) => /refused.*cannot be read/.test(line))).toHaveLength(1)
    } finally {
      await second.source.close()
    }
  })
})
