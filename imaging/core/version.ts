// The engine's version: `devsnap --version`, and what `auto status` compares the installed copy with.
export const ENGINE_VERSION = '0.1.0';
