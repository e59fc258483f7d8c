"""A real Lamina daemon for the API tests: its own state directory, cgroup subtree and loopback
port, driven by unmodified boto3 and awscli."""
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile

import boto3
import pytest
from botocore.config import Config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "functions")
BINARY = os.environ.get("LAMINA_BINARY", os.path.join(ROOT, ".build", "debug", "lamina"))
ROOTFS = os.environ.get("LAMINA_ROOTFS_DIR", "/var/cache/lamina/rootfs")
ROLE = "arn:aws:iam::123456789012:role/lamina-test"
ADMIN_TOKEN = "lamina-test-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`lamina serve` as a user runs it."""

    def __init__(self, state, port, cgroup_parent, extra=()):
        self.state, self.port, self.cgroup_parent, self.extra = state, port, cgroup_parent, list(extra)
        self.process = None
        self.log_path = os.path.join(state, "daemon.log")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        os.makedirs(self.state, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--state-dir", self.state, "--rootfs-dir", ROOTFS, "--cgroup-parent", self.cgroup_parent,
             "--port", str(self.port), "--grace-period", "10"] + self.extra,
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.process.returncode}: {open(self.log_path).read()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the daemon did not start listening")

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def lamina(self, *args):
        """Runs the CLI against this daemon's state directory."""
        return subprocess.run([BINARY, *args, "--state-dir", self.state], capture_output=True, text=True, check=True).stdout


def collect_leftovers(state, parent):
    """After a daemon was killed: what `lamina sandbox gc` is for."""
    subprocess.run([BINARY, "sandbox", "gc", "--state-dir", state, "--cgroup-parent", parent], capture_output=True)


def leftover_cgroups(parent):
    return [p for p in (f"/sys/fs/cgroup/{c}/{parent}" for c in ("memory", "cpu", "cpuacct", "pids", "freezer")) if os.path.exists(p)]


@pytest.fixture(scope="session")
def daemon():
    state = tempfile.mkdtemp(prefix="lamina-api-test-")
    parent = f"lamina-api-test-{os.getpid()}"
    d = Daemon(state, free_port(), parent, extra=["--admin-token", ADMIN_TOKEN]).start()
    try:
        yield d
        code = d.stop()
        assert code == 0, f"the daemon exited with {code}: {open(d.log_path).read()[-3000:]}"
        assert leftover_cgroups(parent) == []
    finally:
        d.stop(signal.SIGKILL)
        collect_leftovers(state, parent)
        subprocess.run(["rm", "-rf", state])


class Tenant:
    def __init__(self, daemon, name):
        info = json.loads(daemon.lamina("tenant", "create", name, "--json"))
        self.name, self.account = name, info["accountId"]
        self.key, self.secret = info["accessKeyId"], info["secretAccessKey"]
        self.daemon = daemon

    def client(self, region="us-east-1", retries=1, read_timeout=120, key=None, secret=None):
        return boto3.client(
            "lambda", endpoint_url=self.daemon.endpoint, region_name=region,
            aws_access_key_id=key or self.key, aws_secret_access_key=secret or self.secret,
            config=Config(retries={"max_attempts": retries, "mode": "standard"}, read_timeout=read_timeout, connect_timeout=5))

    def aws(self, *args, check=True):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.key, AWS_SECRET_ACCESS_KEY=self.secret, AWS_DEFAULT_REGION="us-east-1")
        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        result = subprocess.run([aws, "lambda", *args, "--endpoint-url", self.daemon.endpoint], capture_output=True, text=True, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"aws lambda {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture(scope="session")
def alice(daemon):
    return Tenant(daemon, f"alice-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="session")
def bob(daemon):
    return Tenant(daemon, f"bob-{uuid.uuid4().hex[:6]}")


def zip_directory(path, extra=None):
    """A deployment package of a fixture directory (permissions kept), plus extra {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if path:
            for base, _, files in os.walk(path):
                for name in sorted(files):
                    full = os.path.join(base, name)
                    info = zipfile.ZipInfo(os.path.relpath(full, path), date_time=(2024, 1, 1, 0, 0, 0))
                    info.external_attr = (os.stat(full).st_mode & 0xFFFF) << 16
                    info.create_system = 3
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, open(full, "rb").read())
        for name, data in (extra or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            executable = name.endswith("bootstrap") or name.startswith("bin/")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.create_system = 3
            archive.writestr(info, data)
    return buffer.getvalue()


def python_zip():
    return zip_directory(os.path.join(FIXTURES, "python"))


def shell_zip():
    return zip_directory(os.path.join(FIXTURES, "shell"))


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_python(client, name=None, handler="app.handler", memory=1024, **extra):
    name = name or unique("py")
    client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler,
                           Code={"ZipFile": python_zip()}, MemorySize=memory, Timeout=extra.pop("Timeout", 10), **extra)
    return name
