"""``python -m spark_secrets.testbed up``: start the test bed and keep it running until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from spark_secrets.errors import SparkSecretsError
from spark_secrets.testbed.bed import ALL_COMPONENTS, Testbed
from spark_secrets.testbed.hadoop import TokenLifetimes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spark_secrets.testbed",
        description="Run the real local test bed (MIT KDC, secure HDFS, Kubernetes API server and a kubelet node) "
                    "in the foreground, for manual use. Ctrl-C stops it.")
    parser.add_argument("command", choices=["up"], help="up: start and wait")
    parser.add_argument("--dir", type=Path, help="working directory (default: a new temp dir)")
    parser.add_argument("--components", default=",".join(sorted(ALL_COMPONENTS)),
                        help="comma-separated subset of: kdc,hdfs,kube,node (default: all; node needs root)")
    parser.add_argument("--renew-interval", type=int, default=86_400, metavar="S",
                        help="delegation-token renew interval in seconds (default 86400)")
    parser.add_argument("--max-lifetime", type=int, default=604_800, metavar="S",
                        help="delegation-token max lifetime in seconds (default 604800)")
    parser.add_argument("--info", type=Path, help="write addresses and paths as JSON here once ready")
    args = parser.parse_args(argv)
    lifetimes = TokenLifetimes(args.renew_interval * 1000, args.max_lifetime * 1000,
                               min(args.renew_interval, 86_400) * 1000)
    bed = Testbed(args.dir, [c for c in args.components.split(",") if c], lifetimes=lifetimes)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        bed.start()
        for line in bed.describe():
            print(line, flush=True)
        if args.info:
            info = {"dir": str(bed.dir)}
            if bed.kdc:
                info.update(krb5_conf=str(bed.kdc.krb5_conf), realm=bed.kdc.realm)
            if bed.hdfs:
                info.update(hdfs=bed.hdfs.uri, webhdfs=bed.hdfs.webhdfs_url,
                            hadoop_conf_dir=str(bed.hdfs.client_conf_dir()))
            if bed.kube:
                info.update(kube=bed.kube.server, kubeconfig_dir=str(bed.kube.dir))
            args.info.write_text(json.dumps(info, indent=1))
        print("test bed is up; Ctrl-C stops it", flush=True)
        while True:
            time.sleep(3600)
    except SparkSecretsError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        bed.stop()


if __name__ == "__main__":
    sys.exit(main())
