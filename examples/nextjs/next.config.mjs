import { fileURLToPath } from 'node:url'

/** @type {import('next').NextConfig} */
const config = {
  // The monorepo root: @holdfast/* are workspace links into ../../packages, which Turbopack only
  // follows inside its root. In an app that installs @holdfast/* from npm this line is not needed.
  turbopack: { root: fileURLToPath(new URL('../..', import.meta.url)) },
  // The end-to-end suite builds into its own directory so a run never clobbers your `.next`.
  distDir: process.env.NEXT_DIST_DIR || '.next',
  poweredByHeader: false,
}

export default config
