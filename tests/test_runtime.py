"""spark_secrets.runtime on the real test bed: Python reads and writes secure HDFS through WebHDFS with
only a token file (the ticket cache is gone: ``KRB5CCNAME`` names a missing file), against Spark and
Hadoop JVMs that also hold only the token file; an HA nameservice with its standby first; a token
swapped (kubelet-style) and the old one cancelled in the middle of a read loop; and the one-line
errors for a cancelled token, a token left unrenewed and a path owned by someone else."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hdfs import TokenClient
from hdfs.util import HdfsError as CliError

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import HdfsPermissionError, InvalidTokenError, TokenExpiredError
from spark_secrets.tokens.fetcher import cancel_token, obtain_tokens
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.login.kerberos import current_ticket_cache, keytab_login
from spark_secrets.runtime import arrow_filesystem, hdfs_client
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.projection import SecretVolume
from spark_secrets.testbed.spark import spark_env

from conftest import KEY

pytestmark = pytest.mark.testbed

SCRIPTS = Path(__file__).parent / "scripts"


def _renewer_auth(testbed: Testbed, tmp_path: Path) -> SpnegoAuth:
    """The renew service's own login (its keytab, a private cache): how re-issued tokens are made."""
    login = keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab,
                         tmp_path / "krb5cc_renewer")
    return SpnegoAuth(login.credentials)


def _alice_tokens(cluster: SecureHdfs, testbed: Testbed, fs: str | None = None,
                  verify: bool | str = True) -> Credentials:
    """A fresh token for alice, obtained with her TGT (as the submission does) from a cache named
    explicitly: the process itself has none (``no_ticket``)."""
    alice = current_ticket_cache(f"FILE:{testbed.ticket_cache('alice')}")
    return obtain_tokens([fs or cluster.uri], RENEWER, SpnegoAuth(alice.credentials),
                         conf=HadoopConf.load(cluster.client_conf_dir()), verify=verify)


