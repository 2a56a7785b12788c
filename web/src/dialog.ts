// One modal dialog for confirmations and the token prompt (a <dialog>: focus stays inside, Escape cancels).
import { byId, setText, show } from './dom.js'

let pending: Promise<unknown> = Promise.resolve()

/** Resolves with the input's value (or 'ok') when confirmed, undefined when cancelled. */
export function ask (text: string, o: { ok: string, input?: string, danger?: boolean }): Promise<string | undefined> {
  const run = () => new Promise<string | undefined>((resolve) => {
    const dialog = byId<HTMLDialogElement>('ask')
    const input = byId<HTMLInputElement>('ask-input')
    const ok = byId<HTMLButtonElement>('ask-ok')
    setText(byId('ask-text'), text)
    setText(ok, o.ok)
    ok.classList.toggle('danger', Boolean(o.danger))
    show(byId('ask-field'), Boolean(o.input))
    setText(byId('ask-label'), o.input ?? '')
    input.value = ''
    dialog.returnValue = ''
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' ? (o.input ? input.value.trim() || undefined : 'ok') : undefined)
    }, { once: true })
    dialog.showModal()
    // a dangerous action is not confirmed by a stray Enter
    ;(o.input ? input : o.danger ? byId('ask-cancel') : ok).focus()
  })
  const next = pending.then(run, run)
  pending = next
  return next
}
