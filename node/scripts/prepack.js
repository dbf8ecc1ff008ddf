#!/usr/bin/env node
// npm "prepack" script: makes the tarball self-contained. It compiles the TypeScript layer
// (dist/) and copies the Rust sources the addon is built from (bindings/node, client-core,
// protocol, the workspace manifest and lock file) into rust/, so that `npm install` of the
// tarball builds the addon without the repository.
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const repo = path.resolve(pkgDir, '..')
const out = path.join(pkgDir, 'rust')
const CRATES = ['bindings/node', 'client-core', 'protocol']

function copyCrate(rel) {
  const from = path.join(repo, rel)
  const to = path.join(out, rel)
  fs.mkdirSync(to, { recursive: true })
  for (const entry of ['Cargo.toml', 'build.rs', 'README.md', 'src']) {
    const src = path.join(from, entry)
    if (fs.existsSync(src)) fs.cpSync(src, path.join(to, entry), { recursive: true })
  }
  // Dev-dependencies (the broker, for the core's tests) are not part of the bundle.
  const manifest = path.join(to, 'Cargo.toml')
  const text = fs.readFileSync(manifest, 'utf8')
  fs.writeFileSync(manifest, text.replace(/\n\[dev-dependencies\]\n(?:(?!\[)[^\n]*\n?)*/g, '\n'))
}

function workspaceManifest() {
  const text = fs.readFileSync(path.join(repo, 'Cargo.toml'), 'utf8')
  const members = `members = [${CRATES.map((c) => JSON.stringify(c)).join(', ')}]`
  return text
    .replace(/^members\s*=\s*\[[^\]]*\]/m, members)
    .replace(/^default-members\s*=\s*\[[^\]]*\]\n?/m, '')
}

function main() {
  if (!fs.existsSync(path.join(repo, 'bindings', 'node', 'Cargo.toml'))) {
    throw new Error('prepack runs inside the stan-rs repository (node/ next to bindings/node)')
  }
  execFileSync(path.join(pkgDir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
    cwd: pkgDir,
    stdio: 'inherit',
  })
  fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  CRATES.forEach(copyCrate)
  fs.writeFileSync(path.join(out, 'Cargo.toml'), workspaceManifest())
  fs.copyFileSync(path.join(repo, 'Cargo.lock'), path.join(out, 'Cargo.lock'))
  process.stderr.write(`stan-client: bundled ${CRATES.join(', ')} into rust/\n`)
}

main()
