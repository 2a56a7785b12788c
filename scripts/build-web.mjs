// Builds the dashboard (web/src/main.ts, web/style.css) into dist/web: one script and one style
// sheet named after their content's hash, each beside its gzip and brotli forms, and manifest.json
// naming them (src/node/dashboard.ts serves them). Nothing is loaded from elsewhere at run time.
//
//   node scripts/build-web.mjs [ROOT]   (default: this package)
import { build } from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
const outdir = join(root, 'dist', 'web')
// built beside, then swapped in
const building = join(root, 'dist', `.web-${process.pid}`)

const common = { absWorkingDir: root, bundle: true, minify: true, write: false, logLevel: 'warning', legalComments: 'none', target: ['chrome100', 'firefox100', 'safari15'] }
const [js, css] = await Promise.all([
  build({ ...common, entryPoints: [join(root, 'web', 'src', 'main.ts')], format: 'esm', outfile: 'app.js' }),
  build({ ...common, entryPoints: [join(root, 'web', 'style.css')], outfile: 'app.css' }),
])

await rm(building, { recursive: true, force: true })
await mkdir(building, { recursive: true })
const manifest = {}
const sizes = []
for (const [kind, result] of [['js', js], ['css', css]]) {
  const body = Buffer.from(result.outputFiles[0].contents)
  const name = `app-${createHash('sha256').update(body).digest('hex').slice(0, 12)}.${kind}`
  const gz = gzipSync(body, { level: 9 })
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } })
  await writeFile(join(building, name), body)
  await writeFile(join(building, name + '.gz'), gz)
  await writeFile(join(building, name + '.br'), br)
  manifest[kind] = name
  sizes.push(`${name}: ${body.length} B, gzip ${gz.length} B, br ${br.length} B`)
}
await writeFile(join(building, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
await rm(outdir, { recursive: true, force: true })
await rename(building, outdir)
if (process.env.WEB_REPORT) console.log(sizes.join('\n'))
