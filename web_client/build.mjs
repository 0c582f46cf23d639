// Builds dist/: index.html and style.css copied, src/main.js bundled into app.js.
// One classic script (IIFE), not an ES module, so dist/index.html also works opened from disk.
import { build } from 'esbuild'
import { copyFile, mkdir, rm } from 'node:fs/promises'

const here = new URL('.', import.meta.url).pathname
const dist = `${here}dist`

await rm(dist, { recursive: true, force: true })
await mkdir(dist, { recursive: true })
await build({
  entryPoints: [`${here}src/main.js`],
  outfile: `${dist}/app.js`,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome109', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
  // ShareDB's client needs Node's "events"; esbuild takes it from the npm package of that name.
  // ShareDB tries require('util') inside try/catch and falls back to the "inherits" package.
  external: ['util'],
  define: { 'process.env.NODE_ENV': '"production"' }
})
for (const file of ['index.html', 'style.css']) await copyFile(`${here}src/${file}`, `${dist}/${file}`)
