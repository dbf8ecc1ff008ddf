/**
 * Loads the native addon with an error that says what to do when this platform has none.
 *
 * The released package carries a prebuilt addon for linux-x64 (glibc); anywhere else the addon
 * is built from the Rust sources the package bundles, once, with `npx stan-client-build`.
 *
 * @internal
 */
import type * as Native from './native'

function load(): typeof Native {
  try {
    return require('./native') as typeof Native
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new Error(
      `stan-client: no native addon for ${process.platform}-${process.arch} could be loaded. ` +
        'Prebuilt addons exist for linux-x64 (glibc); elsewhere build it once from the bundled ' +
        'sources with `npx stan-client-build` (needs Rust: https://rustup.rs). Cause: ' +
        reason,
    )
  }
}

/** The native addon's exports. */
export const addon: typeof Native = load()
