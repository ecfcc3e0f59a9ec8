import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The demo app. `npm run demo` at the repository root builds it and serves it next to the flag
// server; `npm run dev` here needs the packages built (`npm run build` at the root) and a flag
// server on http://127.0.0.1:8787 (or VITE_HOLDFAST_FLAGS_URL).
export default defineConfig({
  plugins: [react()],
  // The build-time fallback (a Bootstrap). `npm run demo` makes it with `holdfast-server snapshot`
  // from the upstream flag service and passes it in; `npm run dev` has none.
  define: { __HOLDFAST_DEMO_FALLBACK__: 'null' },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 5173 },
})
