// A pipeline sent as a multipart form (POST /api/v1/pipelines, multipart/form-data): the files come
// with the request and the node names them by digest, for a browser page on plain http, which has
// no crypto.subtle to hash them itself. The form becomes the same request the JSON API takes.
import { allowedPreargs, type ServiceDescriptor } from '../executors/services.js'
import { badRequest } from './errors.js'
import type { ParsedBody, UploadedFile } from './uploads.js'
import { MAX_STAGES, type PipelineRequest } from '../pipeline/pipeline.js'

const STAGE_FIELD = /^stage(\d{1,2})(?:\.(in|config|file|prearg|printer))?$/
const FILE_KINDS = new Set(['in', 'config', 'file'])
const TOP_FIELDS = new Set(['group', 'printer', 'copies', 'cache', 'notifier', 'format', 'token'])
const FIELDS_HELP = 'a pipeline form has stageN (the service of stage N, from 1), its files stageN.in (the model), ' +
  'stageN.config (a config, passed with stageN.prearg or the service\'s first, e.g. --load=) and stageN.file (files of the project, by path), ' +
  'stageN.printer, and group or printer with copies (the farm queue for the last output), cache, notifier'

interface FormStage { service?: string, in: UploadedFile[], config: UploadedFile[], file: UploadedFile[], prearg?: string, printer?: string }

/** 400 naming the field */
const bad = (field: string, why: string) => badRequest(`${field}: ${why}`, { field })
const baseName = (name: string) => name.split(/[\\/]/).pop() || 'input'
const extOf = (fileOut: string) => fileOut.replace(/^\$id/, '')

/**
 * The JSON request (as parsePipeline takes it) that a pipeline form describes. Every stage after
 * the first takes the previous stage's output as its main input, named after the first model
 * (part.scad → part.stl). Throws 400 naming the field that is wrong.
 */
