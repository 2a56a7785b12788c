import { Crawl } from './crawl.js'

/*
 * slic3r reads only what its command line names: the models (STL, OBJ, and 3MF/AMF, which carry
 * everything they need inside) and the configs given with --load=. Those are the main inputs, so
 * there is nothing to scan; a config names no other file the slicer reads.
 */

/** The files slic3r reads beyond its main inputs: none. */
export const scanSlic3r = (): Crawl => new Crawl()
