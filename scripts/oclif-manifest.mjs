// Writes oclif.manifest.json: the commands with their flags and help, as oclif would otherwise
// work them out on every run by importing every command file (and with them the node, the
// discovery and the printer code): `rrcloud peers` took ~0.4 s before its first request.
// Run after tsc (npm run build); the manifest describes dist/commands.
//
//   node scripts/oclif-manifest.mjs [ROOT]   (default: this package)
import { Plugin } from '@oclif/core'
import { rename, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true })
await plugin.load()
const file = join(root, 'oclif.manifest.json')
// written beside, then swapped in: a command started meanwhile reads the old manifest or the new one
const tmp = `${file}.${process.pid}`
await writeFile(tmp, JSON.stringify(plugin.manifest))
await rename(tmp, file)
