// Benchmark helper: Hadoop's own client obtaining delegation tokens N times in one warm JVM,
// through FileSystem.addDelegationTokens (what Spark's HadoopFSDelegationTokenProvider calls).
// Prints one line per fetch: "fetch <nanoseconds>".
import java.net.URI;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.security.Credentials;
import org.apache.hadoop.security.UserGroupInformation;

public final class FetchLoop {
  public static void main(String[] args) throws Exception {
    URI uri = new URI(args[0]);
    String renewer = args[1];
    int n = Integer.parseInt(args[2]);
    Configuration conf = new Configuration();
    UserGroupInformation.setConfiguration(conf);
    for (int i = 0; i < n; i++) {
      long t0 = System.nanoTime();
      try (FileSystem fs = FileSystem.newInstance(uri, conf)) {
        Credentials creds = new Credentials();
        if (fs.addDelegationTokens(renewer, creds).length == 0) {
          throw new IllegalStateException("no token obtained");
        }
      }
      System.out.println("fetch " + (System.nanoTime() - t0));
    }
  }
}
