#!/usr/bin/env node
// Also the *.cloud commands (symlinks to this file, as in the seed): the name it was called by decides.
// Loads the client as bundled by `npm run build` (scripts/bundle-client.mjs): a short run starts faster.
import { main } from '../dist/bundle/main.js'

await main(process.argv[1], process.argv.slice(2))
