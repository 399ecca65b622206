/**
 * The shell: top bar, hash routes (`#/` dashboard, `#/admin`) and the user's session lifecycle. The
 * Admin tab is for the daemon's operator: it shows only once an admin token was accepted in this tab;
 * anyone else reaches the token prompt through `#/admin` or the small link at the foot of the page.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { loadAdminToken, onAdminTokenChange } from './admin/admin-api';
import { AdminView } from './admin/admin-view';
import { Api } from './api';
import { AuthView, Logo } from './components/auth-view';
import { ConnectionBadge } from './components/connection-badge';
import { DashboardView } from './components/dashboard-view';
import { Toasts } from './components/toasts';
import { useHashRoute } from './hooks';
import { LiveSocket, socketUrl } from './live-socket';
import { loadSession, onSessionChange, type Session, saveSession } from './session';

/** After a refused socket, ask the API whether the token still works at most this often. */
const TOKEN_CHECK_MS = 5_000;

export function App() {
  const route = useHashRoute();
  const [session, setSession] = useState<Session | null>(loadSession);
  const [notice, setNotice] = useState<string | null>(null);
  const [operator, setOperator] = useState(() => loadAdminToken() !== null);

  useEffect(() => onSessionChange(setSession), []);
  useEffect(() => onAdminTokenChange(setOperator), []);

  const live = useMemo(() => {
    if (!session) return null;
    const expire = (): void => {
      saveSession(null);
      setSession(null);
      setNotice('Your session has expired. Please sign in again.');
    };
    const api = new Api(session.token, expire);
    let lastCheck = 0;
    const socket = new LiveSocket(socketUrl(session.token), () => {
      if (Date.now() - lastCheck < TOKEN_CHECK_MS) return;
      lastCheck = Date.now();
      api.devices().catch(() => {});
    });
    return { api, socket };
  }, [session?.token]);

  const signedIn = (s: Session): void => {
    saveSession(s);
    setNotice(null);
    setSession(s);
  };

  const signOut = async (): Promise<void> => {
    live?.socket.stop();
    await live?.api.signOut();
    saveSession(null);
    setNotice('Signed out.');
    setSession(null);
  };

  return (
    <div class="app">
      <header class="topbar">
        <a class="brand" href="#/">
          <Logo size={22} />
          <span>observerio</span>
        </a>
        <nav class="nav">
          <a href="#/" class={route === 'dashboard' ? 'active' : ''} data-testid="nav-dashboard">
            Dashboard
          </a>
          {operator && (
            <a href="#/admin" class={route === 'admin' ? 'active' : ''} data-testid="nav-admin">
              Admin
            </a>
          )}
        </nav>
        <div class="topbar-right">
          {route === 'dashboard' && live && <ConnectionBadge socket={live.socket} />}
          {session && (
            <>
              <span class="user muted" data-testid="user-email" title="Signed in as">
                {session.email}
              </span>
              <button type="button" class="btn small" data-testid="signout" onClick={signOut}>
                Sign out
              </button>
            </>
          )}
        </div>
      </header>
      {/* The dashboard stays mounted behind the admin page so its socket, tail and chart keep going. */}
      {session && live ? (
        <div class="route" hidden={route !== 'dashboard'}>
          <DashboardView api={live.api} socket={live.socket} apiKey={session.apiKey} />
        </div>
      ) : (
        route === 'dashboard' && <AuthView notice={notice} onSignedIn={signedIn} />
      )}
      {route === 'admin' && <AdminView />}
      {route === 'dashboard' && !operator && (
        <footer class="footer muted small">
          Running this daemon?{' '}
          <a href="#/admin" data-testid="operator-link">
            Operator view
          </a>
        </footer>
      )}
      <Toasts />
    </div>
  );
}
