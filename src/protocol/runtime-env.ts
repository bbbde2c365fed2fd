/**
 * Environment variables that the runtime inside the executable (Bun, scripts/bun-compile.mjs)
 * reads as it starts, before any of the plugin's code runs, and that change how it runs: the
 * JavaScriptCore engine's options (BUN_JSC_*, JSC_*), garbage collection, feature flags, an IPC
 * channel (NODE_CHANNEL_FD), transpiler caches... The plugin runs in the postgres server's
 * environment, where such a variable must not change it silently; the executable refuses to start
 * instead, naming the variable. (The variables that would run code or a debugger, BUN_OPTIONS,
 * BUN_BE_BUN and BUN_INSPECT*, never reach the runtime: the build renames them inside it, so they
 * are ignored like any other variable. BUN_INSTALL* belong to Bun's installer, not its runtime.)
 */
const IGNORED = new Set(['BUN_OPTIONS', 'BUN_BE_BUN', 'BUN_INSPECT', 'BUN_INSPECT_CONNECT_TO', 'BUN_INSPECT_PRELOAD']);

function readByRuntime(name: string): boolean {
  if (IGNORED.has(name) || name === 'BUN_INSTALL' || name.startsWith('BUN_INSTALL_')) return false;
  return name.startsWith('BUN_') || name.startsWith('JSC_') || name.startsWith('__BUN') || name === 'NODE_CHANNEL_FD';
}

/**
 * The message to refuse to start with, or undefined when the environment holds none of them.
 * `ipcChannel`: the runtime opened an IPC channel (it takes NODE_CHANNEL_FD out of the environment
 * as it does).
 */
export function runtimeVariablesRefusal(env: NodeJS.ProcessEnv, ipcChannel: boolean): string | undefined {
  const found = Object.keys(env).filter(readByRuntime);
  if (ipcChannel && !found.includes('NODE_CHANNEL_FD')) found.push('NODE_CHANNEL_FD');
  found.sort();
  if (found.length === 0) return undefined;
  return (
    `refusing to start: ${found.join(', ')} ${found.length === 1 ? 'is' : 'are'} set, and the runtime inside ` +
    `gpbackup_s3_plugin would read ${found.length === 1 ? 'it' : 'them'}; unset ${found.length === 1 ? 'it' : 'them'} ` +
    `in the environment gpbackup and gprestore run in`
  );
}
