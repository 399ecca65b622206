/**
 * The API key and, for the SDK the user picks (remembered in localStorage), the install line and the
 * code that connects a game to this daemon, built from GET /api/connect-info so the host and ports
 * are the daemon's real (or advertised) ones, not the defaults.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ConnectInfoAnswer } from '../../wire.js';
import type { Api } from '../api';
import { copyText } from '../clipboard';
import { DEFAULT_SDK, isSdkId, SDK_CHOICES, snippetFor, type SdkId } from '../snippets';

const SDK_KEY = 'observerio.sdk';

function storedSdk(): SdkId {
  try {
    const v = localStorage.getItem(SDK_KEY);
    return isSdkId(v) ? v : DEFAULT_SDK;
  } catch {
    return DEFAULT_SDK; // storage disabled: the default each time
  }
}

function storeSdk(id: SdkId): void {
  try {
    localStorage.setItem(SDK_KEY, id);
  } catch {
    // storage disabled or full: the choice lasts for this page only
  }
}

function CopyButton(props: { text: string; label: string; testid: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const onClick = async (): Promise<void> => {
    const ok = await copyText(props.text);
    setState(ok ? 'copied' : 'failed');
    setTimeout(() => setState('idle'), 1500);
  };
  return (
    <button type="button" class="btn small" data-testid={props.testid} data-state={state} aria-label={props.label} onClick={onClick}>
      {state === 'copied' ? 'Copied ✓' : state === 'failed' ? 'Copy failed' : 'Copy'}
    </button>
  );
}

type InfoState = { state: 'loading' } | { state: 'ready'; info: ConnectInfoAnswer } | { state: 'error'; message: string };

function useConnectInfo(api: Api): [InfoState, () => void] {
  const [info, setInfo] = useState<InfoState>({ state: 'loading' });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setInfo({ state: 'loading' });
    api.connectInfo(ctl.signal).then(
      (answer) => setInfo({ state: 'ready', info: answer }),
      (err: unknown) => {
        if (ctl.signal.aborted) return;
        setInfo({ state: 'error', message: err instanceof Error ? err.message : String(err) });
      },
    );
    return () => ctl.abort();
  }, [api, attempt]);
  return [info, () => setAttempt((n) => n + 1)];
}

export function ConnectPanel(props: { api: Api; apiKey: string }) {
  const [sdk, setSdk] = useState<SdkId>(storedSdk);
  const [info, retry] = useConnectInfo(props.api);
  const pick = (id: SdkId): void => {
    setSdk(id);
    storeSdk(id);
  };
  const snippet = info.state === 'ready' ? snippetFor(sdk, info.info) : null;
  return (
    <section class="card connect" aria-labelledby="connect-title">
      <header class="card-head">
        <h2 id="connect-title">Connect your game</h2>
      </header>
      <div class="key-row">
        <span class="label">API key</span>
        <code class="api-key" data-testid="api-key">
          {props.apiKey}
        </code>
        <CopyButton text={props.apiKey} label="Copy API key" testid="copy-api-key" />
      </div>
      <div class="sdk-picker" role="tablist" aria-label="SDK">
        {SDK_CHOICES.map((c) => (
          <button
            key={c.id}
            type="button"
            role="tab"
            aria-selected={sdk === c.id}
            class={sdk === c.id ? 'sdk-choice active' : 'sdk-choice'}
            data-testid={`sdk-choice-${c.id}`}
            onClick={() => pick(c.id)}
          >
            {c.label}
          </button>
        ))}
      </div>
      {info.state === 'loading' && (
        <p class="muted small" data-testid="connect-info-loading">
          Reading this daemon's address…
        </p>
      )}
      {info.state === 'error' && (
        <p class="form-error connect-error" data-testid="connect-info-error">
          Cannot read this daemon's address: {info.message}{' '}
          <button type="button" class="btn small" data-testid="connect-info-retry" onClick={retry}>
            Retry
          </button>
        </p>
      )}
      {snippet && (
        <div role="tabpanel" data-testid="sdk-panel" data-sdk={sdk}>
          <div class="install-row">
            <code class="install" data-testid="sdk-install">
              {snippet.install}
            </code>
            <CopyButton text={snippet.install} label="Copy install line" testid="copy-install" />
          </div>
          <div class="snippet">
            <pre data-testid="sdk-snippet" data-sdk={sdk}>
              <code>{snippet.code}</code>
            </pre>
            <CopyButton text={snippet.code} label="Copy SDK snippet" testid="copy-snippet" />
          </div>
          <p class="muted small" data-testid="sdk-note">
            {snippet.note} Variables and logs it sends show up below within milliseconds.
          </p>
        </div>
      )}
    </section>
  );
}
