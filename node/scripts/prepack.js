#!/usr/bin/env node
// npm "prepack" and "prepare" script: makes the packed package self-contained. It copies the
// Rust sources the addon is built from (bindings/node, client-core, protocol, the workspace
// manifest and lock file) into rust/, so that installing the package without the repository
// builds the addon from the current sources, and (prepack, or `--tsc`) compiles the
// TypeScript layer (dist/).
//
//   prepack (`npm pack`):                         sources and dist/
//   prepare (`npm install --install-links ./node`, which packs the folder): sources only;
//     outside the repository (an installed tarball) it does nothing.
//   `--out DIR`: write the sources to DIR instead of rust/ (scripts/dist.js).
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const repo = path.resolve(pkgDir, '..')
const outArg = process.argv.indexOf('--out')
const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(pkgDir, 'rust')
const CRATES = ['bindings/node', 'client-core', 'protocol']

function copyCrate(rel) {
  const from = path.join(repo, rel)
  const to = path.join(out, rel)
  fs.mkdirSync(to, { recursive: true })
  for (const entry of ['Cargo.toml', 'build.rs', 'README.md', 'src']) {
    const src = path.join(from, entry)
    // Timestamps kept: cargo then sees unchanged sources as unchanged (shared target dirs).
    if (fs.existsSync(src)) fs.cpSync(src, path.join(to, entry), { recursive: true, preserveTimestamps: true })
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
  const sourcesOnly = process.argv.includes('--sources-only')
  if (!fs.existsSync(path.join(repo, 'bindings', 'node', 'Cargo.toml'))) {
    if (sourcesOnly) return // an installed copy: its rust/ is already the bundle
    throw new Error('prepack runs inside the stan-rs repository (node/ next to bindings/node)')
  }
  if (!sourcesOnly) {
    execFileSync(path.join(pkgDir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
      cwd: pkgDir,
      stdio: 'inherit',
    })
  }
  fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  CRATES.forEach(copyCrate)
  fs.writeFileSync(path.join(out, 'Cargo.toml'), workspaceManifest())
  fs.copyFileSync(path.join(repo, 'Cargo.lock'), path.join(out, 'Cargo.lock'))
  process.stderr.write(`stan-client: bundled ${CRATES.join(', ')} into rust/\n`)
}

main()