@pytest.fixture
def no_ticket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """From here on this process has no Kerberos ticket: only token files."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-such-ccache'}")
    monkeypatch.delenv("HADOOP_TOKEN_FILE_LOCATION", raising=False)


def _secret_forms(creds: Credentials) -> list[str]:
    return [form for t in creds for form in (t.encode_url(), t.password.hex())]


# -- the plain cluster ------------------------------------------------------------------------------
def test_a_dataset_spark_wrote_is_read_by_pyarrow_and_pandas_with_the_token_only(testbed: Testbed, tmp_path: Path,
                                                                               no_ticket: None) -> None:
    hdfs = testbed.hdfs
    assert hdfs is not None
    tokens = _alice_tokens(hdfs, testbed).save(tmp_path / "job.tokens")
    target = f"{hdfs.uri}/user/alice/runtime-spark-{time.time_ns()}"
    env = spark_env({**testbed.env("alice", tmp_path / "no-such-ccache"), "HADOOP_TOKEN_FILE_LOCATION": str(tokens)})
    job = subprocess.run([sys.executable, str(SCRIPTS / "parquet_job.py"), target, "20000"], env=env,
                         capture_output=True, text=True, timeout=400)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "WROTE 20000 rows, sum 199990000" in job.stdout

    fs = arrow_filesystem(hdfs.uri, token_file=tokens, conf=hdfs.client_conf_dir())
    dataset = ds.dataset(target, filesystem=fs, format="parquet")
    assert len(dataset.files) >= 4 and all(f.endswith(".parquet") for f in dataset.files)
    table = dataset.to_table()
    assert table.num_rows == 20000 and pc.sum(table["id"]).as_py() == 199990000
    first = dataset.to_table(filter=ds.field("id") < 10, columns=["id", "name"]).sort_by("id")
    assert first.column("name").to_pylist() == [f"row {i}" for i in range(10)]
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(target, filesystem=fs)
    assert len(frame) == 20000 and int(frame["twice"].sum()) == 2 * 199990000


def test_a_pandas_udf_reads_and_writes_through_the_pickled_filesystem(testbed: Testbed, tmp_path: Path,
                                                                    no_ticket: None) -> None:
    """The filesystem made on the driver goes into a mapInPandas UDF; Python workers (local mode: no
    pods yet) read a dataset and write a file each with the token file alone, and a token-only JVM
    reads those back."""
    hdfs = testbed.hdfs
    assert hdfs is not None
    tokens = _alice_tokens(hdfs, testbed).save(tmp_path / "job.tokens")
    base = f"/user/alice/runtime-udf-{time.time_ns()}"
    fs = arrow_filesystem(hdfs.uri, token_file=tokens, conf=hdfs.client_conf_dir())
    pq.write_table(pa.table({"id": list(range(777))}), f"{base}/in/data.parquet", filesystem=fs)
    env = spark_env({**testbed.env("alice", tmp_path / "no-such-ccache"), "HADOOP_TOKEN_FILE_LOCATION": str(tokens),
                     "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    job = subprocess.run([sys.executable, str(SCRIPTS / "udf_job.py"), "local[2]", hdfs.uri, f"{hdfs.uri}{base}/in",
                          f"{hdfs.uri}{base}/out"], env=env, capture_output=True, text=True, timeout=400)
    assert job.returncode == 0, job.stderr[-3000:]
    lines = [line for line in job.stdout.splitlines() if line.startswith("UDF")]
    assert len(lines) == 2 and all("read 777 rows" in line for line in lines), job.stdout
    pids = [re.search(r"in worker (\d+) \(driver (\d+)\)", line).groups() for line in lines]  # type: ignore[union-attr]
    assert all(worker != driver for worker, driver in pids)  # unpickled in Python worker processes
    for part in (0, 1):
        cat = hdfs.fs("-cat", f"{base}/out/part-{part}.parquet", token_file=tokens)
        assert pq.read_table(pa.BufferReader(cat.stdout)).column("part").to_pylist() == [part], cat.stderr[-800:]


def test_what_arrow_writes_a_token_only_jvm_reads(testbed: Testbed, tmp_path: Path, no_ticket: None) -> None:
    hdfs = testbed.hdfs
    assert hdfs is not None
    tokens = _alice_tokens(hdfs, testbed).save(tmp_path / "job.tokens")
    fs = arrow_filesystem(hdfs.uri, token_file=tokens, conf=hdfs.client_conf_dir())
    base = f"/user/alice/runtime-arrow-{time.time_ns()}"
    table = pa.table({"n": list(range(5000)), "s": [f"value {i}" for i in range(5000)]})
    pq.write_table(table, f"{hdfs.uri}{base}/t.parquet", filesystem=fs)
    cat = hdfs.fs("-cat", f"{base}/t.parquet", token_file=tokens)
    assert cat.returncode == 0, cat.stderr.decode()[-1500:]
    assert pq.read_table(pa.BufferReader(cat.stdout)).equals(table)

    client = hdfs_client(hdfs.uri, token_file=tokens, conf=hdfs.client_conf_dir())
    client.write(f"{base}/hello.txt", data=b"written from Python with a delegation token\n")
    cat = hdfs.fs("-cat", f"{base}/hello.txt", token_file=tokens)
    assert cat.stdout == b"written from Python with a delegation token\n", cat.stderr.decode()[-1500:]
    ls = hdfs.fs("-ls", base, token_file=tokens)
    assert b" alice " in ls.stdout  # written as the token's owner

    # pandas writes, the JVM lists and reads the bytes back
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"k": [1, 2, 3]}).to_parquet(f"{hdfs.uri}{base}/p.parquet", filesystem=fs)
    cat = hdfs.fs("-cat", f"{base}/p.parquet", token_file=tokens)
    assert pq.read_table(pa.BufferReader(cat.stdout)).column("k").to_pylist() == [1, 2, 3]


def test_https_with_the_ca_bundle(testbed: Testbed, tmp_path: Path, no_ticket: None) -> None:
    hdfs = testbed.hdfs
    assert hdfs is not None
    fs_uri = f"swebhdfs://localhost:{hdfs.ports.https}"
    tokens = _alice_tokens(hdfs, testbed, fs_uri, verify=str(hdfs.ca_cert)).save(tmp_path / "https.tokens")
    fs = arrow_filesystem(fs_uri, token_file=tokens, conf=hdfs.client_conf_dir(), ca_bundle=str(hdfs.ca_cert))
    path = f"{fs_uri}/user/alice/runtime-https-{time.time_ns()}.parquet"
    table = pa.table({"x": [1.5, 2.5]})
    pq.write_table(table, path, filesystem=fs)  # NameNode and DataNode over TLS
    assert pq.read_table(path, filesystem=fs).equals(table)


def test_permission_denied_names_the_owner(testbed: Testbed, tmp_path: Path, no_ticket: None) -> None:
    hdfs = testbed.hdfs
    assert hdfs is not None
    tokens = _alice_tokens(hdfs, testbed).save(tmp_path / "job.tokens")
    fs = arrow_filesystem(hdfs.uri, token_file=tokens, conf=hdfs.client_conf_dir())
    with pytest.raises(HdfsPermissionError) as err:
        pq.write_table(pa.table({"x": [1]}), f"{hdfs.uri}/user/bob/nope.parquet", filesystem=fs)
    text = str(err.value)
    assert "alice may not" in text and "owned by bob" in text and "\n" not in text


def test_a_cancelled_token_gives_the_clear_error(testbed: Testbed, tmp_path: Path, no_ticket: None,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The control case: the same read that works with a live token fails, clearly, once it is cancelled;
    no log line (urllib3's request lines included) shows the token."""
    caplog.set_level(logging.DEBUG)
    hdfs = testbed.hdfs
    assert hdfs is not None
    creds = _alice_tokens(hdfs, testbed)
    tokens = creds.save(tmp_path / "job.tokens")
    client = hdfs_client(hdfs.uri, token_file=tokens, conf=hdfs.client_conf_dir())
    path = f"/user/alice/runtime-cancel-{time.time_ns()}"
    client.write(path, data=b"before the cancel")
    with client.read(path) as reader:
        assert reader.read() == b"before the cancel"
    web = client.token()
    cancel_token(web, _renewer_auth(testbed, tmp_path), conf=HadoopConf.load(hdfs.client_conf_dir()))
    with pytest.raises(InvalidTokenError) as err:
        with client.read(path) as reader:
            reader.read()
    text = str(err.value)
    assert "does not accept the delegation token" in text and str(tokens) in text and "owner alice" in text
    assert "\n" not in text and not any(form in text for form in _secret_forms(creds))
    # The JVM, holding the same file, fails too: the token really is dead.
    assert hdfs.fs("-cat", path, token_file=tokens).returncode != 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/webhdfs/v1/user/alice/runtime-cancel" in logged  # urllib3's request lines were captured
    assert not any(form in logged for form in _secret_forms(creds))


