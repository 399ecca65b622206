/** Entry point of the dashboard bundle (dist/dashboard/app.js). */
import { render } from 'preact';
import { App } from './app';

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
