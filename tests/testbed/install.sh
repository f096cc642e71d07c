#!/usr/bin/env bash
# Installs everything the test bed and the tests need, idempotently:
#   Debian packages (MIT Kerberos, Java 17, Maven), this project with its dev extras,
#   Apache Hadoop, Hive metastore and Kafka jars from Maven Central, and kube-apiserver / kube-controller-manager / etcd
#   built from the Go module proxy.
# Downloads and builds are cached under $SPARK_SECRETS_CACHE (default ~/.cache/spark-secrets),
# keyed by a hash of their recipe, and rebuilt whenever the cache is missing or stale.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${SPARK_SECRETS_CACHE:-$HOME/.cache/spark-secrets}"
mkdir -p "$cache"

step() { printf '[install %(%H:%M:%S)T] %s\n' -1 "$*"; }
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
have() { command -v "$1" >/dev/null 2>&1; }

# -- Debian packages -------------------------------------------------------------------------------
need_apt=()
have krb5kdc || [ -x /usr/sbin/krb5kdc ] || need_apt+=(krb5-kdc)
have kadmin.local || [ -x /usr/sbin/kadmin.local ] || need_apt+=(krb5-admin-server)
have kinit || need_apt+=(krb5-user)
have krb5-config || need_apt+=(libkrb5-dev)
[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ] || need_apt+=(openjdk-17-jdk-headless)
have mvn || need_apt+=(maven)
have openssl || need_apt+=(openssl)
have gcc || need_apt+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)   # gcc -static (the pause image)
# The kubelet node: container runtime, CNI plugins, and what builds and packs the images.
have containerd || need_apt+=(containerd)
have runc || need_apt+=(runc)
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
have debootstrap || need_apt+=(debootstrap)
have iptables || need_apt+=(iptables)
# OpenBao's database secrets engine runs against a real PostgreSQL (leased credentials).
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need_apt+=(postgresql)
have setpriv || need_apt+=(util-linux)
have ip || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -E"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
else
  step "Debian packages present (krb5, Java 17, Maven)"
fi
export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

# -- Python: this project and its dev extras -------------------------------------------------------
py_stamp="$(stamp_of "$repo/setup.cfg" "$repo/pyproject.toml")"
if [ "$(cat "$cache/python.stamp" 2>/dev/null)" != "$py_stamp:$repo" ] || ! python3 -c 'import spark_secrets, gssapi, pyspark, kubernetes' 2>/dev/null; then
  step "pip install -e .[dev] (pyspark, gssapi, kubernetes, ...)"
  python3 -m pip install -q --disable-pip-version-check -e "$repo[dev]"
  echo "$py_stamp:$repo" > "$cache/python.stamp"
else
  step "Python packages present"
fi

# -- A notebook's Python: this project without extras and pyspark-client (Spark Connect's pure-Python client;
#    no JVM, no Spark jars), in a venv of its own, as a notebook user installs it --------------------------
notebook_client=4.2.0
nb_stamp="$(stamp_of "$repo/setup.cfg"):$notebook_client:$repo"
if [ "$(cat "$cache/notebook-venv/stamp" 2>/dev/null)" != "$nb_stamp" ] || ! "$cache/notebook-venv/bin/python" -c 'import spark_secrets, pyspark.sql.connect.session' 2>/dev/null; then
  step "a notebook venv: spark-secrets and pyspark-client==$notebook_client (no pyspark, no Java)"
  rm -rf "$cache/notebook-venv"
  python3 -m venv "$cache/notebook-venv"
  "$cache/notebook-venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo" "pyspark-client==$notebook_client"
  echo "$nb_stamp" > "$cache/notebook-venv/stamp"
else
  step "notebook venv present (pyspark-client $notebook_client)"
fi

# -- Spark 3.5 beside pyspark 4 (a second distribution, for compatibility tests) --------------------
spark35_version=3.5.9
if [ "$(cat "$cache/spark-3.5/stamp" 2>/dev/null)" != "$spark35_version" ]; then
  step "pip install --target $cache/spark-3.5 pyspark==$spark35_version (about 320 MB)"
  rm -rf "$cache/spark-3.5"
  python3 -m pip install -q --disable-pip-version-check --no-deps --target "$cache/spark-3.5" "pyspark==$spark35_version"
  echo "$spark35_version" > "$cache/spark-3.5/stamp"
