// A private avahi-daemon (with its own dbus-daemon) inside a host namespace of a test LAN, so
// that tests can check what an independent mDNS implementation makes of our records.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { lines, type Lan, type LanHost } from './netns.js'

export interface Avahi {
  /** runs `avahi-browse ARGS` against this avahi-daemon (argv, no shell) */
  browse (args: string[]): ChildProcess
  close (): Promise<void>
}

/**
 * Starts a private dbus-daemon and avahi-daemon inside a host namespace. A holder process keeps a
 * mount namespace of its own with a tmpfs on /run (so the host's /run/dbus is never touched); the
 * daemons and avahi-browse enter it with nsenter.
 */
export async function startAvahi (lan: Lan, host: LanHost): Promise<Avahi> {
  const dir = mkdtempSync(join(tmpdir(), 'rrt-avahi-'))
  writeFileSync(join(dir, 'dbus.conf'), `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
`)
  writeFileSync(join(dir, 'avahi-daemon.conf'), `[server]
host-name=avahi-${host.ns.slice(-2)}
use-ipv4=yes
use-ipv6=no
allow-interfaces=${host.ifname}
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=yes
publish-hinfo=no
publish-workstation=no
`)
  const holder = lan.spawn(host, ['unshare', '--mount', '--propagation', 'private', 'sleep', 'infinity'], { stdio: 'ignore' })
  const pid = holder.pid
  if (!pid) throw new Error('could not start the mount namespace holder')
  const inside = (argv: string[]): ChildProcess =>
    lan.track(spawn('nsenter', ['-t', String(pid), '-m', '-n', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }))
  const runInside = (argv: string[]): Promise<void> => new Promise((resolve, reject) => {
    const c = inside(argv)
    let err = ''
    c.stderr?.on('data', (d: Buffer) => { err += d.toString() })
    c.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: exit ${code} ${err}`)))
  })
  const cleanup = async (): Promise<void> => {
    holder.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // mount nothing before the holder runs `sleep`, i.e. after unshare made its mount namespace:
    // earlier, nsenter would enter the host's and hide the host's /run
    for (let i = 0; ; i++) {
      let comm = ''
      let ns = ''
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
        ns = readlinkSync(`/proc/${pid}/ns/mnt`)
      } catch {}
      if (comm === 'sleep' && ns && ns !== readlinkSync('/proc/self/ns/mnt')) break
      if (i > 100) throw new Error('the mount namespace holder did not start')
      await sleep(20)
    }
    await runInside(['mount', '-t', 'tmpfs', 'tmpfs', '/run'])
    await runInside(['mkdir', '-p', '/run/dbus', '/run/avahi-daemon'])
    const daemons = [
      inside(['dbus-daemon', '--nofork', '--nopidfile', `--config-file=${join(dir, 'dbus.conf')}`]),
    ]
    for (let i = 0; i < 100; i++) {
      try { await runInside(['test', '-S', '/run/dbus/system_bus_socket']); break } catch { await sleep(50) }
    }
    const avahi = inside(['avahi-daemon', '--no-drop-root', '--no-chroot', '--no-rlimits', '--no-proc-title', '-f', join(dir, 'avahi-daemon.conf')])
    daemons.push(avahi)
    await lines(avahi, (s) => s, 'stderr').wait((s) => /Server startup complete/.test(s), 10000, 'avahi-daemon startup')
    return {
      browse: (args) => inside(['avahi-browse', ...args]),
      async close () {
        for (const d of daemons) d.kill('SIGTERM')
        await sleep(100)
        for (const d of daemons) d.kill('SIGKILL')
        await cleanup()
      },
    }
  } catch (e) {
    await cleanup()
    throw e
  }
}
