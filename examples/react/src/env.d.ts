/// <reference types="vite/client" />

/**
 * Set by the build (scripts/demo/build.mjs): the first-visit fallback, a `Bootstrap` made by
 * `holdfast-server snapshot --upstream … --context … --out …`; `null` under `npm run dev`.
 */
declare const __HOLDFAST_DEMO_FALLBACK__: import('@holdfast/react').Bootstrap | null

interface Window {
  /** Injected into index.html by the demo's static server (scripts/demo.mjs). */
  __HOLDFAST_DEMO__?: { flagsUrl?: string; relay?: boolean }
}

interface ImportMetaEnv {
  /** The flag server for `npm run dev`, when not the default http://127.0.0.1:8787. */
  readonly VITE_HOLDFAST_FLAGS_URL?: string
}
