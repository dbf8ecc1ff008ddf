#!/usr/bin/env node
// `npm run dist -- OUT_DIR`: the npm tarball that would be published, into OUT_DIR.
//
// The tarball carries the prebuilt release addon for linux-x64 (glibc), the compiled
// JavaScript layer and its typings, and the Rust sources of the addon. It has no install
// script: installing it runs nothing (npm asks no approval) and needs no Rust on linux-x64.
// Elsewhere the addon is built once from the bundled sources with `npx stan-client-build`
// (scripts/install.js, which needs Rust), and loading the package without an addon says so.
//
// Built in a staging folder, so node/dist (the development build with test hooks) is left
// alone. Needs node/node_modules (npm ci) and cargo; CARGO_TARGET_DIR is honoured.
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const bin = path.join(pkgDir, 'node_modules', '.bin')
const PLATFORM_ADDON = 'stan-client.linux-x64-gnu.node'

function run(cmd, args, opts = {}) {
  process.stderr.write(`dist: $ ${path.basename(cmd)} ${args.join(' ')}\n`)
  execFileSync(cmd, args, { stdio: 'inherit', cwd: pkgDir, ...opts })
}

function main() {
  const out = path.resolve(process.argv[2] || path.join(pkgDir, '..', 'dist'))
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the released tarball carries the linux-x64 addon; this is ${process.platform}-${process.arch}`)
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'stan-client-dist-'))
  try {
    const dist = path.join(stage, 'dist')
    // 1. The release addon (no test hooks), stripped, with its loader and typings.
    run(path.join(bin, 'napi'), [
      'build', '--platform', '--release', '--strip',
      '--manifest-path', path.join(pkgDir, '..', 'bindings', 'node', 'Cargo.toml'),
      '--output-dir', dist, '--js', 'native.js', '--dts', 'native.d.ts', '--no-const-enum',
    ])
    if (!fs.existsSync(path.join(dist, PLATFORM_ADDON))) throw new Error(`${PLATFORM_ADDON} was not built`)
    // 2. The TypeScript layer, against the typings of that addon.
    const tsconfig = path.join(stage, 'tsconfig.dist.json')
    fs.writeFileSync(tsconfig, JSON.stringify({
      extends: path.join(pkgDir, 'tsconfig.json'),
      compilerOptions: {
        rootDir: path.join(pkgDir, 'src'),
        rootDirs: [path.join(pkgDir, 'src'), dist],
        outDir: dist,
        typeRoots: [path.join(pkgDir, 'node_modules', '@types')],
      },
      include: [path.join(pkgDir, 'src', '**', '*.ts')],
    }))
    run(path.join(bin, 'tsc'), ['-p', tsconfig])
    fs.rmSync(tsconfig)
    // 3. The Rust sources (for `npx stan-client-build` elsewhere), the build script, the docs.
    run(process.execPath, [path.join(__dirname, 'prepack.js'), '--sources-only', '--out', path.join(stage, 'rust')])
    fs.mkdirSync(path.join(stage, 'scripts'))
    fs.copyFileSync(path.join(__dirname, 'install.js'), path.join(stage, 'scripts', 'install.js'))
    for (const f of ['README.md', 'tsconfig.json']) fs.copyFileSync(path.join(pkgDir, f), path.join(stage, f))
    fs.cpSync(path.join(pkgDir, 'src'), path.join(stage, 'src'), { recursive: true })
    // 4. The manifest: no lifecycle scripts, a bin for the source build, the files above.
    const released = { ...pkg }
    delete released.scripts
    delete released.devDependencies
    released.bin = { 'stan-client-build': 'scripts/install.js' }
    released.files = ['dist/**/*.js', 'dist/**/*.d.ts', `dist/${PLATFORM_ADDON}`, 'src/**/*.ts', 'scripts/install.js', 'rust/**', 'tsconfig.json', 'README.md']
    // The build tools `npx stan-client-build` needs, installed on demand by install.js.
    released.buildDependencies = Object.fromEntries(
      ['@napi-rs/cli', 'typescript', '@types/node'].map((n) => [n, pkg.devDependencies[n]]),
    )
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(released, null, 2)}\n`)
    // 5. Pack (no scripts to run) into OUT_DIR.
    fs.mkdirSync(out, { recursive: true })
    for (const f of fs.readdirSync(out)) if (/^stan-client-.*\.tgz$/.test(f)) fs.rmSync(path.join(out, f))
    run('npm', ['pack', '--ignore-scripts', '--pack-destination', out], { cwd: stage })
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

try {
  main()
} catch (err) {
  process.stderr.write(`dist: ${err && err.message ? err.message : err}\n`)
  process.exit(1)
}
