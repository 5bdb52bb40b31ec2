// A command-line or configuration error: one line, naming the option and
// what is wrong. The CLI prints it after the program name and exits 1.
export class ConfigError extends Error {
  override name = 'ConfigError';
}
