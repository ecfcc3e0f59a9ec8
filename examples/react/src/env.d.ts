/// <reference types="vite/client" />

/** Set by the vite config: epoch ms of the build, the `fetchedAt` of the fallback snapshot. */
declare const __HOLDFAST_DEMO_BUILT_AT__: number

interface Window {
  /** Injected into index.html by the demo's static server (scripts/demo.mjs). */
  __HOLDFAST_DEMO__?: { flagsUrl?: string }
}

interface ImportMetaEnv {
  /** The flag server for `npm run dev`, when not the default http://127.0.0.1:8787. */
  readonly VITE_HOLDFAST_FLAGS_URL?: string
}
