/** Runs fn with the current directory at dir (povray resolves from there), and goes back. */
export function inDir<T> (dir: string, fn: () => T): T {
  const was = process.cwd()
  process.chdir(dir)
  try {
    return fn()
  } finally {
    process.chdir(was)
  }
}
