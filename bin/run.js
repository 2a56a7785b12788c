#!/usr/bin/env node
// Also the *.cloud commands (symlinks to this file, as in the seed): the name it was called by decides.
import { main } from '../dist/client/main.js'

await main(process.argv[1], process.argv.slice(2))
