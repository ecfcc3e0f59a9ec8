import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The demo app. `npm run demo` at the repository root builds it and serves it next to the flag
// server; `npm run dev` here needs the packages built (`npm run build` at the root) and a flag
// server on http://127.0.0.1:8787 (or VITE_HOLDFAST_FLAGS_URL).
export default defineConfig({
  plugins: [react()],
  // When the fallback snapshot was built: the age the page shows for fallback values.
  define: { __HOLDFAST_DEMO_BUILT_AT__: JSON.stringify(Date.now()) },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 5173 },
})
