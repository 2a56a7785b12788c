// The dashboard's HTML as the node sends it: the page's frame with what the node knows now (this
// node, its printers, its newest tasks, the submit form), readable and usable without its script;
// the script (web/src) then keeps it live.

export interface PageData {
  node: {
    id: string, name: string, version: string, services: string[], cpuLoad: number, cores: number,
    slots: number, free: number, queue: number, tokenRequired: boolean,
  }
  /** `state` is the serial link's, `farmState` the farm's (idle, printing, ..., finished) */
  printers: Array<{ name: string, state: string, farmState?: string, groups?: string[], temperatures?: string }>
  /** the newest first */
  tasks: Array<Record<string, unknown>>
  /** tasks on the node in all */
  total: number
  /** the pipelines this node drives, newest first, as GET /api/v1/pipelines/:id shows them */
  pipelines: Array<Record<string, unknown>>
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const time = (sec: unknown) => {
  if (typeof sec !== 'number') return ''
  const d = new Date(sec * 1000)
  return `<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>`
}

function taskRow (t: Record<string, unknown>, node: string): string {
  const id = esc(t.id)
  const out = t.status === 'complete' && t.out ? `<a href="/${esc(t.out)}" download>output</a>` : ''
  return `<tr data-key="self/${id}"><td data-label="Task"><a href="/?service=info&amp;id=${id}">${id}</a></td>` +
    `<td data-label="Service">${esc(t.service)}</td><td data-label="Node">${esc(node)}</td>` +
    `<td data-label="State"><span class="state s-${esc(t.status)}">${esc(t.status)}</span></td>` +
    `<td data-label="Progress">${t.percent !== undefined ? `${esc(t.percent)}%` : esc(t.progress ?? '')}</td>` +
    `<td data-label="Created">${time(t.ctime)}</td><td data-label="Ended">${time(t.etime)}</td>` +
    `<td data-label="Files">${out} <a href="/tasks/log/${id}">log</a></td><td></td></tr>`
}

type StageView = { n: number, service: string, state: string, node?: string, percent?: number, out?: string }

function pipelineRow (p: Record<string, unknown>): string {
  const id = esc(p.id)
  const stages = (p.stages ?? []) as StageView[]
  const last = stages[stages.length - 1]
  const out = p.status === 'complete' && last?.out ? `<a href="/api/v1/pipelines/${id}/stages/${last.n}/output" download>${esc(last.out)}</a>` : ''
  const list = stages.map((s) => `<li>${esc(s.service)}${s.node ? ` <small>on ${esc(s.node)}</small>` : ''} <span class="state s-${esc(s.state)}">${esc(s.state)}</span>` +
    `${s.percent !== undefined && s.state === 'busy' ? ` ${esc(s.percent)}%` : ''}</li>`).join('')
  return `<tr data-key="${id}"><td data-label="Pipeline"><a href="/api/v1/pipelines/${id}">${id}</a></td>` +
    `<td data-label="Stages"><ol class="stages">${list}</ol></td>` +
    `<td data-label="State"><span class="state s-${esc(p.status)}">${esc(p.status)}</span></td>` +
    `<td data-label="Created">${time(p.ctime)}</td><td data-label="Ended">${time(p.etime)}</td><td data-label="Output">${out}</td><td></td></tr>`
}

/** The page; `assets` are the paths of the built script and style sheet. */
export function renderPage (d: PageData, assets: { js: string, css: string }): string {
  const n = d.node
  const load = n.cores ? Math.round(n.cpuLoad / n.cores * 100) : 0
  const printers = d.printers.map((p) => {
    const state = p.farmState ?? p.state
    const groups = p.groups?.length ? `<p class="groups"><span class="vh">Groups: </span>${p.groups.map((g) => `<span class="group">${esc(g)}</span>`).join('')}</p>` : ''
    return `<article class="printer" data-key="self/${esc(p.name)}"><h3>${esc(p.name)} <small>on ${esc(n.name)}</small></h3>${groups}` +
      `<p><span class="state p-${esc(state)}">${esc(state)}</span>${state === 'finished' ? ' the bed holds a print' : ''} ${esc(p.temperatures ?? '')}</p></article>`
  }).join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,">
<title>rrcloud: ${esc(n.name)}</title>
<link rel="stylesheet" href="${esc(assets.css)}"><script type="module" src="${esc(assets.js)}"></script>
</head><body data-node="${esc(n.id)}" data-name="${esc(n.name)}">
<a class="skip" href="#main">Skip to content</a>
<header><h1>rrcloud <span class="sub">${esc(n.name)}</span></h1>
<nav aria-label="Sections"><a href="#lan">LAN</a> <a href="#printers">Printers</a> <a href="#queue" id="queue-link" hidden>Farm queue</a> <a href="#tasks">Tasks</a> <a href="#submit">Submit</a></nav>
<p id="live" class="live" role="status">${n.tokenRequired ? 'This node needs a token to change anything.' : ''}</p></header>
<main id="main">
<section id="lan" aria-labelledby="lan-h"><h2 id="lan-h">LAN</h2>
<table><caption class="vh">Nodes on the LAN</caption><thead><tr><th scope="col">Node</th><th scope="col">Host</th><th scope="col">Services</th><th scope="col">Load</th><th scope="col">Free / slots</th><th scope="col">Queue</th><th scope="col">Version</th></tr></thead>
<tbody id="lan-rows"><tr data-key="${esc(n.id)}"><th scope="row" data-label="Node">${esc(n.name)}${n.tokenRequired ? ' <span class="lock">token</span>' : ''} <small>(this node)</small></th>` +
  `<td data-label="Host"></td><td data-label="Services">${esc(n.services.join(', '))}</td><td data-label="Load">${load}%</td>` +
  `<td data-label="Free / slots">${n.free} / ${n.slots}</td><td data-label="Queue">${n.queue}</td><td data-label="Version">${esc(n.version)}</td></tr></tbody></table>
<p id="lan-note" class="note"></p></section>
<section id="printers" aria-labelledby="printers-h"><h2 id="printers-h">Printers</h2>
<div id="printer-cards" class="cards">${printers || '<p class="note">No printer on this node.</p>'}</div></section>
<section id="queue" aria-labelledby="queue-h" hidden><h2 id="queue-h">Farm queue</h2>
<p class="tools"><button type="button" id="queue-pause-all" hidden>Pause the whole queue</button> <button type="button" id="queue-resume-all" hidden>Resume the whole queue</button></p>
<div id="queue-list"></div></section>
<section id="tasks" aria-labelledby="tasks-h"><h2 id="tasks-h">Tasks</h2>
<p class="tools"><button type="button" id="lan-tasks" aria-pressed="false" hidden>Show the LAN's tasks</button> <a href="/?service=info" id="all-tasks">This node's tasks as a table (${d.total})</a></p>
<div id="pipelines"${d.pipelines.length ? '' : ' hidden'}><h3 id="pipelines-h">Pipelines</h3>
<table aria-labelledby="pipelines-h"><thead><tr><th scope="col">Pipeline</th><th scope="col">Stages</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Ended</th><th scope="col">Output</th><th scope="col"><span class="vh">Actions</span></th></tr></thead>
<tbody id="pipeline-rows">${d.pipelines.map(pipelineRow).join('\n')}</tbody></table><p id="pipelines-more"></p></div>
<h3 class="vh" id="task-list-h">Task list</h3>
<table><caption class="vh">Tasks, newest first</caption><thead><tr><th scope="col">Task</th><th scope="col">Service</th><th scope="col">Node</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Created</th><th scope="col">Ended</th><th scope="col">Files</th><th scope="col"><span class="vh">Actions</span></th></tr></thead>
<tbody id="task-rows">${d.tasks.map((t) => taskRow(t, n.name)).join('\n')}</tbody></table>
<p id="tasks-more"></p>
<section id="log" class="log" aria-labelledby="log-h" hidden><h3 id="log-h">Log</h3><p class="tools"><button type="button" id="log-close">Close the log</button></p><pre id="log-text" tabindex="0"></pre></section>
</section>
<section id="submit" aria-labelledby="submit-h"><h2 id="submit-h">Submit</h2>
<form id="submit-form" method="post" action="/" enctype="multipart/form-data">
<div class="fields"><label class="js" hidden>Node <select id="submit-node"></select></label>
<label>Service <select name="service" id="submit-service">${n.services.map((s) => `<option>${esc(s)}</option>`).join('')}</select></label>
<label id="printer-field" hidden>Printer <select name="printer" id="submit-printer"></select></label></div>
<div id="drop" class="drop"><p class="js" hidden>Drop files or a folder here: a model with the files it uses, several STLs, a slicer config.</p>
<label>Files <input type="file" name="fileIn0" id="files-input" multiple></label>
<label class="js" hidden>A folder <input type="file" id="folder-input" webkitdirectory></label></div>
<ul id="file-list" class="files" aria-label="Files to send"></ul>
<div id="farm-fields" class="fields" hidden><label>Print on <select id="submit-farm"></select></label>
<label id="copies-field" hidden>Copies <input type="number" id="submit-copies" min="1" max="1000" step="1" value="1"></label></div>
<p><input type="submit" value="Submit"> <progress id="upload-progress" max="1" value="0" hidden>upload</progress></p>
<p id="submit-status" role="status" aria-live="polite"></p>
</form></section>
</main>
<dialog id="ask" aria-labelledby="ask-text"><form method="dialog"><p id="ask-text"></p>
<p id="ask-field" hidden><label><span id="ask-label">Token</span> <input id="ask-input" type="password" autocomplete="off"></label></p>
<p class="tools"><button value="cancel" type="submit" id="ask-cancel">Cancel</button> <button value="ok" type="submit" id="ask-ok" class="danger">OK</button></p></form></dialog>
</body></html>
`
}
