/**
 * Where the signed-in user's session lives: localStorage, so it survives reloads and is shared by
 * tabs (a sign-out in one tab signs the others out through the `storage` event).
 */
export interface Session {
  token: string;
  apiKey: string;
  email: string;
}

const KEY = 'observerio.session';

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Session>;
    if (typeof s.token !== 'string' || typeof s.apiKey !== 'string') return null;
    return { token: s.token, apiKey: s.apiKey, email: typeof s.email === 'string' ? s.email : '' };
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  try {
    if (s) localStorage.setItem(KEY, JSON.stringify(s));
    else localStorage.removeItem(KEY);
  } catch {
    // storage disabled (private mode): the session then lasts for this page only
  }
}

export function onSessionChange(fn: (s: Session | null) => void): () => void {
  const handler = (e: StorageEvent): void => {
    if (e.key === KEY || e.key === null) fn(loadSession());
  };
  addEventListener('storage', handler);
  return () => removeEventListener('storage', handler);
}
