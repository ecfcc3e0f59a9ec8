// A provider mounted and unmounted all week (a route, a key={user} remount), hooks on many keys:
// nothing retained per mount. Each workload runs in a child process with --expose-gc
// (fixtures/leakReact.tsx): a warm-up of the same size, then the measured run. A real leak of
// 1 KB a mount fails each (HOLDFAST_INJECT_LEAK=1024, see test/support/heapGrowth.ts).
import { join } from 'node:path'
import { version } from 'react'
import { describe, expect, test } from 'vitest'
import { growthInChild } from '../support/heapGrowth'

// A path: under this project's jsdom, import.meta.url is no file URL.
const fixture = join(process.cwd(), 'test/react/fixtures/leakReact.tsx')

// The child runs the root's React (19): under the react18 project it would measure the same again.
describe.skipIf(version.startsWith('18.'))('<FlagProvider> memory stays flat under churn', () => {
  // Each provider's own client kept its IndexedDB connection open after the unmount closed it:
  // 2,820 B a mount before (4,000 mounts), 14 B after.
  test('a provider owning its client, mounted and unmounted 2,000 times', { timeout: 60_000 }, async () => {
    const growth = await growthInChild(fixture, ['mounts', '2000'])
    expect(growth.perIteration).toBeLessThan(300)
  })

  test('hooks on 4,000 distinct keys mounted and unmounted under one client', { timeout: 60_000 }, async () => {
    const growth = await growthInChild(fixture, ['hooks', '4000'])
    expect(growth.perIteration).toBeLessThan(300)
  })
})