export function pipelineFromForm (body: ParsedBody, services: ServiceDescriptor[]): PipelineRequest {
  const stages = new Map<number, FormStage>()
  const stage = (field: string, n: string) => {
    const i = Number(n)
    if (i < 1 || i > MAX_STAGES) throw bad(field, `stages are numbered from 1 to ${MAX_STAGES}`)
    let s = stages.get(i)
    if (!s) stages.set(i, s = { in: [], config: [], file: [] })
    return s
  }
  for (const [k, v] of Object.entries(body.fields)) {
    if (TOP_FIELDS.has(k)) continue
    const m = STAGE_FIELD.exec(k)
    if (!m) throw bad(k, `unknown field: ${FIELDS_HELP}`)
    const kind = m[2] ?? 'service'
    if (FILE_KINDS.has(kind)) throw bad(k, `send a file here (curl -F ${k}=@FILE), not text`)
    const s = stage(k, m[1])
    const value = v.trim()
    if (kind === 'service') s.service = value
    else if (value) s[kind as 'prearg' | 'printer'] = value
  }
  for (const f of body.files) {
    const m = STAGE_FIELD.exec(f.field)
    if (!m || !FILE_KINDS.has(m[2] ?? '')) throw bad(f.field, `not a file field: ${FIELDS_HELP}`)
    stage(f.field, m[1])[m[2] as 'in' | 'config' | 'file'].push(f)
  }
  const numbers = [...stages.keys()].sort((a, b) => a - b)
  if (!numbers.length) throw bad('stage1', 'no stage: give stage1=SERVICE (openscad) and its model stage1.in, then stage2=SERVICE, ...')
  numbers.forEach((n, i) => { if (n !== i + 1) throw bad(`stage${i + 1}`, 'missing: stages are numbered from 1, without gaps') })

  const known = services.map((d) => d.name)
  const descriptors = numbers.map((n) => {
    const s = stages.get(n)!
    if (!s.service) throw bad(`stage${n}`, 'missing: the service of this stage (openscad, slic3r, ...)')
    const d = services.find((x) => x.name === s.service)
    if (!d) throw bad(`stage${n}`, `unknown service ${s.service}; the services are ${known.join(', ')}`)
    return d
  })
  const first = stages.get(1)!
  if (!first.in.length) throw bad('stage1.in', `the first stage needs its input, the model: curl -F stage1.in=@part.${descriptors[0].name === 'openscad' ? 'scad' : 'stl'}`)
  const model = first.in[0].originalName
  const stem = baseName(model).replace(/\.[^.]*$/, '') || 'input'

  const out: PipelineRequest['stages'] = numbers.map((n, i) => {
    const s = stages.get(n)!
    const d = descriptors[i]
    const preargs = allowedPreargs(d)
    if (s.prearg !== undefined && !preargs.includes(s.prearg)) {
      throw bad(`stage${n}.prearg`, preargs.length ? `${d.name} takes ${preargs.join(' or ')}` : `${d.name} takes no config`)
    }
    if (s.prearg !== undefined && !s.config.length) throw bad(`stage${n}.prearg`, `goes with a file stage${n}.config`)
    const prearg = s.prearg ?? preargs[0]
    if (s.config.length && !prearg) throw bad(`stage${n}.config`, `${d.name} takes no config`)
    if (s.printer !== undefined && d.kind !== 'printer') throw bad(`stage${n}.printer`, `${d.name} does not print; printrun does`)
    if (i > 0 && descriptors[i - 1].kind === 'printer') throw bad(`stage${n}`, `the stage before it (${descriptors[i - 1].name}) prints and has no output`)
    const own = (f: UploadedFile, path: string) => ({ sha256: f.sha256, path, size: f.size })
    const configs = s.config.map((f) => ({ ...own(f, baseName(f.originalName)), prearg }))
    const inputs = s.in.map((f) => own(f, baseName(f.originalName)))
    const files = s.file.map((f) => own(f, f.originalName))
    if (i === 0) return { service: d.name, inputs: [...configs, ...inputs], files, ...(s.printer ? { printer: s.printer } : {}) }
    // the previous output, named after the model, under a name none of the stage's own files has
    const taken = new Set([...configs, ...inputs, ...files].map((f) => f.path))
    let name = stem + extOf(descriptors[i - 1].fileOut)
    while ([...taken].some((x) => x === name || x.startsWith(name + '/'))) name = `in-${name}`
    return { service: d.name, inputs: [...configs, { from: 'previous' as const, path: name }, ...inputs], files, ...(s.printer ? { printer: s.printer } : {}) }
  })

  const f = body.fields
  const group = f.group?.trim() || undefined
  const printer = f.printer?.trim() || undefined
  const copiesText = f.copies?.trim() || undefined
  let queue: PipelineRequest['queue']
  if (group !== undefined && printer !== undefined) throw bad('printer', 'give group or printer, not both')
  if (group !== undefined || printer !== undefined) {
    const field = group !== undefined ? 'group' : 'printer'
    const copies = copiesText === undefined ? 1 : Number(copiesText)
    if (!/^\d+$/.test(copiesText ?? '1') || copies < 1 || copies > 1000) throw bad('copies', 'a whole number from 1 to 1000')
    const last = descriptors[descriptors.length - 1]
    if (last.kind === 'printer') throw bad(field, `the last stage (${last.name}) prints: queue the output of a slicer instead`)
    if (!/\.(gcode|gco|g)$/i.test(extOf(last.fileOut))) throw bad(field, `the last stage (${last.name}) makes ${extOf(last.fileOut) || 'no file'}, not G-code`)
    queue = { ...(group !== undefined ? { group } : { printer: printer! }), copies }
  } else if (copiesText !== undefined && copiesText !== '1') {
    throw bad('copies', 'goes with group or printer (where the copies print)')
  }
  const cache = f.cache?.trim().toLowerCase()
  return {
    stages: out,
    ...(queue ? { queue } : {}),
    ...(cache === 'false' || cache === '0' || cache === 'no' ? { cache: false } : {}),
    ...(f.notifier ? { notifier: f.notifier } : {}),
  }
}
