#!/usr/bin/env node
// Builds the native addon (Rust, via the napi CLI) and the JavaScript layer. It is the npm
// "install" script of the package in the repository (`npm install ./node`, `npm install
// --install-links ./node`, the tarball of `npm pack`), and `npx stan-client-build` in the
// released tarball (scripts/dist.js), which has a prebuilt linux-x64 addon and no install
// script, on other platforms. Needs Rust (cargo) and Node; the build tools
// (@napi-rs/cli, typescript, @types/node) come from this package's devDependencies when they
// are installed, else they are installed into a temporary folder with npm.
//
// Environment:
//   STAN_CLIENT_BUILD_PROFILE=debug   build the addon in debug mode (default: release)
//   STAN_CLIENT_SKIP_BUILD=1          do nothing (the addon and dist/ are provided otherwise)
//   CARGO_TARGET_DIR                  honoured by cargo (share compiled crates between builds)
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))

function log(msg) {
  process.stderr.write(`stan-client: ${msg}\n`)
}

function run(cmd, args, opts = {}) {
  log(`$ ${cmd} ${args.join(' ')}`)
  execFileSync(cmd, args, { stdio: 'inherit', cwd: pkgDir, ...opts })
}

/** The Rust crate to build: the repository's, or the copy bundled in the npm tarball. */
function manifestPath() {
  const candidates = [
    path.join(pkgDir, '..', 'bindings', 'node', 'Cargo.toml'),
    path.join(pkgDir, 'rust', 'bindings', 'node', 'Cargo.toml'),
  ]
  const found = candidates.find((p) => fs.existsSync(p))
  if (!found) throw new Error(`the Rust sources are missing (looked for ${candidates.join(', ')})`)
  return found
}

/** Build tools: local devDependencies, or a temporary npm prefix holding them. */
function tools() {
  const localBin = path.join(pkgDir, 'node_modules', '.bin')
  const local = {
    napi: path.join(localBin, 'napi'),
    tsc: path.join(localBin, 'tsc'),
    typeRoots: path.join(pkgDir, 'node_modules', '@types'),
  }
  if (fs.existsSync(local.napi) && fs.existsSync(local.tsc) && fs.existsSync(local.typeRoots)) {
    return { ...local, cleanup() {} }
  }
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'stan-client-build-'))
  // In the repository: the devDependencies; in the released tarball: buildDependencies.
  const dev = pkg.devDependencies || pkg.buildDependencies
  const wanted = ['@napi-rs/cli', 'typescript', '@types/node'].map((n) => `${n}@${dev[n]}`)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  run(npm, ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', prefix, ...wanted])
  const bin = path.join(prefix, 'node_modules', '.bin')
  return {
    napi: path.join(bin, 'napi'),
    tsc: path.join(bin, 'tsc'),
    typeRoots: path.join(prefix, 'node_modules', '@types'),
    cleanup() {
      fs.rmSync(prefix, { recursive: true, force: true })
    },
  }
}

function main() {
  if (process.env.STAN_CLIENT_SKIP_BUILD === '1') {
    log('STAN_CLIENT_SKIP_BUILD=1: not building')
    return
  }
  const manifest = manifestPath()
  const bundled = manifest.startsWith(path.join(pkgDir, 'rust'))
  const t = tools()
  try {
    const release = process.env.STAN_CLIENT_BUILD_PROFILE !== 'debug'
    run(t.napi, [
      'build',
      '--platform',
      ...(release ? ['--release', '--strip'] : []),
      '--manifest-path',
      manifest,
      '--output-dir',
      'dist',
      '--js',
      'native.js',
      '--dts',
      'native.d.ts',
      '--no-const-enum',
    ])
    // Always: a dist/ left from an older build of a checkout must not be installed.
    if (fs.existsSync(path.join(pkgDir, 'src', 'index.ts'))) {
      run(t.tsc, ['-p', 'tsconfig.json', '--typeRoots', t.typeRoots])
    }
  } finally {
    t.cleanup()
  }
  // The bundled sources were only needed for this build; their target folder is large.
  if (bundled && !process.env.CARGO_TARGET_DIR) {
    fs.rmSync(path.join(pkgDir, 'rust', 'target'), { recursive: true, force: true })
  }
  log('native addon built')
}

try {
  main()
} catch (err) {
  log(`build failed: ${err && err.message ? err.message : err}`)
  log('building stan-client needs Rust (https://rustup.rs) and Node.js >= 20.17')
  process.exit(1)
}
