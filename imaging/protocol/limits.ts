// Limits every side enforces alike, dependency-free so that the webview bundles them without valibot.

/** At most this many paths per restoreFiles request, each at most 4096 characters. */
export const MAX_RESTORE_PATHS = 10000;
