// Bundles the client entry (src/client/main.ts, which bin/run.js and the *.cloud names load) into
// one CommonJS file, dist/bundle/main.cjs: loading dozens of ES modules from node_modules costs a
// synchronous run more than its requests do, and one CommonJS file can be compiled with V8's code
// cache (bin/run.js). Beside it, shapes.json: the shapes of the shipped services (src/client/shipped.ts).
// Run after tsc (npm run build): oclif commands, the node and the tests use dist/ as tsc wrote it.
//
//   node scripts/bundle-client.mjs [ROOT]   (default: this package)
import { build } from 'esbuild'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
const src = join(root, 'src')
const outdir = join(root, 'dist', 'bundle')
// built beside, then swapped in: a client started meanwhile finds the old bundle or the new one
const building = join(root, 'dist', `.bundle-${process.pid}`)

/**
 * A module keeps the location tsc gives it (dist/PATH.js): its `import.meta.url` points there, so
 * paths it finds from it (package.json, services/, the spawn helper) are the same bundled or not.
 */
const keepLocation = {
  name: 'keep-location',
  setup (b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8')
      if (args.path.startsWith(src + '/') && text.includes('import.meta.url')) {
        const asBuilt = join(root, 'dist', relative(src, args.path)).replace(/\.ts$/, '.js')
        const rel = relative(outdir, asBuilt) // the same from the folder it is built in
        text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`)
      }
      return { contents: text, loader: 'ts' }
    })
  },
}

const result = await build({
  absWorkingDir: root,
  entryPoints: [join(src, 'client', 'main.ts')],
  outfile: join(building, 'main.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import() of a package (oclif, loaded for commands) becomes require(): they are CommonJS
  supported: { 'dynamic-import': false },
  // native modules, oclif (loaded for commands, from dist/commands) and mDNS stay in node_modules
  external: ['@oclif/*', 'better-sqlite3', 'serialport', '@serialport/*', 'bonjour-service'],
  // ES modules see import.meta.url: this file's URL
  define: { 'import.meta.url': '__rrcloudUrl' },
  banner: { js: "const __rrcloudUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [keepLocation],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
})
// esbuild escapes what is not ASCII in code, not in the comments it keeps: escaped there too, the
// file is ASCII, which node reads and V8 holds and compiles as one byte a character (~1 ms a run)
const out = join(building, 'main.cjs')
const text = await readFile(out, 'utf8')
if (/[^\x00-\x7f]/.test(text)) await writeFile(out, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))
// the shapes of the shipped services, as a run reads them (src/client/shipped.ts)
const { shapeTable } = await import(pathToFileURL(join(root, 'dist', 'client', 'shipped.js')).href)
await writeFile(join(building, 'shapes.json'), JSON.stringify(await shapeTable()))
await rm(outdir, { recursive: true, force: true })
await rename(building, outdir)
if (process.env.BUNDLE_REPORT) {
  const { analyzeMetafile } = await import('esbuild')
  console.log(await analyzeMetafile(result.metafile))
}
