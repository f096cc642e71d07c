package io.sparksecrets.plugin;

import java.io.ByteArrayInputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.hadoop.security.Credentials;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.security.token.Token;
import org.apache.hadoop.security.token.TokenIdentifier;
import org.apache.hadoop.security.token.delegation.AbstractDelegationTokenIdentifier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Re-reads a Hadoop token file by path whenever its directory changes (kubelet swaps a Secret
 * volume's {@code ..data} symlink), at least every poll interval, and at the latest after a ratio of
 * the earliest token's remaining lifetime; adds new tokens to the JVM's current user.
 *
 * <p>A missing, partial or unparsable file keeps the current tokens; the refresher logs one line and
 * retries with jittered exponential backoff. Logs name token kind, service, sequence number and max
 * date only, never identifier or password bytes.
 */
final class TokenFileRefresher implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(TokenFileRefresher.class);
  private static final long MIN_WAIT_MS = 200;
  private static final long FIRST_BACKOFF_MS = 1000;
  private static final long MAX_IDLE_WAIT_MS = 3_600_000;

  enum Outcome { REFRESHED, UNCHANGED, FAILED }

  private final RefreshSettings settings;
  private final String role;
  private final AtomicLong refreshes = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private volatile boolean stopped;
  private UserGroupInformation ugi;
  private WatchService watcher;
  private Thread thread;
  private byte[] appliedDigest;
  private long earliestMaxDate = Long.MAX_VALUE;
  private String lastFailure;

  TokenFileRefresher(RefreshSettings settings, String role) {
    this.settings = settings;
    this.role = role;
  }

  /** Loads the file once (in the caller's thread) and starts the background thread. */
  void start() {
    if (!settings.enabled) {
      LOG.info("spark-secrets token refresh disabled ({}enabled=false) in {}", RefreshSettings.PREFIX, role);
      return;
    }
    if (settings.tokenFile == null) {
      LOG.info("spark-secrets: no token file in {} (HADOOP_TOKEN_FILE_LOCATION unset): nothing to refresh", role);
      return;
    }
    try {
      ugi = UserGroupInformation.getCurrentUser();
    } catch (IOException e) {
      LOG.warn("spark-secrets: cannot get the current Hadoop user in {} ({}): not refreshing", role, e.toString());
      return;
    }
    refreshOnce();
    watcher = settings.watch ? openWatcher(Paths.get(settings.tokenFile).toAbsolutePath().getParent()) : null;
    thread = new Thread(this::run, "spark-secrets-token-refresher");
    thread.setDaemon(true);
    thread.start();
    LOG.info("spark-secrets: refreshing tokens from {} in {} (watch {}, poll every {} ms, ratio {})",
        settings.tokenFile, role, watcher != null ? "on" : "off", settings.pollMs, settings.ratio);
  }

  /** The background thread (for CPU accounting in benchmarks); null before start or when idle. */
  Thread thread() {
    return thread;
  }

  long refreshCount() {
    return refreshes.get();
  }

  long failureCount() {
    return failures.get();
  }

  /** Reads the file by path; adds its tokens if its bytes changed since the last good read. */
  synchronized Outcome refreshOnce() {
    Path path = Paths.get(settings.tokenFile);
    byte[] bytes;
    try {
      bytes = readByPath(path);
    } catch (NoSuchFileException e) {
      return failed("token file " + path + " is missing");
    } catch (IOException e) {
      return failed("cannot read token file " + path + " (" + e.getClass().getSimpleName() + ")");
    }
    byte[] digest = sha256(bytes);
    if (Arrays.equals(digest, appliedDigest)) {
      return Outcome.UNCHANGED;
    }
    Credentials creds = new Credentials();
    try {
      creds.readTokenStorageStream(new DataInputStream(new ByteArrayInputStream(bytes)));
    } catch (IOException | RuntimeException e) {
      return failed("token file " + path + " (" + bytes.length + " bytes) is not a complete Hadoop token file ("
          + e.getClass().getSimpleName() + ")");
    }
    if (creds.numberOfTokens() == 0) {
      return failed("token file " + path + " holds no tokens");
    }
    ugi.addCredentials(creds);
    appliedDigest = digest;
    lastFailure = null;
    refreshes.incrementAndGet();
    earliestMaxDate = Long.MAX_VALUE;
    StringBuilder summary = new StringBuilder();
    for (Token<? extends TokenIdentifier> token : creds.getAllTokens()) {
      summary.append("; ").append(token.getKind()).append(' ').append(token.getService());
      AbstractDelegationTokenIdentifier id = identifier(token);
      if (id != null) {
        summary.append(" seq ").append(id.getSequenceNumber()).append(" max ")
            .append(Instant.ofEpochMilli(id.getMaxDate()));
        earliestMaxDate = Math.min(earliestMaxDate, id.getMaxDate());
      }
    }
    LOG.info("spark-secrets: {} now uses {} token(s) from {}{}", role, creds.numberOfTokens(), path, summary);
    return Outcome.REFRESHED;
  }

  /**
   * Opens the file by path each time (a held descriptor would keep the old version forever). The
   * path crosses two symlinks ({@code key -> ..data/key}, {@code ..data -> ..<version>}); kubelet
   * deletes the old version right after swapping {@code ..data}, so a lookup that raced the swap can
   * find nothing. Such a miss is retried a few times before the file counts as missing.
   */
  private static byte[] readByPath(Path path) throws IOException {
    for (int attempt = 1; ; attempt++) {
      try {
        return Files.readAllBytes(path);
      } catch (NoSuchFileException e) {
        if (attempt == 3) {
          throw e;
        }
        try {
          Thread.sleep(5L * attempt);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw e;
        }
      }
    }
  }

  private Outcome failed(String problem) {
    failures.incrementAndGet();
    if (!problem.equals(lastFailure)) {
      LOG.warn("spark-secrets: {}; {} keeps its current tokens and retries", problem, role);
    }
    lastFailure = problem;
    return Outcome.FAILED;
  }

  private static AbstractDelegationTokenIdentifier identifier(Token<? extends TokenIdentifier> token) {
    try {
      TokenIdentifier id = token.decodeIdentifier();
      return id instanceof AbstractDelegationTokenIdentifier ? (AbstractDelegationTokenIdentifier) id : null;
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  private void run() {
    long backoff = 0;
    while (!stopped) {
      awaitChange(backoff > 0 ? jitter(backoff) : nextWaitMs());
      if (stopped) {
        break;
      }
      if (refreshOnce() == Outcome.FAILED) {
        backoff = backoff == 0 ? FIRST_BACKOFF_MS : Math.min(backoff * 2, settings.maxBackoffMs);
      } else {
        backoff = 0;
      }
    }
  }

  /** The poll interval or the lifetime deadline, whichever comes first. */
  private long nextWaitMs() {
    long wait = settings.pollMs > 0 ? settings.pollMs : MAX_IDLE_WAIT_MS;
    if (earliestMaxDate != Long.MAX_VALUE) {
      long remaining = earliestMaxDate - System.currentTimeMillis();
      wait = Math.min(wait, (long) (Math.max(0, remaining) * settings.ratio));
    }
    return Math.max(MIN_WAIT_MS, wait);
  }

  private static long jitter(long ms) {
    return (long) (ms * (0.8 + 0.4 * ThreadLocalRandom.current().nextDouble()));
  }

  /** Waits up to {@code ms} for a change in the token file's directory (or just sleeps without a watch). */
  private void awaitChange(long ms) {
    try {
      if (watcher == null) {
        Thread.sleep(ms);
        return;
      }
      WatchKey key = watcher.poll(ms, TimeUnit.MILLISECONDS);
      if (key != null) {
        // kubelet's swap is a few renames in a row; let it finish, then take all the events at once.
        Thread.sleep(20);
        key.pollEvents();
        key.reset();
        WatchKey more;
        while ((more = watcher.poll()) != null) {
          more.pollEvents();
          more.reset();
        }
      }
    } catch (InterruptedException | ClosedWatchServiceException e) {
      Thread.currentThread().interrupt();
      stopped = true;
    }
  }

  private WatchService openWatcher(Path dir) {
    if (dir == null) {
      return null;
    }
    try {
      WatchService ws = dir.getFileSystem().newWatchService();
      dir.register(ws, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_DELETE,
          StandardWatchEventKinds.ENTRY_MODIFY);
      return ws;
    } catch (IOException | RuntimeException e) {
      LOG.info("spark-secrets: cannot watch {} ({}); polling only", dir, e.getClass().getSimpleName());
      return null;
    }
  }

  private static byte[] sha256(byte[] bytes) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(bytes);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    stopped = true;
    if (watcher != null) {
      try {
        watcher.close();
      } catch (IOException ignored) {
        // closing is best effort
      }
    }
    if (thread != null) {
      thread.interrupt();
      try {
        thread.join(5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      LOG.info("spark-secrets: token refresher in {} stopped after {} refresh(es), {} failed read(s)",
          role, refreshes.get(), failures.get());
    }
  }
}
