/**
 * Opt-in diagnostics: `localStorage['observerio.debug'] = '1'` (or `?debug` in the URL) makes the
 * dashboard trace its socket and API traffic to the console; otherwise it stays silent.
 */
function enabled(): boolean {
  try {
    return localStorage.getItem('observerio.debug') === '1' || new URLSearchParams(location.search).has('debug');
  } catch {
    return false;
  }
}

const on = enabled();

export function debug(...args: unknown[]): void {
  if (on) console.debug('[observerio]', ...args);
}