# -- the HA cluster (standby first; tokens renewable for 20 s, at most 40 s) ------------------------
def test_ha_nameservice_skips_the_standby(testbed: Testbed, ha_hdfs: SecureHdfs, tmp_path: Path,
                                          no_ticket: None) -> None:
    assert (ha_hdfs.ha_state("nn1"), ha_hdfs.ha_state("nn2")) == ("standby", "active")
    tokens = _alice_tokens(ha_hdfs, testbed).save(tmp_path / "ha.tokens")
    fs = arrow_filesystem("hdfs://ns1", token_file=tokens, conf=ha_hdfs.client_conf_dir())
    path = f"hdfs://ns1/user/alice/runtime-ha-{time.time_ns()}.parquet"
    table = pa.table({"v": list(range(100))})
    pq.write_table(table, path, filesystem=fs)
    assert pq.read_table(path, filesystem=fs).equals(table)
    client = fs.handler.client
    assert client.urls == ha_hdfs.webhdfs_urls and client.active == 1  # nn2, after nn1 answered "standby"
    cat = ha_hdfs.fs("-cat", path, token_file=tokens)
    assert pq.read_table(pa.BufferReader(cat.stdout)).equals(table), cat.stderr.decode()[-1500:]


def test_a_token_swap_mid_loop_keeps_working_and_a_fixed_token_does_not(testbed: Testbed, ha_hdfs: SecureHdfs,
                                                                        tmp_path: Path, no_ticket: None) -> None:
    """kubelet swaps the mounted file to a re-issued token and the old one is cancelled: a long read loop
    through arrow_filesystem() goes on; HdfsCLI's TokenClient, which keeps the first token, stops."""
    conf = HadoopConf.load(ha_hdfs.client_conf_dir())
    renewer = _renewer_auth(testbed, tmp_path)
    first = _alice_tokens(ha_hdfs, testbed)
    volume = SecretVolume(tmp_path / "secret-volume")
    volume.update({KEY: first.to_bytes()})
    fs = arrow_filesystem("hdfs://ns1", token_file=volume.path(KEY), conf=ha_hdfs.client_conf_dir())
    path = f"hdfs://ns1/user/alice/runtime-swap-{time.time_ns()}.parquet"
    table = pa.table({"v": list(range(1000))})
    pq.write_table(table, path, filesystem=fs)
    old = first.tokens["ha-webhdfs:ns1"]
    fixed = TokenClient(";".join(ha_hdfs.webhdfs_urls), old.encode_url())
    fixed.status(path.removeprefix("hdfs://ns1"))

    began, rounds, swapped = time.monotonic(), 0, False
    while time.monotonic() - began < 16:
        if not swapped and time.monotonic() - began > 5:
            # What the renew service does before the max date: a new token for alice, as proxy user.
            second = obtain_tokens(["hdfs://ns1"], RENEWER, renewer, doas="alice", conf=conf)
            volume.update({KEY: second.to_bytes()})
            cancel_token(old, renewer, conf=conf)
            swapped = True
        assert pq.read_table(path, filesystem=fs).equals(table), f"round {rounds}"
        rounds += 1
        time.sleep(0.3)
    assert swapped and rounds > 20
    assert fs.handler.client.tokens.generation == 2
    with pytest.raises(CliError, match="can't be found in cache|token"):
        fixed.status(path.removeprefix("hdfs://ns1"))


def test_a_token_left_unrenewed_names_its_max_date_and_the_renew_service(testbed: Testbed, ha_hdfs: SecureHdfs,
                                                                         tmp_path: Path, no_ticket: None) -> None:
    creds = _alice_tokens(ha_hdfs, testbed)
    tokens = creds.save(tmp_path / "ha.tokens")
    client = hdfs_client("hdfs://ns1", token_file=tokens, conf=ha_hdfs.client_conf_dir())
    client.status("/user/alice")
    time.sleep(21.5)  # past the 20 s renew interval: nobody renewed it
    with pytest.raises(TokenExpiredError) as err:
        client.status("/user/alice")
    text = str(err.value)
    assert "before its max date" in text and f"renewer {RENEWER} (the renew service)" in text and "\n" not in text
    assert not any(form in text for form in _secret_forms(creds))
