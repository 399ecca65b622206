/** Sign in and sign up. A new account is signed in right away, so the next screen is the API key. */
import { useState } from 'preact/hooks';
import { ApiError, signIn, signUp } from '../api';
import type { Session } from '../session';

type Mode = 'signin' | 'signup';

function describe(err: unknown, mode: Mode): { text: string; suggest?: Mode } {
  if (!(err instanceof ApiError)) return { text: 'Something went wrong. Please try again.' };
  if (err.status === 0) return { text: err.message };
  if (err.status === 429) {
    const wait = err.retryAfter ? ` Try again in ${Math.ceil(err.retryAfter)} s.` : ' Wait a minute, then try again.';
    return { text: `Too many failed sign-in attempts.${wait}` };
  }
  if (mode === 'signin' && err.status === 401) return { text: 'Wrong email or password.' };
  if (err.code === 'email_taken' || err.status === 409) {
    return { text: 'An account with this email already exists.', suggest: 'signin' };
  }
  if (err.status === 400) return { text: err.message || 'Please check the email and password.' };
  if (err.status >= 500) return { text: `The daemon could not handle this right now (${err.message}).` };
  return { text: err.message };
}

export function AuthView(props: { notice: string | null; onSignedIn: (s: Session) => void }) {
  const [mode, setMode] = useState<Mode>('signin');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ text: string; suggest?: Mode } | null>(null);

  const switchTo = (m: Mode): void => {
    setMode(m);
    setError(null);
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const trimmed = email.trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(trimmed)) {
      setError({ text: 'Enter a valid email address.' });
      return;
    }
    if (!password) {
      setError({ text: 'Enter a password.' });
      return;
    }
    setBusy(true);
    setError(null);
    let step: Mode = mode;
    try {
      if (mode === 'signup') await signUp(trimmed, password);
      step = 'signin';
      const res = await signIn(trimmed, password);
      props.onSignedIn({ token: res.token, apiKey: res.apiKey, email: trimmed });
    } catch (err) {
      setError(describe(err, step));
      setBusy(false);
    }
  };

  const p = mode; // testid prefix: signin-* or signup-*
  return (
    <main class="auth">
      <div class="auth-card card">
        <div class="auth-brand">
          <Logo />
          <div>
            <h1>observerio</h1>
            <p class="muted">Watch and steer your running game, live.</p>
          </div>
        </div>
        <div class="tabs" role="tablist">
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'signin'}
            class={mode === 'signin' ? 'tab active' : 'tab'}
            data-testid="show-signin"
            onClick={() => switchTo('signin')}
          >
            Sign in
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'signup'}
            class={mode === 'signup' ? 'tab active' : 'tab'}
            data-testid="show-signup"
            onClick={() => switchTo('signup')}
          >
            Create account
          </button>
        </div>
        {props.notice && !error && (
          <p class="notice" data-testid="auth-notice">
            {props.notice}
          </p>
        )}
        <form class="form" data-testid={`${p}-form`} onSubmit={submit} noValidate>
          <label>
            <span>Email</span>
            <input
              type="email"
              name="email"
              autoComplete="username"
              required
              autoFocus
              value={email}
              data-testid={`${p}-email`}
              onInput={(e) => setEmail(e.currentTarget.value)}
            />
          </label>
          <label>
            <span>Password</span>
            <input
              type="password"
              name="password"
              autoComplete={mode === 'signup' ? 'new-password' : 'current-password'}
              required
              value={password}
              data-testid={`${p}-password`}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </label>
          {error && (
            <p class="form-error" role="alert" data-testid="auth-error">
              {error.text}{' '}
              {error.suggest && (
                <button type="button" class="link" onClick={() => switchTo(error.suggest ?? 'signin')}>
                  Sign in instead
                </button>
              )}
            </p>
          )}
          <button type="submit" class="btn primary wide" disabled={busy} data-testid={`${p}-submit`}>
            {busy ? 'Please wait…' : mode === 'signin' ? 'Sign in' : 'Create account'}
          </button>
        </form>
        <p class="muted small auth-foot">
          {mode === 'signin' ? (
            <>
              New here?{' '}
              <button type="button" class="link" onClick={() => switchTo('signup')}>
                Create an account
              </button>{' '}
              to get an API key.
            </>
          ) : (
            <>
              Already have an account?{' '}
              <button type="button" class="link" onClick={() => switchTo('signin')}>
                Sign in
              </button>
            </>
          )}
        </p>
      </div>
    </main>
  );
}

export function Logo(props: { size?: number }) {
  const s = props.size ?? 36;
  return (
    <svg class="logo" width={s} height={s} viewBox="0 0 32 32" aria-hidden="true">
      <circle cx="16" cy="16" r="14" fill="none" stroke="currentColor" stroke-width="2.5" />
      <circle cx="16" cy="16" r="6" fill="currentColor" />
      <path d="M16 2v5M16 25v5M2 16h5M25 16h5" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" />
    </svg>
  );
}
