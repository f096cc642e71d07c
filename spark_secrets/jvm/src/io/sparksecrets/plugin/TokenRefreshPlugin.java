/*
 * spark-secrets: a Spark plugin that keeps each JVM's Hadoop delegation tokens current by
 * re-reading the token file that the job's Kubernetes Secret is mounted as.
 */
package io.sparksecrets.plugin;

import java.util.Collections;
import java.util.Map;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * Enable with {@code spark.plugins=io.sparksecrets.plugin.TokenRefreshPlugin}. The driver and every
 * executor start one {@link TokenFileRefresher} on {@code HADOOP_TOKEN_FILE_LOCATION} (or
 * {@code spark.secrets.refresh.tokenFile}) and stop it at shutdown.
 */
public final class TokenRefreshPlugin implements SparkPlugin {

  @Override
  public DriverPlugin driverPlugin() {
    return new Driver();
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new Executor();
  }

  static TokenFileRefresher start(SparkConf conf, String role) {
    RefreshSettings settings = RefreshSettings.from(conf, System.getenv("HADOOP_TOKEN_FILE_LOCATION"));
    TokenFileRefresher refresher = new TokenFileRefresher(settings, role);
    refresher.start();
    return refresher;
  }

  /** The driver's part: refreshes the driver JVM's tokens. */
  static final class Driver implements DriverPlugin {
    private TokenFileRefresher refresher;

    @Override
    public Map<String, String> init(SparkContext sc, PluginContext ctx) {
      refresher = start(ctx.conf(), "driver");
      return Collections.emptyMap();
    }

    @Override
    public void shutdown() {
      if (refresher != null) {
        refresher.close();
      }
    }
  }

  /** The executors' part: refreshes each executor JVM's tokens. */
  static final class Executor implements ExecutorPlugin {
    private TokenFileRefresher refresher;

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {
      refresher = start(ctx.conf(), "executor " + ctx.executorID());
    }

    @Override
    public void shutdown() {
      if (refresher != null) {
        refresher.close();
      }
    }
  }
}
