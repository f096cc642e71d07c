# The renew service: `spark-secrets renewer`, from a wheel built in the first stage.
#   docker build -f docker/renewer.Dockerfile -t spark-secrets-renewer .
# python-gssapi builds against MIT Kerberos, so the build stage has its headers and a compiler;
# the runtime stage only the libraries. The JDK and pyspark are needed only to put the plugin jar
# into the wheel; the renewer itself never starts a JVM.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libkrb5-dev openjdk-17-jdk-headless \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir wheel setuptools pyspark==4.3.0 \
    && pip wheel --no-cache-dir --no-build-isolation -w /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgssapi-krb5-2 krb5-user \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
# The kube extra: the controller layout's per-Secret grants use the kubernetes package's API client.
RUN pip install --no-cache-dir "$(echo /wheels/spark_secrets-*.whl)[kube,kafka]" && rm -rf /wheels
# No root, no shell history, a private ticket cache in a writable emptyDir.
USER 65532:65532
ENV HOME=/tmp
ENTRYPOINT ["spark-secrets", "renewer"]
