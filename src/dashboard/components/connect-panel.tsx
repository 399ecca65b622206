/** The API key and the one line a game needs to connect to this daemon. */
import { useState } from 'preact/hooks';
import { copyText } from '../clipboard';

/** The daemon's default SDK port (OBSERVERIO_TCP_PORT); the HTTP API does not report the real one. */
export const TCP_PORT = 4040;

export function sdkSnippet(host: string, apiKey: string): string {
  return `import { connect } from 'observerio/sdk'; const game = await connect({ host: '${host}', port: ${TCP_PORT}, apiKey: '${apiKey}' });`;
}

function CopyButton(props: { text: string; label: string; testid: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const onClick = async (): Promise<void> => {
    const ok = await copyText(props.text);
    setState(ok ? 'copied' : 'failed');
    setTimeout(() => setState('idle'), 1500);
  };
  return (
    <button type="button" class="btn small" data-testid={props.testid} aria-label={props.label} onClick={onClick}>
      {state === 'copied' ? 'Copied ✓' : state === 'failed' ? 'Copy failed' : 'Copy'}
    </button>
  );
}

export function ConnectPanel(props: { apiKey: string }) {
  const host = location.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const snippet = sdkSnippet(host, props.apiKey);
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
      <div class="snippet">
        <pre data-testid="sdk-snippet">
          <code>{snippet}</code>
        </pre>
        <CopyButton text={snippet} label="Copy SDK snippet" testid="copy-snippet" />
      </div>
      <p class="muted small">
        The SDK speaks TCP to port {TCP_PORT} on this host; variables and logs it sends show up below within
        milliseconds.
      </p>
    </section>
  );
}
