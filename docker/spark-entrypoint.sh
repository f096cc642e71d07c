#!/bin/bash
# Entry point of a Spark image for Spark's Kubernetes backend (Spark 3.5 and 4.x).
#
# Spark's pod builders start the driver container with the arguments `driver <spark-submit args>`
# and executor containers with `executor`, and pass everything else in environment variables:
#   driver:   SPARK_DRIVER_BIND_ADDRESS (the pod IP); the arguments name the properties file,
#             the main class or Python file and the application's own arguments.
#   executor: SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_EXECUTOR_MEMORY,
#             SPARK_APPLICATION_ID, SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME,
#             SPARK_RESOURCE_PROFILE_ID, SPARK_JAVA_OPT_<n> (one JVM option each, in order of n),
#             SPARK_EXECUTOR_LIBRARY_PATH (spark.executor.extraLibraryPath, Spark 4).
#   both:     SPARK_CLASSPATH, SPARK_EXTRA_CLASSPATH, SPARK_CONF_DIR, HADOOP_CONF_DIR, HADOOP_HOME,
#             PYSPARK_PYTHON, PYSPARK_DRIVER_PYTHON (passed on to Spark as they are).
# Any other command runs as given, so `ctr run <image> t1 klist` or a pod's own command still work.
set -euo pipefail

: "${SPARK_HOME:?SPARK_HOME must name the Spark distribution in the image}"

# Java and Hadoop look the user up by UID; a pod's runAsUser may have no passwd entry.
if ! getent passwd "$(id -u)" >/dev/null 2>&1 && [ -w /etc/passwd ]; then
  echo "spark-$(id -u):x:$(id -u):$(id -g):${SPARK_USER_NAME:-anonymous uid}:${HOME:-/tmp}:/bin/false" >>/etc/passwd
fi

if [ -z "${JAVA_HOME:-}" ]; then
  JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
fi

# Class path, in Spark's order: conf dir, Hadoop conf dir, SPARK_CLASSPATH, Spark's jars, extras, cwd.
classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}"
if [ -n "${HADOOP_CONF_DIR:-}" ]; then
  classpath="$classpath:$HADOOP_CONF_DIR"
fi
if [ -n "${SPARK_CLASSPATH:-}" ]; then
  classpath="$classpath:$SPARK_CLASSPATH"
fi
classpath="$classpath:$SPARK_HOME/jars/*"
if [ -n "${SPARK_EXTRA_CLASSPATH:-}" ]; then
  classpath="$classpath:$SPARK_EXTRA_CLASSPATH"
fi
classpath="$classpath:$PWD"

# A Hadoop distribution in the image supplies its jars unless the pod already chose a class path.
if [ -n "${HADOOP_HOME:-}" ] && [ -z "${SPARK_DIST_CLASSPATH:-}" ]; then
  SPARK_DIST_CLASSPATH="$("$HADOOP_HOME/bin/hadoop" classpath)"
  export SPARK_DIST_CLASSPATH
fi

# tini reaps the zombies of Python workers and forwards SIGTERM when the pod is deleted.
init=()
if command -v tini >/dev/null 2>&1; then
  init=(tini -s --)
fi

case "${1:-}" in
  driver)
    shift
    # Cluster mode's driver pod runs spark-submit again, in client mode, bound to the pod's IP.
    exec "${init[@]}" "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?set by Spark in driver pods}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client \
      "$@"
    ;;
  executor)
    shift
    # SPARK_JAVA_OPT_<n>, ordered by n as numbers (a name sort would put 10 before 2).
    java_opts=()
    while IFS= read -r name; do
      java_opts+=("${!name}")
    done < <(compgen -v SPARK_JAVA_OPT_ | sort -t_ -k4,4n)
    if [ -n "${SPARK_EXECUTOR_LIBRARY_PATH:-}" ]; then
      export LD_LIBRARY_PATH="$SPARK_EXECUTOR_LIBRARY_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    exec "${init[@]}" "$JAVA_HOME/bin/java" \
      "${java_opts[@]}" \
      "-Xms${SPARK_EXECUTOR_MEMORY:?set by Spark in executor pods}" \
      "-Xmx$SPARK_EXECUTOR_MEMORY" \
      -cp "$classpath${SPARK_DIST_CLASSPATH:+:$SPARK_DIST_CLASSPATH}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" \
      --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" \
      --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  "")
    echo "usage: $0 driver <spark-submit args> | executor | <command> [args...]" >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
