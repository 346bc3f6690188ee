// The compare panel's HTML shell: a strict Content Security Policy (no inline script or style, the
// one script allowed by its nonce, styles and assets only from the extension's own webview origin)
// and the two assets through asWebviewUri. No `vscode` import: test/unit/webview-html.test.ts.
import * as crypto from 'crypto';

export interface PanelHtmlInput {
  /** webview.cspSource */
  cspSource: string;
  /** asWebviewUri(dist/webview.js) */
  scriptUri: string;
  /** asWebviewUri(media/panel.css) */
  styleUri: string;
  nonce?: string;
}

export function makeNonce(): string {
  return crypto.randomBytes(18).toString('base64').replace(/[+/=]/g, '');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return ["default-src 'none'", `style-src ${cspSource}`, `img-src ${cspSource} data:`, `font-src ${cspSource}`, `script-src 'nonce-${nonce}'`].join('; ');
}

const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function panelHtml(i: PanelHtmlInput): string {
  const nonce = i.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(i.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(i.styleUri)}">
<title>devsnap: Compare Snapshots</title>
</head>
<body>
<script nonce="${nonce}" src="${attr(i.scriptUri)}"></script>
</body>
</html>`;
}
