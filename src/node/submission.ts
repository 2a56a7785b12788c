import { allowedPreargs, type ResolvedService } from '../executors/services.js'
import { badRequest } from './errors.js'
import type { ParsedBody } from './uploads.js'
import type { IncomingFile, IncomingInput, Submission } from './tasks.js'
import { checkTree, treeTaskSchema, zodProblem } from './tree.js'

export interface SubmissionDeps {
  /** an offered service by name; throws a 400 that lists those offered */
  service (name: string): ResolvedService
  /** the names of the services offered */
  offered (): string[]
  /** why a notifier URL is refused at submit time, if it is */
  notifierRefusal?: (url: string) => string | undefined
}

const EXT = /^[a-z0-9]{1,8}$/i

/** A task as a client sent it, as the runner takes it: the seed's form fields, or files named by digest. */
export function createSubmissionReader (deps: SubmissionDeps) {
  /** The inputs' count, in the service's range. */
  function checkCount (s: ResolvedService, n: number) {
    if (n === 0) throw badRequest(`no input: send fileIn0 as a file upload or as content for ${s.name}`)
    if (n < s.minInputs || n > s.maxInputs) {
      throw badRequest(`${s.name} takes ${s.minInputs === s.maxInputs ? s.minInputs : `${s.minInputs} to ${s.maxInputs}`} input(s), got ${n}`)
    }
  }
  function checkPrearg (s: ResolvedService, field: string, v: string) {
    const allowed = allowedPreargs(s)
    if (!allowed.includes(v)) {
      throw badRequest(`${field} "${v}" is not allowed for ${s.name}; ${allowed.length ? `allowed: ${allowed.join(' ')}` : 'it takes no prearguments'}`)
    }
  }
  function notifierOf (v: string | undefined) {
    const notifier = v || undefined
    if (notifier && !/^https?:\/\/\S+$/i.test(notifier)) throw badRequest('notifier must be an http:// or https:// URL')
    const refused = notifier && deps.notifierRefusal?.(notifier)
    if (refused) throw badRequest(`notifier refused: ${refused}`)
    return notifier
  }
  /** the paths a client gave, checked together (400 naming the first bad one) */
  const checkNames = (inputs: IncomingInput[], files: IncomingFile[]) =>
    checkTree([...inputs.flatMap((i) => i.name === undefined ? [] : [i.name]), ...files.map((f) => f.name)])

  /** A form (`fileInN`, `preargN`, `pathN`, `file` parts, `cache`), or a JSON task by digest. */
  function of (body: ParsedBody, client: string): Submission {
    if (body.json) return tree(body.json, client)
    const { fields, files } = body
    const name = fields.service
    if (!name) throw badRequest('no service given: send service=NAME', { services: deps.offered() })
    const s = deps.service(name)
    for (const k of [...Object.keys(fields), ...files.map((f) => f.field)]) {
      if (!/^(service|format|notifier|token|printer|claim|cache|file|fileIn\d{1,3}|prearg\d{1,3}|path\d{1,3})$/.test(k)) throw badRequest(`unknown field ${k}`)
    }
    if ('file' in fields) {
      throw badRequest('file is for uploads named by their path in the task folder (curl -F "file=@x.scad;filename=lib/x.scad"), not a text field')
    }
    const byIndex = new Map<number, IncomingInput>()
    const extra: IncomingFile[] = []
    for (const f of files) {
      if (f.field === 'file') {
        // its file name is its path in the task folder (sent as is: multer keeps the path)
        extra.push({ name: f.originalName, tmpPath: f.path, sha256: f.sha256, size: f.size })
        continue
      }
      const m = /^fileIn(\d+)$/.exec(f.field)
      if (!m) throw badRequest(`unexpected file field ${f.field}: inputs are fileIn0, fileIn1, ...`)
      const base = f.originalName.split(/[\\/]/).pop()!
      if (base === '' || base === '.' || base === '..') {
        throw badRequest(`${f.field} is an upload without a file name (${JSON.stringify(f.originalName)}): name the file (its extension tells the tool what it is), or send the content as a plain field`)
      }
      const ext = base.includes('.') ? base.split('.').pop()! : ''
      byIndex.set(Number(m[1]), { tmpPath: f.path, sha256: f.sha256, size: f.size, ext: EXT.test(ext) ? ext.toLowerCase() : s.fileIn })
    }
    for (const [k, v] of Object.entries(fields)) {
      const m = /^fileIn(\d+)$/.exec(k)
      // an empty field is no input (a browser sends one for a file input left empty)
      if (m && v !== '' && !byIndex.has(Number(m[1]))) byIndex.set(Number(m[1]), { content: v, ext: s.fileIn })
    }
    for (const [k, v] of Object.entries(fields)) {
      const m = /^(prearg|path)(\d+)$/.exec(k)
      if (!m || v === '') continue
      const input = byIndex.get(Number(m[2]))
      if (!input) throw badRequest(`${k} has no fileIn${m[2]} to go with`)
      if (m[1] === 'path') {
        input.name = v
      } else {
        checkPrearg(s, k, v)
        input.prearg = v
      }
    }
    const inputs = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v)
    checkCount(s, inputs.length)
    checkNames(inputs, extra)
    const cache = fields.cache ?? ''
    if (!['', 'yes', 'no'].includes(cache)) throw badRequest(`cache=${cache}: give cache=no to run the tool even when its result is known here`)
    return {
      service: s.name, inputs, files: extra, client,
      notifier: notifierOf(fields.notifier), printer: fields.printer || undefined, cache: cache !== 'no',
      ...(fields.claim ? { claim: fields.claim } : {}),
    }
  }

  /** A task whose files are named by digest (JSON `inputs`, `files`), with the sizes the client gave. */
  function tree (json: unknown, client: string): Submission & { sizes: Map<string, number> } {
    const parsed = treeTaskSchema.safeParse(json)
    if (!parsed.success) throw badRequest(zodProblem(parsed.error))
    const b = parsed.data
    const s = deps.service(b.service)
    checkCount(s, b.inputs.length)
    const inputs: IncomingInput[] = b.inputs.map((i, n) => {
      if (i.prearg) checkPrearg(s, `inputs.${n}.prearg`, i.prearg)
      return { sha256: i.sha256, ext: s.fileIn, ...(i.path !== undefined ? { name: i.path } : {}), ...(i.prearg ? { prearg: i.prearg } : {}) }
    })
    const files: IncomingFile[] = b.files.map((f) => ({ name: f.path, sha256: f.sha256 }))
    checkNames(inputs, files)
    const sizes = new Map([...b.inputs, ...b.files].flatMap((x) => x.size === undefined ? [] : [[x.sha256, x.size] as const]))
    return {
      service: s.name, inputs, files, client,
      notifier: notifierOf(b.notifier), printer: b.printer || undefined, cache: b.cache, sizes,
    }
  }

  return { of, tree }
}
