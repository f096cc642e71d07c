package io.sparksecrets.plugin;

import org.apache.spark.SparkConf;

/** The plugin's {@code spark.secrets.refresh.*} settings, read once at plugin start. */
final class RefreshSettings {
  static final String PREFIX = "spark.secrets.refresh.";

  final boolean enabled;
  /** The token file, or null when there is none to watch. */
  final String tokenFile;
  /** Re-read at the latest after this fraction of the earliest token's remaining lifetime. */
  final double ratio;
  /** Re-read at least this often (ms) even without a change event; 0 = events and deadline only. */
  final long pollMs;
  /** Upper bound (ms) of the backoff after a failed read. */
  final long maxBackoffMs;
  /** Watch the token file's directory for changes (inotify), besides polling. */
  final boolean watch;

  RefreshSettings(boolean enabled, String tokenFile, double ratio, long pollMs, long maxBackoffMs, boolean watch) {
    if (!(ratio > 0 && ratio < 1)) {
      throw new IllegalArgumentException(PREFIX + "ratio=" + ratio + " must be between 0 and 1 (e.g. 0.75)");
    }
    if (pollMs < 0 || maxBackoffMs < 1) {
      throw new IllegalArgumentException(PREFIX + "pollInterval and maxBackoff must be positive durations");
    }
    this.enabled = enabled;
    this.tokenFile = tokenFile == null || tokenFile.isEmpty() ? null : tokenFile;
    this.ratio = ratio;
    this.pollMs = pollMs;
    this.maxBackoffMs = maxBackoffMs;
    this.watch = watch;
  }

  static RefreshSettings from(SparkConf conf, String envTokenFile) {
    return new RefreshSettings(
        conf.getBoolean(PREFIX + "enabled", true),
        conf.get(PREFIX + "tokenFile", envTokenFile == null ? "" : envTokenFile),
        conf.getDouble(PREFIX + "ratio", 0.75),
        conf.getTimeAsMs(PREFIX + "pollInterval", "10s"),
        conf.getTimeAsMs(PREFIX + "maxBackoff", "60s"),
        conf.getBoolean(PREFIX + "watch", true));
  }
}
