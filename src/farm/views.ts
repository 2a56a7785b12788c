// The farm queue's jobs as a node keeps them and as its API shows them: read by the node, the
// client and the dashboard (no imports: the dashboard's build takes these types alone).

export type CopyStatus = 'queued' | 'starting' | 'printing' | 'complete' | 'failed' | 'cancelled'

export interface Copy {
  n: number
  status: CopyStatus
  /** where it went: the node (name, id, URL) and printer, the claim and the task there */
  node?: string
  nodeId?: string
  url?: string
  printer?: string
  claim?: string
  task?: string
  error?: string
  started?: number
  ended?: number
}

export interface Job {
  id: string
  /** the file's name as given */
  name: string
  /** the G-code, relative to the data folder (removed once every copy has ended) */
  file: string
  size: number
  group?: string
  printer?: string
  ctime: number
  client: string
  copies: Copy[]
}

/** A job as GET /api/v1/queue shows it. */
export interface JobView extends Omit<Job, 'file'> {
  node: string
  position: number
  paused: boolean
  counts: Record<CopyStatus, number>
}
