import { test } from 'node:test'
import assert from 'node:assert/strict'
import { homedir } from 'node:os'
import { homeDir } from '../../src/client/home.js'

test('homeDir: $HOME when set, else the home os.homedir() finds', () => {
  assert.equal(homeDir({ HOME: '/home/someone' }), '/home/someone')
  assert.equal(homeDir({ HOME: process.env.HOME }), homedir())
  // no HOME (or an empty one): the password database, as os.homedir() reads it
  const saved = process.env.HOME
  try {
    delete process.env.HOME
    assert.equal(homeDir({}), homedir())
    assert.equal(homeDir({ HOME: '' }), homedir())
  } finally {
    process.env.HOME = saved
  }
})