else
  step "Spark $spark35_version cached"
fi

# -- Maven Central jars: Apache Hadoop (NameNode, DataNode, KMS and Hadoop's own CLI tools), Hive's
#    standalone metastore (run beside the Hadoop jars, which it does not repeat), the Hive 4.0
#    metastore client Spark loads for it (hive-client), the Apache Kafka broker with Kafka's own
#    CLI tools (kafka, a class path of its own) and Spark's Kafka connector for the Spark image
#    (spark-kafka); one cache directory and stamp each ---------------------------------------------------
for part in hadoop hive hive-client kafka spark-kafka; do
  part_stamp="$(stamp_of "$here/$part/pom.xml")"
  if [ "$(cat "$cache/$part/stamp" 2>/dev/null)" != "$part_stamp" ]; then
    step "Maven: $part jars into $cache/$part/lib"
    rm -rf "$cache/$part"
    mkdir -p "$cache/$part"
    (cd "$here/$part" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$cache/$part/lib")
    echo "$part_stamp" > "$cache/$part/stamp"
  else
    step "$part jars cached ($(ls "$cache/$part/lib" | wc -l) jars)"
  fi
done

# -- Images for the node: Debian by debootstrap, the host's pyspark, this project (root only) -----------
# Built in the background while Go compiles below: debootstrap and apt wait on the network, go build
# on the CPU, so on a fresh machine the two overlap instead of adding up.
if [ "$(id -u)" = 0 ]; then
  step "container images for the test bed's node, built meanwhile (cached by content; about 3-4 min cold)"
  images_log="$(mktemp)"
  python3 -c 'from spark_secrets.testbed import images as i; i.pause_archive(); i.spark_image_archive(); i.renewer_image_archive()' \
      > "$images_log" 2>&1 &
  images_pid=$!
  trap 'kill "$images_pid" 2>/dev/null || true' EXIT  # an earlier step failed: do not leave it running
else
  step "not root: the test bed's node (and its images) need root"
fi

# -- Kubernetes control plane and etcd, from the Go module proxy -----------------------------------
kube_version="$(grep -Eo "^\s*(require\s+)?k8s.io/kubernetes v[0-9.]+" "$here/kube/go.mod" | awk "{print \$NF}")"
kube_minor="$(echo "$kube_version" | cut -d. -f2)"
kube_stamp="$(stamp_of "$here/kube/go.mod" "$here/kube/go.sum" "$here/kube/etcd/main.go")"
if [ "$(cat "$cache/kube/stamp" 2>/dev/null)" != "$kube_stamp" ]; then
  if ! have go; then
    echo "install.sh: Go is not installed; put a Go toolchain (1.21 or newer) on PATH" >&2
    exit 1
  fi
  step "go build kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, etcd ($kube_version; 5-20 min cold)"
  rm -rf "$cache/kube"
  mkdir -p "$cache/kube/bin"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube_version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"
  # GOTOOLCHAIN=auto lets an older go fetch the toolchain go.mod asks for, from the module proxy.
  (cd "$here/kube" && GOTOOLCHAIN=auto CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" \
      -o "$cache/kube/bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet ./etcd)
  echo "$kube_stamp" > "$cache/kube/stamp"
else
  step "Kubernetes $kube_version binaries cached"
fi

# -- CoreDNS, the node's cluster DNS (Spark executors reach the driver by its Service name) ----------
coredns_version=v1.15.0
if [ "$(cat "$cache/coredns/stamp" 2>/dev/null)" != "$coredns_version" ]; then
  step "go install github.com/coredns/coredns@$coredns_version (about 2-3 min cold)"
  rm -rf "$cache/coredns"
  mkdir -p "$cache/coredns/bin"
  GOTOOLCHAIN=auto CGO_ENABLED=0 GOBIN="$cache/coredns/bin" go install -trimpath -ldflags "-s -w" \
      "github.com/coredns/coredns@$coredns_version"
  echo "$coredns_version" > "$cache/coredns/stamp"
else
  step "CoreDNS $coredns_version cached"
fi

# -- helm (v3: its --post-renderer is an executable, which the test bed's host-network fit needs) ----
helm_version=v3.21.4  # spark_secrets/testbed/helm.py HELM_VERSION
if [ "$(cat "$cache/helm/stamp" 2>/dev/null)" != "$helm_version" ]; then
  step "go install helm.sh/helm/v3/cmd/helm@$helm_version (about 4-8 min cold)"
  rm -rf "$cache/helm"
  mkdir -p "$cache/helm/bin"
  GOTOOLCHAIN=auto CGO_ENABLED=0 GOBIN="$cache/helm/bin" go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.metadata=" \
      "helm.sh/helm/v3/cmd/helm@$helm_version"
  echo "$helm_version" > "$cache/helm/stamp"
else
  step "helm $helm_version cached"
fi

# -- the kubeflow spark-operator, from the Go module proxy (its chart and CRDs come with the module) ----
operator_stamp="$(stamp_of "$here/spark-operator/go.mod" "$here/spark-operator/go.sum")"
if [ "$(cat "$cache/spark-operator/stamp" 2>/dev/null)" != "$operator_stamp" ]; then
  operator_version="$(grep -Eo "require github.com/kubeflow/spark-operator/v2 v[0-9.]+" "$here/spark-operator/go.mod" | awk '{print $NF}')"
  step "go build the spark-operator $operator_version (about 3-6 min cold)"
  rm -rf "$cache/spark-operator"
  mkdir -p "$cache/spark-operator/bin"
  (cd "$here/spark-operator" && GOTOOLCHAIN=auto CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$operator_version -X k8s.io/component-base/version.gitTreeState=clean" \
      -o "$cache/spark-operator/bin/spark-operator" github.com/kubeflow/spark-operator/v2/cmd/operator)
  # its chart (with the CRDs in chart/crds) from the module's own source, as helm installs it
  operator_dir="$(cd "$here/spark-operator" && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/kubeflow/spark-operator/v2)"
  cp -r "$operator_dir/charts/spark-operator-chart" "$cache/spark-operator/chart"
  cp "$operator_dir/examples/spark-pi-python.yaml" "$cache/spark-operator/"  # its own PySpark example
  chmod -R u+w "$cache/spark-operator"
  echo "$operator_stamp" > "$cache/spark-operator/stamp"
else
  step "spark-operator cached"
fi

# -- the prometheus-operator's ServiceMonitor and PrometheusRule CRDs, made by controller-gen from its API types ----
crds_stamp="$(stamp_of "$here/monitoring-crds/go.mod" "$here/monitoring-crds/go.sum")"
if [ "$(cat "$cache/monitoring-crds/stamp" 2>/dev/null)" != "$crds_stamp" ]; then
  step "go build controller-gen; the monitoring.coreos.com CRDs from their Go types (about 2 min cold)"
  rm -rf "$cache/monitoring-crds"
  mkdir -p "$cache/monitoring-crds/bin" "$cache/monitoring-crds/all"
  (cd "$here/monitoring-crds" && GOTOOLCHAIN=auto CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
      -o "$cache/monitoring-crds/bin/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen &&
   GOFLAGS=-mod=readonly "$cache/monitoring-crds/bin/controller-gen" crd:maxDescLen=0 \
      paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
      output:crd:dir="$cache/monitoring-crds/all")
  mkdir -p "$cache/monitoring-crds/crds"
  for kind in servicemonitors prometheusrules; do
    mv "$cache/monitoring-crds/all/monitoring.coreos.com_$kind.yaml" "$cache/monitoring-crds/crds/"
  done
  rm -rf "$cache/monitoring-crds/all"
  echo "$crds_stamp" > "$cache/monitoring-crds/stamp"
else
  step "monitoring CRDs cached"
fi

# -- the images, built meanwhile: wait for them ----------------------------------------------------
if [ -n "${images_pid:-}" ]; then
  if wait "$images_pid"; then
    cat "$images_log"
    step "container images ready"
  else
    cat "$images_log" >&2
    echo "install.sh: building the node's container images failed (log above)" >&2
    exit 1
  fi
fi

step "done: cache $cache"
