// A small static file server for the built demo app. It hands the app its runtime settings by
// injecting `window.__HOLDFAST_DEMO__ = { flagsUrl }` into index.html (and at `/config.json`), so
// the flag server may sit on any port, including one picked at random for tests.
import { createServer } from 'node:http'
import { readFile, stat } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
}

/**
 * Serves `root` on `host:port` (0 picks a free port). Unknown paths without an extension get
 * index.html, like any single-page app host. `routes` maps a path (e.g. `/api/kill-switch`) to
 * `async ({ method, body }) => ({ status, body })` for the demo's own controls: the JSON body of a
 * POST (at most 4 KiB) is parsed for it, and its answer is sent as JSON. Resolves with
 * `{ url, port, close() }`.
 */
export async function startStaticServer({ root, port = 0, host = '127.0.0.1', config, routes = {} }) {
  const configJson = JSON.stringify(config)
  // `<` escaped so no value can close the inline script early.
  const inline = `<script>window.__HOLDFAST_DEMO__ = ${configJson.replace(/</g, '\\u003c')}</script>`
  const indexHtml = (await readFile(join(root, 'index.html'), 'utf8')).replace('</head>', `  ${inline}\n  </head>`)

  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
      if (Object.hasOwn(routes, path)) return await route(routes[path], req, res)
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed')
      if (path === '/config.json') return send(res, 200, TYPES['.json'], configJson, 'no-store')
      const file = await findFile(root, path)
      if (!file) return send(res, 404, 'text/plain', 'not found')
      if (file === 'index') return send(res, 200, TYPES['.html'], indexHtml, 'no-store')
      // Vite puts content hashes in asset names, so they never change under one URL.
      const cache = path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache'
      send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', await readFile(file), cache)
    } catch {
      if (!res.headersSent) send(res, 400, 'text/plain', 'bad request')
    }
  })

  await new Promise((done, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      done()
    })
  })
  const bound = server.address().port
  let closing
  return {
    url: `http://${host}:${bound}`,
    port: bound,
    close() {
      closing ??= new Promise((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
      return closing
    },
  }
}

async function route(handler, req, res) {
  let body
  if (req.method === 'POST') {
    let text = ''
    for await (const chunk of req) {
      text += chunk
      if (text.length > 4096) return send(res, 413, TYPES['.json'], '{"error":"body too large"}')
    }
    try {
      body = JSON.parse(text || 'null')
    } catch {
      return send(res, 400, TYPES['.json'], '{"error":"expected a JSON body"}')
    }
  } else if (req.method !== 'GET') {
    return send(res, 405, 'text/plain', 'method not allowed')
  }
  try {
    const answer = await handler({ method: req.method, body })
    send(res, answer.status ?? 200, TYPES['.json'], JSON.stringify(answer.body ?? null))
  } catch (error) {
    send(res, 500, TYPES['.json'], JSON.stringify({ error: String(error?.message ?? error) }))
  }
}

/** The file for a URL path inside `root`, `'index'` for the app shell, or undefined. */
async function findFile(root, path) {
  if (path === '/' || path === '/index.html') return 'index'
  const file = normalize(join(root, path))
  if (!file.startsWith(root + sep)) return undefined // `..` tricks stay inside root
  const info = await stat(file).catch(() => undefined)
  if (info?.isFile()) return file
  return extname(path) === '' ? 'index' : undefined
}

function send(res, status, type, body, cache = 'no-store') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': cache, 'X-Content-Type-Options': 'nosniff' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
