package io.sparksecrets.plugin;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.security.token.Token;
import org.apache.hadoop.security.token.TokenIdentifier;
import org.apache.hadoop.security.token.delegation.AbstractDelegationTokenIdentifier;

/**
 * Drives the plugin's {@link TokenFileRefresher} outside Spark, for tests and benchmarks.
 *
 * <pre>
 * stress FILE SECONDS            read the file in a tight loop beside the refresher; print READS/FAILED
 * follow FILE SECONDS POLL_MS WATCH   print "ACTIVE seq epoch-ms" whenever the current user's HDFS
 *                                token changes, then the refresher thread's CPU time
 * </pre>
 */
public final class RefresherHarness {
  public static void main(String[] args) throws Exception {
    String mode = args[0];
    String file = args[1];
    long millis = (long) (Double.parseDouble(args[2]) * 1000);
    long poll = args.length > 3 ? Long.parseLong(args[3]) : 50;
    boolean watch = args.length <= 4 || Boolean.parseBoolean(args[4]);
    TokenFileRefresher refresher =
        new TokenFileRefresher(new RefreshSettings(true, file, 0.75, poll, 1000, watch), "harness");
    refresher.start();
    System.out.println("READY");
    System.out.flush();
    long end = System.currentTimeMillis() + millis;
    if (mode.equals("stress")) {
      long reads = 0;
      long failed = 0;
      while (System.currentTimeMillis() < end) {
        if (refresher.refreshOnce() == TokenFileRefresher.Outcome.FAILED) {
          failed++;
        }
        reads++;
      }
      System.out.println("READS " + reads + " FAILED " + failed + " REFRESHES " + refresher.refreshCount());
    } else {
      long seen = currentSequence();
      while (System.currentTimeMillis() < end) {
        long seq = currentSequence();
        if (seq != seen) {
          System.out.println("ACTIVE " + seq + " " + System.currentTimeMillis());
          System.out.flush();
          seen = seq;
        }
        Thread.sleep(1);
      }
      ThreadMXBean mx = ManagementFactory.getThreadMXBean();
      Thread t = refresher.thread();
      long cpu = t == null ? -1 : mx.getThreadCpuTime(t.getId());
      System.out.println("CPU_NS " + cpu + " ELAPSED_MS " + millis + " REFRESHES " + refresher.refreshCount()
          + " FAILURES " + refresher.failureCount());
    }
    refresher.close();
  }

  private static long currentSequence() throws Exception {
    for (Token<? extends TokenIdentifier> token : UserGroupInformation.getCurrentUser().getCredentials().getAllTokens()) {
      if (token.getKind().toString().equals("HDFS_DELEGATION_TOKEN")) {
        TokenIdentifier id = token.decodeIdentifier();
        if (id instanceof AbstractDelegationTokenIdentifier) {
          return ((AbstractDelegationTokenIdentifier) id).getSequenceNumber();
        }
      }
    }
    return -1;
  }
}
