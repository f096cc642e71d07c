# A Spark image with the token refresher plugin on its class path.
#   spark-secrets jar                 # prints the jar's path; copy it next to this file first:
#   cp "$(spark-secrets jar)" docker/ && docker build -f docker/spark-plugin.Dockerfile -t my-spark .
# Jobs then use --conf spark.secrets.plugin.jar=/opt/spark/jars/spark-secrets-plugin.jar
ARG SPARK_IMAGE=apache/spark:4.0.0
FROM ${SPARK_IMAGE}
COPY docker/spark-secrets-plugin.jar /opt/spark/jars/spark-secrets-plugin.jar
