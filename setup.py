"""Generates the protobuf/gRPC modules (never committed) before a wheel is built from a checkout."""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        if not (ROOT / "starforge_dag" / "buildkit" / "pb" / "control_pb2.py").exists():
            env = {**os.environ, "PYTHON": sys.executable}
            subprocess.run(["bash", str(ROOT / "scripts" / "gen_protos.sh")], check=True, env=env)
            self.packages = self.distribution.packages = _packages()
        super().run()


def _packages() -> list[str]:
    from setuptools import find_packages

    return find_packages(str(ROOT), include=["starforge_dag*"])


setup(cmdclass={"build_py": BuildPyWithProtos})
