# Your own Spark image plus the token refresher plugin: the recipe the test bed's Spark image
# (spark_secrets/testbed/images.py) follows, for images built FROM an existing Spark image.
#   cp "$(spark-secrets jar)" docker/spark-secrets-plugin.jar
#   docker build -f docker/spark.Dockerfile --build-arg SPARK_IMAGE=apache/spark:4.0.0 -t my-spark .
# Submit jobs with --conf spark.secrets.plugin.jar=local:///opt/spark/jars/spark-secrets-plugin.jar
# (local:// = a file already inside the image, never uploaded).
# The base image keeps its own entry point; docker/spark-entrypoint.sh is an equivalent one for
# images that have none (Spark 3.5 and 4.x: `driver`, `executor`, or any other command).
ARG SPARK_IMAGE=apache/spark:4.0.0
FROM ${SPARK_IMAGE}
COPY docker/spark-secrets-plugin.jar /opt/spark/jars/spark-secrets-plugin.jar
