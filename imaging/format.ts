// Shared, dependency-free formatting (sizes, rates, durations) for the CLI, the extension and the webview.
export * from '../extension/format';
